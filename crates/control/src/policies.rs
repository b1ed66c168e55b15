//! `/policies`: default-deny allow rules from sources (groups, users, agents, everyone) to
//! providers, with an optional model allowlist, an optional `max_tokens` ceiling and limits
//! (spend, token and rate caps; see `limits`).

use api_types::{ErrorBody, Policy, PolicyInput, PolicySources};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use domain::{ModelPattern, Source};
use store::{ManagedBy, PolicyRecord};

use crate::{
    audit::{self, Caller, Change},
    extract::Body,
    limits::{limit_to_dto, limits_from_dto},
    providers::managed_by_to_dto,
    put_status, validate, ControlState, Error, Write,
};

const KIND: &str = "policy";

#[utoipa::path(
    get, path = "/api/v1/policies", tag = "policies",
    responses((status = 200, description = "every policy, by name", body = Vec<Policy>))
)]
pub(crate) async fn list(State(state): State<ControlState>) -> Result<Json<Vec<Policy>>, Error> {
    Ok(Json(state.store.policies().await?.iter().map(to_dto).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/policies/{name}", tag = "policies",
    params(("name" = String, Path, description = "policy name")),
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show(
    State(state): State<ControlState>,
    Path(name): Path<String>,
) -> Result<Json<Policy>, Error> {
    Ok(Json(to_dto(&find(&state, &name).await?)))
}

#[utoipa::path(
    post, path = "/api/v1/policies", tag = "policies",
    request_body = PolicyInput,
    responses(
        (status = 201, body = Policy),
        (status = 400, description = "invalid input, e.g. no sources", body = ErrorBody),
        (status = 409, description = "a policy by that name exists", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ControlState>,
    caller: Caller,
    Body(input): Body<PolicyInput>,
) -> Result<(StatusCode, Json<Policy>), Error> {
    let name = input.name.clone().unwrap_or_default();
    validate::name("name", &name)?;
    let (policy, _) = save(&state, &caller, name, input, Write::Create).await?;
    Ok((StatusCode::CREATED, Json(policy)))
}

#[utoipa::path(
    put, path = "/api/v1/policies/{name}", tag = "policies",
    params(("name" = String, Path, description = "policy name")),
    request_body = PolicyInput,
    responses(
        (status = 200, description = "replaced", body = Policy),
        (status = 201, description = "created", body = Policy),
        (status = 400, body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn replace(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
    Body(input): Body<PolicyInput>,
) -> Result<(StatusCode, Json<Policy>), Error> {
    validate::name_matches_path(&name, input.name.as_deref())?;
    let (policy, existed) = save(&state, &caller, name, input, Write::Replace).await?;
    Ok((put_status(existed), Json(policy)))
}

#[utoipa::path(
    delete, path = "/api/v1/policies/{name}", tag = "policies",
    params(("name" = String, Path, description = "policy name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<StatusCode, Error> {
    let mut tx = state.store.begin().await?;
    let before = tx.policy(&name).await?.map(|r| to_dto(&r));
    if !tx.delete_policy(&name).await? {
        return Err(Error::NotFound { kind: KIND, name });
    }
    let entry = caller.entry(Change::Delete, KIND, &name, before.as_ref(), None)?;
    audit::commit(&state, tx, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn find(state: &ControlState, name: &str) -> Result<PolicyRecord, Error> {
    state
        .store
        .policy(name)
        .await?
        .ok_or_else(|| Error::NotFound { kind: KIND, name: name.to_owned() })
}

/// Stores a policy, and answers with the stored record and whether it existed before.
async fn save(
    state: &ControlState,
    caller: &Caller,
    name: String,
    input: PolicyInput,
    write: Write,
) -> Result<(Policy, bool), Error> {
    let policy = from_input(name, input)?;
    let name = policy.name.as_str();
    let mut tx = state.store.begin().await?;
    let before = tx.policy(name).await?.map(|r| to_dto(&r));
    match write {
        Write::Create => tx.create_policy(&policy, ManagedBy::Api).await?,
        Write::Replace => tx.put_policy(&policy, ManagedBy::Api).await?,
    }
    let stored = tx
        .policy(name)
        .await?
        .ok_or_else(|| Error::NotFound { kind: KIND, name: name.to_owned() })?;
    let after = to_dto(&stored);
    let change = Change::write(before.is_some());
    let entry = caller.entry(change, KIND, name, before.as_ref(), Some(&after))?;
    audit::commit(state, tx, entry).await?;
    Ok((after, before.is_some()))
}

/// The domain policy for validated `input`.
pub(crate) fn from_input(name: String, input: PolicyInput) -> Result<domain::Policy, Error> {
    if input.sources.is_empty() {
        return Err(Error::invalid(
            "sources",
            "a policy needs at least one source: groups, users, agents, or everyone",
        ));
    }
    let sources = sources_from_dto("sources", input.sources)?;
    if input.providers.is_empty() {
        return Err(Error::invalid("providers", "a policy needs at least one provider to open"));
    }
    for (i, provider) in input.providers.iter().enumerate() {
        validate::name(&format!("providers[{i}]"), provider)?;
    }
    let providers = validate::references("providers", input.providers, false)?;
    let models = validate::references("models", input.models, false)?;
    if input.max_tokens == Some(0) {
        return Err(Error::invalid(
            "max_tokens",
            "must be at least 1; leave it out for no ceiling",
        ));
    }
    let limits = limits_from_dto(&input.limits)?;
    Ok(domain::Policy {
        name,
        sources,
        providers,
        models: models.into_iter().map(ModelPattern::new).collect(),
        max_tokens: input.max_tokens,
        limits,
    })
}

/// Validated sources (of a policy) or targets (of a global limit); `field` is where they sit in
/// the body. Emptiness is the caller's check, with its own wording.
pub(crate) fn sources_from_dto(field: &str, s: PolicySources) -> Result<Vec<Source>, Error> {
    let mut sources = Vec::new();
    if s.everyone {
        sources.push(Source::Everyone);
    }
    sources.extend(
        validate::references(&format!("{field}.groups"), s.groups, true)?
            .into_iter()
            .map(Source::Group),
    );
    sources.extend(
        validate::references(&format!("{field}.users"), s.users, false)?
            .into_iter()
            .map(Source::User),
    );
    for (i, agent) in s.agents.iter().enumerate() {
        validate::name(&format!("{field}.agents[{i}]"), agent)?;
    }
    sources.extend(
        validate::references(&format!("{field}.agents"), s.agents, false)?
            .into_iter()
            .map(Source::Agent),
    );
    Ok(sources)
}

pub(crate) fn sources_to_dto(sources: &[Source]) -> PolicySources {
    let mut out = PolicySources::default();
    for source in sources {
        match source {
            Source::Group(g) => out.groups.push(g.clone()),
            Source::User(u) => out.users.push(u.clone()),
            Source::Agent(a) => out.agents.push(a.clone()),
            Source::Everyone => out.everyone = true,
        }
    }
    out
}

pub(crate) fn to_dto(record: &PolicyRecord) -> Policy {
    let p = &record.policy;
    Policy {
        name: p.name.clone(),
        sources: sources_to_dto(&p.sources),
        providers: p.providers.clone(),
        models: p.models.iter().map(|m| m.as_str().to_owned()).collect(),
        max_tokens: p.max_tokens,
        limits: p.limits.iter().map(limit_to_dto).collect(),
        managed_by: managed_by_to_dto(record.managed_by),
        updated_at: api_types::time::format_rfc3339(record.updated_at_ms),
    }
}
