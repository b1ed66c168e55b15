//! Principals: who is calling. People come from the IdP (or, later, an overlay peer's owner);
//! agents are non-human identities named by an admin or by their IdP client id.

/// Whether the caller is a person or an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    Agent,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Agent => "agent",
        }
    }
}

/// An authenticated caller with its group memberships at request time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// Stable subject from the IdP (`sub`), or the agent's client id.
    pub subject: String,
    /// What people read in logs and stamped headers: a user's email, an agent's name.
    pub name: String,
    /// Group names, sorted and without duplicates.
    pub groups: Vec<String>,
}

impl Principal {
    pub fn user(subject: impl Into<String>, email: impl Into<String>, groups: Vec<String>) -> Self {
        Self::new(PrincipalKind::User, subject.into(), email.into(), groups)
    }

    pub fn agent(name: impl Into<String>, groups: Vec<String>) -> Self {
        let name = name.into();
        Self::new(PrincipalKind::Agent, name.clone(), name, groups)
    }

    fn new(kind: PrincipalKind, subject: String, name: String, mut groups: Vec<String>) -> Self {
        groups.sort();
        groups.dedup();
        Self { kind, subject, name, groups }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.binary_search_by(|g| g.as_str().cmp(group)).is_ok()
    }
}
