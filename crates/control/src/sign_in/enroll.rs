//! `POST /auth/enroll`: an agent trades a setup key for a session.
//!
//! A key bound to an agent (`--agent`) enrolls as that existing agent, as often as it has uses;
//! an unbound key creates a new agent with the name the enrollee gives and the key's groups (an
//! existing name is refused, so a key can never take over another agent). The redemption, the
//! new agent, the session and their audit entries are one transaction; the response waits until
//! the data plane knows the agent's groups.

use api_types::EnrollRequest;
use axum::{
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use domain::Principal;
use http::StatusCode;
use identity::TokenDigest;
use store::{
    ActorKind, AgentRecord, AuditEntry, ManagedBy, Redemption, SessionSource, SetupKeyState,
};

use super::{
    issue::{now_ms, Flow},
    oauth::{client_label, no_store_json, Failure},
    pending::Vouched,
    SignInState,
};

/// `POST /auth/enroll`.
pub(crate) async fn enroll(State(state): State<SignInState>, body: Bytes) -> Response {
    match enroll_agent(&state, &body).await {
        Ok(answer) => {
            state.after_change().await;
            no_store_json(StatusCode::OK, &answer)
        }
        Err(failure) => failure.into_response(),
    }
}

fn invalid_key(description: impl Into<String>) -> Failure {
    Failure::new(StatusCode::UNAUTHORIZED, "invalid_setup_key", description)
}

async fn enroll_agent(
    state: &SignInState,
    body: &Bytes,
) -> Result<api_types::TokenResponse, Failure> {
    let input: EnrollRequest = serde_json::from_slice(body)
        .map_err(|err| Failure::invalid_request(format!("invalid request body: {err}")))?;
    if identity::TokenKind::of(&input.setup_key) != Some(identity::TokenKind::SetupKey) {
        return Err(invalid_key("that is not a setup key (they start with agentnet_sk_)"));
    }
    let client = client_label(input.client.as_deref());
    if let Some(name) = &input.name {
        crate::validate::name("name", name)
            .map_err(|err| Failure::invalid_request(err.to_string()))?;
    }
    let digest = TokenDigest::of(&input.setup_key);
    // A read first: a flood of made-up keys must not queue on the database's write lock.
    if !state.store().setup_key_exists(digest.as_bytes()).await? {
        return Err(invalid_key("the setup key is unknown"));
    }
    let now = now_ms();
    let mut tx = state.store().begin().await?;
    let key = match tx.redeem_setup_key(digest.as_bytes(), now).await? {
        Redemption::Redeemed(key) => key,
        Redemption::Refused { key: None, .. } => {
            return Err(invalid_key("the setup key is unknown"))
        }
        Redemption::Refused { key: Some(key), state: refused } => {
            let why = match refused {
                SetupKeyState::Expired => format!(
                    "setup key '{}' expired at {}",
                    key.name,
                    api_types::time::format_rfc3339(key.expires_at_ms)
                ),
                SetupKeyState::Exhausted => format!(
                    "setup key '{}' is used up ({} of {} enrollments)",
                    key.name, key.uses, key.max_uses
                ),
                SetupKeyState::Revoked => format!("setup key '{}' was revoked", key.name),
                SetupKeyState::Valid => format!("setup key '{}' cannot be used now", key.name),
            };
            tracing::info!(setup_key = %key.name, reason = %why, "enrollment refused");
            return Err(invalid_key(why));
        }
    };
    let actor = |name: &str, action: &str, kind: &str, target: &str| {
        AuditEntry::new(
            ActorKind::Agent,
            name.to_owned(),
            action.to_owned(),
            kind.to_owned(),
            target.to_owned(),
        )
    };
    let agent = match (&key.agent, input.name) {
        (Some(bound), Some(name)) if *bound != name => {
            return Err(Failure::invalid_request(format!(
                "setup key '{}' enrolls agent '{bound}', not '{name}'; leave the name out",
                key.name
            )));
        }
        (Some(bound), _) => tx.agent(bound).await?.ok_or_else(|| {
            Failure::invalid_request(format!(
                "agent '{bound}', which setup key '{}' enrolls, no longer exists",
                key.name
            ))
        })?,
        (None, None) => {
            return Err(Failure::invalid_request(format!(
                "setup key '{}' is not bound to an agent: give the new agent's name",
                key.name
            )));
        }
        (None, Some(name)) => {
            if tx.agent(&name).await?.is_some() {
                return Err(Failure::new(
                    StatusCode::CONFLICT,
                    "invalid_request",
                    format!("agent '{name}' already exists; an unbound setup key only creates new agents (an admin can bind a key to it with --agent)"),
                ));
            }
            let record = AgentRecord {
                name: name.clone(),
                description: format!("enrolled with setup key '{}'", key.name),
                groups: key.auto_groups.clone(),
                managed_by: ManagedBy::Api,
            };
            tx.create_agent(&record).await?;
            let mut entry = actor(&name, "agent.create", "agent", &name);
            entry.after = Some(serde_json::json!({
                "name": record.name,
                "description": record.description,
                "groups": record.groups,
                "managed_by": "api",
            }));
            tx.record_audit(&entry).await?;
            record
        }
    };
    let mut used = actor(&agent.name, "setup_key.use", "setup_key", &key.name);
    used.after = Some(
        serde_json::json!({ "uses": key.uses + 1, "max_uses": key.max_uses, "agent": agent.name }),
    );
    tx.record_audit(&used).await?;
    let who = Vouched {
        principal: Principal::agent(agent.name.clone(), Vec::new()),
        groups: agent.groups.clone(),
        source: SessionSource::SetupKey,
        idp_refresh: None,
    };
    state.open_session(tx, who, client, Flow::SetupKey).await
}
