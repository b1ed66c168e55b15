//! Claims of a token whose signature holds: issuer, audience and validity window checks, and
//! the mapping to a [`Principal`] (a user when there is an `email`, else an agent).

#[cfg(test)]
mod tests;

use domain::Principal;
use serde_json::{Map, Value};

use crate::AuthError;

/// Where the groups claim lives: a top-level claim of that exact name, or else a dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupsClaim {
    name: String,
    path: Vec<String>,
}

impl GroupsClaim {
    pub(crate) fn new(name: &str) -> Self {
        Self { name: name.to_owned(), path: name.split('.').map(str::to_owned).collect() }
    }

    fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(value) = claims.get(&self.name) {
            return Some(value);
        }
        if self.path.len() < 2 {
            return None;
        }
        let (first, rest) = self.path.split_first()?;
        rest.iter().try_fold(claims.get(first)?, |value, segment| value.as_object()?.get(segment))
    }

    /// The groups of a claims set: an array's strings, or one string. Anything else (missing,
    /// null, numbers, objects) is no groups: groups only ever grant access, so when in doubt
    /// there are none.
    fn groups(&self, claims: &Map<String, Value>) -> Vec<String> {
        match self.lookup(claims) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Value::String(group)) if !group.is_empty() => vec![group.clone()],
            _ => Vec::new(),
        }
    }
}

/// What claims must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) groups: GroupsClaim,
    pub(crate) leeway_secs: i64,
}

/// A token's identity and validity window, as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) principal: Principal,
    /// `exp`, Unix seconds.
    pub(crate) exp: i64,
    /// `nbf`, Unix seconds, if any.
    pub(crate) nbf: Option<i64>,
    /// `nonce` (ID tokens), if any.
    pub(crate) nonce: Option<String>,
}

impl Rules {
    /// Whether a token valid from `nbf` until `exp` is usable at `now` (all Unix seconds).
    pub(crate) fn check_window(
        &self,
        exp: i64,
        nbf: Option<i64>,
        now: i64,
    ) -> Result<(), AuthError> {
        if now >= exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway_secs)) {
            return Err(AuthError::NotYetValid);
        }
        Ok(())
    }

    /// Checks the claims (JSON payload bytes) at `now` (Unix seconds) and maps them.
    pub(crate) fn validate(&self, payload: &[u8], now: i64) -> Result<Verified, AuthError> {
        let claims: Map<String, Value> =
            serde_json::from_slice(payload).map_err(|_| AuthError::Malformed)?;

        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| self.audiences.iter().any(|a| a == aud)),
            _ => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        let exp = numeric_date(claims.get("exp"))?.ok_or(AuthError::Malformed)?;
        let nbf = numeric_date(claims.get("nbf"))?;
        self.check_window(exp, nbf, now)?;

        let principal = self.principal(&claims)?;
        let nonce = claims.get("nonce").and_then(Value::as_str).map(str::to_owned);
        Ok(Verified { principal, exp, nbf, nonce })
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, AuthError> {
        let groups = self.groups.groups(claims);
        match claims.get("email") {
            None | Some(Value::Null) => {}
            Some(Value::String(email)) if !email.is_empty() => {
                if email_unverified(claims.get("email_verified")) {
                    return Err(AuthError::UnverifiedEmail);
                }
                let subject = non_empty_str(claims.get("sub")).ok_or(AuthError::Malformed)?;
                return Ok(Principal::user(subject, email.as_str(), groups));
            }
            Some(_) => return Err(AuthError::Malformed),
        }
        // Client credentials: the agent is named by its client id.
        let name = ["client_id", "azp", "sub"]
            .iter()
            .find_map(|claim| non_empty_str(claims.get(*claim)))
            .ok_or(AuthError::Malformed)?;
        Ok(Principal::agent(name, groups))
    }
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value?.as_str().filter(|s| !s.is_empty())
}

/// `email_verified` explicitly false (some IdPs send the string `"false"`).
fn email_unverified(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(verified)) => !verified,
        Some(Value::String(verified)) => verified.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// A NumericDate (seconds since the epoch, integer or fractional). Absent or null is `None`;
/// any other type is malformed.
fn numeric_date(value: Option<&Value>) -> Result<Option<i64>, AuthError> {
    let Some(value) = value else { return Ok(None) };
    match value {
        Value::Null => Ok(None),
        Value::Number(number) => {
            if let Some(secs) = number.as_i64() {
                Ok(Some(secs))
            } else if number.as_u64().is_some() {
                Ok(Some(i64::MAX))
            } else {
                let secs = number.as_f64().filter(|f| f.is_finite()).ok_or(AuthError::Malformed)?;
                // Saturating float-to-int conversion.
                Ok(Some(secs.floor() as i64))
            }
        }
        _ => Err(AuthError::Malformed),
    }
}
