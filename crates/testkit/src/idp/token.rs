//! `TokenSpec`: a builder describing the JWT the mock IdP should mint, valid by default and bent
//! into every shape a verifier must refuse (expired, foreign issuer, unknown key, ...).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Audience a token carries unless [`TokenSpec::audience`] says otherwise.
pub const DEFAULT_AUDIENCE: &str = "agentnet";

/// Lifetime of a token unless [`TokenSpec::expires_in`] says otherwise, in seconds.
pub const DEFAULT_LIFETIME_SECS: i64 = 300;

/// Which `kid` goes into the JWS header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KidChoice {
    /// The signing key's own kid.
    Signing,
    /// A fixed value, whatever key signs.
    Custom(String),
    /// No `kid` header at all.
    Omit,
}

/// What to put into a minted token. Times are relative to the moment of minting.
///
/// ```
/// use testkit::idp::TokenSpec;
///
/// let alice = TokenSpec::user("alice@example.com")
///     .groups(["engineering"])
///     .audience("agentnet")
///     .expires_in(60);
/// let bot = TokenSpec::client("ci-bot");
/// # let _ = (alice, bot);
/// ```
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub(crate) subject: String,
    pub(crate) email: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) groups: Option<Vec<String>>,
    pub(crate) audience: Value,
    pub(crate) issuer: Option<String>,
    pub(crate) expires_in: i64,
    pub(crate) not_before: Option<i64>,
    pub(crate) kid: KidChoice,
    pub(crate) unknown_key: bool,
    pub(crate) extra: Map<String, Value>,
    pub(crate) removed: Vec<String>,
}

impl TokenSpec {
    fn base(subject: String) -> Self {
        Self {
            subject,
            email: None,
            client_id: None,
            groups: None,
            audience: Value::String(DEFAULT_AUDIENCE.into()),
            issuer: None,
            expires_in: DEFAULT_LIFETIME_SECS,
            not_before: None,
            kid: KidChoice::Signing,
            unknown_key: false,
            extra: Map::new(),
            removed: Vec::new(),
        }
    }

    /// A person's token: `email` set, `sub` an opaque id derived from the email
    /// (`user|<email>`; override with [`TokenSpec::subject`]).
    pub fn user(email: impl Into<String>) -> Self {
        let email = email.into();
        let mut spec = Self::base(format!("user|{email}"));
        spec.email = Some(email);
        spec
    }

    /// A client-credentials token: no `email`; `client_id` and `sub` are the client id.
    pub fn client(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        let mut spec = Self::base(client_id.clone());
        spec.client_id = Some(client_id);
        spec
    }

    /// Overrides `sub`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Sets the `groups` claim (an array of strings).
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = Some(groups.into_iter().map(Into::into).collect());
        self
    }

    /// Sets `aud` to a single string.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Value::String(audience.into());
        self
    }

    /// Sets `aud` to an array of strings.
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audience =
            Value::Array(audiences.into_iter().map(|a| Value::String(a.into())).collect());
        self
    }

    /// `exp` = now + `secs` (negative: already expired).
    pub fn expires_in(mut self, secs: i64) -> Self {
        self.expires_in = secs;
        self
    }

    /// `nbf` = now + `secs` (positive: not yet valid).
    pub fn not_before(mut self, secs: i64) -> Self {
        self.not_before = Some(secs);
        self
    }

    /// Overrides `iss` (default: the mock IdP's issuer).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Puts this `kid` into the header, whatever key signs.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = KidChoice::Custom(kid.into());
        self
    }

    /// Leaves `kid` out of the header.
    pub fn without_kid(mut self) -> Self {
        self.kid = KidChoice::Omit;
        self
    }

    /// Signs with a fresh key of the current algorithm that the IdP never publishes, under the
    /// current key's kid unless [`TokenSpec::kid`] overrides it: a forged signature.
    pub fn signed_with_unknown_key(mut self) -> Self {
        self.unknown_key = true;
        self
    }

    /// Sets any claim (replacing a default one of the same name), e.g. a nested groups claim.
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        self.removed.retain(|r| *r != name);
        self.extra.insert(name, value);
        self
    }

    /// Removes a claim, default ones included (`exp`, `sub`, `aud`, ...).
    pub fn without_claim(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.extra.remove(&name);
        self.removed.push(name);
        self
    }

    /// The claims set, with times relative to `now`.
    pub(crate) fn claims(&self, default_issuer: &str, now: SystemTime) -> Value {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut claims = Map::new();
        let issuer = self.issuer.as_deref().unwrap_or(default_issuer);
        claims.insert("iss".into(), issuer.into());
        claims.insert("sub".into(), self.subject.clone().into());
        claims.insert("aud".into(), self.audience.clone());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(self.expires_in).into());
        if let Some(nbf) = self.not_before {
            claims.insert("nbf".into(), now.saturating_add(nbf).into());
        }
        if let Some(email) = &self.email {
            claims.insert("email".into(), email.clone().into());
        }
        if let Some(client_id) = &self.client_id {
            claims.insert("client_id".into(), client_id.clone().into());
        }
        if let Some(groups) = &self.groups {
            claims.insert("groups".into(), groups.clone().into());
        }
        for (name, value) in &self.extra {
            claims.insert(name.clone(), value.clone());
        }
        for name in &self.removed {
            claims.remove(name);
        }
        Value::Object(claims)
    }
}
