//! Policies, default deny: a policy connects sources (groups, users, agents) to providers, with
//! an optional model allowlist. Limits and rate caps attach to a policy in a later stage; the
//! decision already names the policy that admitted a request so they can be charged to it.

use crate::{glob::ModelPattern, limits::Limit, principal::Principal, PrincipalKind};

/// Who a policy applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Every member of the group.
    Group(String),
    /// One person, by email (case-insensitive).
    User(String),
    /// One agent, by name.
    Agent(String),
    /// Every authenticated principal.
    Everyone,
}

impl Source {
    pub fn admits(&self, principal: &Principal) -> bool {
        match self {
            Source::Group(group) => principal.in_group(group),
            Source::User(email) => {
                principal.kind == PrincipalKind::User && principal.name.eq_ignore_ascii_case(email)
            }
            Source::Agent(name) => {
                principal.kind == PrincipalKind::Agent && principal.name == *name
            }
            Source::Everyone => true,
        }
    }
}

/// An allow rule. Nothing is allowed that no policy allows.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub sources: Vec<Source>,
    /// Provider names this policy opens.
    pub providers: Vec<String>,
    /// Models allowed through it; empty means every model the provider serves.
    pub models: Vec<ModelPattern>,
    /// The largest `max_tokens` a request may ask for under this policy.
    pub max_tokens: Option<u64>,
    /// Spend, token and rate caps charged to requests this policy admits.
    pub limits: Vec<Limit>,
}

impl Policy {
    fn opens(&self, provider: &str) -> bool {
        self.providers.iter().any(|p| p == provider)
    }

    fn allows_model(&self, model: Option<&str>) -> bool {
        if self.models.is_empty() {
            return true;
        }
        model.is_some_and(|m| self.models.iter().any(|p| p.matches(m)))
    }

    /// The principal's groups through which this policy applies, sorted.
    pub fn authorizing_groups(&self, principal: &Principal) -> Vec<String> {
        principal
            .groups
            .iter()
            .filter(|g| self.sources.iter().any(|s| matches!(s, Source::Group(x) if x == *g)))
            .cloned()
            .collect()
    }
}

/// Why a request was refused by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No policy connects the caller to the provider.
    NoPolicy,
    /// A policy connects them, but none allows the requested model.
    ModelNotAllowed,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NoPolicy => "no_policy",
            DenyReason::ModelNotAllowed => "model_not_allowed",
        }
    }
}

/// The outcome of evaluating policies for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        /// The policy that admitted the request (charged for it once limits exist).
        policy: String,
        /// The caller's groups through which that policy applies, sorted.
        groups: Vec<String>,
    },
    Deny {
        reason: DenyReason,
    },
}

/// Evaluates `policies` for `principal` calling `provider` with `model`.
///
/// Deterministic whatever the order of `policies`: among the allowing policies the one with the
/// smallest name is chosen. `model` is `None` for model-less calls (e.g. listing models), which
/// only need a policy that opens the provider.
pub fn evaluate(
    policies: &[Policy],
    principal: &Principal,
    provider: &str,
    model: Option<&str>,
) -> Decision {
    match candidates(policies, principal, provider, model) {
        Ok(allowing) => {
            // `candidates` sorts by name: the first is the deterministic choice.
            let policy = allowing[0];
            Decision::Allow {
                policy: policy.name.clone(),
                groups: policy.authorizing_groups(principal),
            }
        }
        Err(reason) => Decision::Deny { reason },
    }
}

/// Every policy that lets `principal` use `model` on `provider`, by name; or why there is none.
pub fn candidates<'p>(
    policies: &'p [Policy],
    principal: &Principal,
    provider: &str,
    model: Option<&str>,
) -> Result<Vec<&'p Policy>, DenyReason> {
    let all: Vec<&Policy> = policies.iter().collect();
    candidates_among(&all, principal, provider, model)
}

/// `candidates` over a preselected set of policies (see `limits::Rules`).
pub(crate) fn candidates_among<'p>(
    policies: &[&'p Policy],
    principal: &Principal,
    provider: &str,
    model: Option<&str>,
) -> Result<Vec<&'p Policy>, DenyReason> {
    let applicable: Vec<&Policy> = policies
        .iter()
        .copied()
        .filter(|p| p.opens(provider) && p.sources.iter().any(|s| s.admits(principal)))
        .collect();
    if applicable.is_empty() {
        return Err(DenyReason::NoPolicy);
    }
    let mut allowing: Vec<&Policy> =
        applicable.into_iter().filter(|p| model.is_none() || p.allows_model(model)).collect();
    if allowing.is_empty() {
        return Err(DenyReason::ModelNotAllowed);
    }
    allowing.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(allowing)
}

/// Whether any policy lets `principal` use `model` on `provider` (for filtering model lists).
pub fn model_visible(
    policies: &[Policy],
    principal: &Principal,
    provider: &str,
    model: &str,
) -> bool {
    matches!(evaluate(policies, principal, provider, Some(model)), Decision::Allow { .. })
}

#[cfg(test)]
mod tests;
