//! `/groups` and `/agents`: the local directory. Group names referenced by agents are not
//! required to exist here: most groups come from the IdP.

use api_types::{Agent, AgentInput, ErrorBody, Group, GroupInput};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use store::{AgentRecord, GroupRecord, ManagedBy};

use crate::{
    audit::{self, Caller, Change},
    extract::Body,
    providers::managed_by_to_dto,
    put_status, validate, ControlState, Error, Write,
};

const GROUP: &str = "group";
const AGENT: &str = "agent";

#[utoipa::path(
    get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, description = "every group, by name", body = Vec<Group>))
)]
pub(crate) async fn list_groups(
    State(state): State<ControlState>,
) -> Result<Json<Vec<Group>>, Error> {
    Ok(Json(state.store.groups().await?.into_iter().map(group_to_dto).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name")),
    responses((status = 200, body = Group), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show_group(
    State(state): State<ControlState>,
    Path(name): Path<String>,
) -> Result<Json<Group>, Error> {
    let group = state.store.group(&name).await?.ok_or(Error::NotFound { kind: GROUP, name })?;
    Ok(Json(group_to_dto(group)))
}

#[utoipa::path(
    post, path = "/api/v1/groups", tag = "groups",
    request_body = GroupInput,
    responses(
        (status = 201, body = Group),
        (status = 400, body = ErrorBody),
        (status = 409, description = "a group by that name exists", body = ErrorBody),
    )
)]
pub(crate) async fn create_group(
    State(state): State<ControlState>,
    caller: Caller,
    Body(input): Body<GroupInput>,
) -> Result<(StatusCode, Json<Group>), Error> {
    let name = input.name.clone().unwrap_or_default();
    validate::name("name", &name)?;
    let (group, _) = save_group(&state, &caller, name, input, Write::Create).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

#[utoipa::path(
    put, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name")),
    request_body = GroupInput,
    responses(
        (status = 200, description = "replaced", body = Group),
        (status = 201, description = "created", body = Group),
        (status = 400, body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn replace_group(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
    Body(input): Body<GroupInput>,
) -> Result<(StatusCode, Json<Group>), Error> {
    validate::name_matches_path(&name, input.name.as_deref())?;
    let (group, existed) = save_group(&state, &caller, name, input, Write::Replace).await?;
    Ok((put_status(existed), Json(group)))
}

#[utoipa::path(
    delete, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn remove_group(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<StatusCode, Error> {
    let mut tx = state.store.begin().await?;
    let before = tx.group(&name).await?.map(group_to_dto);
    if !tx.delete_group(&name).await? {
        return Err(Error::NotFound { kind: GROUP, name });
    }
    let entry = caller.entry(Change::Delete, GROUP, &name, before.as_ref(), None)?;
    audit::commit(&state, tx, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores a group, and answers with it and whether it existed before.
async fn save_group(
    state: &ControlState,
    caller: &Caller,
    name: String,
    input: GroupInput,
    write: Write,
) -> Result<(Group, bool), Error> {
    validate::text("description", &input.description)?;
    let record = GroupRecord { name, description: input.description, managed_by: ManagedBy::Api };
    let mut tx = state.store.begin().await?;
    let before = tx.group(&record.name).await?.map(group_to_dto);
    match write {
        Write::Create => tx.create_group(&record).await?,
        Write::Replace => tx.put_group(&record).await?,
    }
    let name = record.name.clone();
    let after = group_to_dto(record);
    let change = Change::write(before.is_some());
    let entry = caller.entry(change, GROUP, &name, before.as_ref(), Some(&after))?;
    audit::commit(state, tx, entry).await?;
    Ok((after, before.is_some()))
}

pub(crate) fn group_to_dto(g: GroupRecord) -> Group {
    Group { name: g.name, description: g.description, managed_by: managed_by_to_dto(g.managed_by) }
}

#[utoipa::path(
    get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, description = "every agent, by name", body = Vec<Agent>))
)]
pub(crate) async fn list_agents(
    State(state): State<ControlState>,
) -> Result<Json<Vec<Agent>>, Error> {
    Ok(Json(state.store.agents().await?.into_iter().map(agent_to_dto).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "agent name")),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show_agent(
    State(state): State<ControlState>,
    Path(name): Path<String>,
) -> Result<Json<Agent>, Error> {
    let agent = state.store.agent(&name).await?.ok_or(Error::NotFound { kind: AGENT, name })?;
    Ok(Json(agent_to_dto(agent)))
}

#[utoipa::path(
    post, path = "/api/v1/agents", tag = "agents",
    request_body = AgentInput,
    responses(
        (status = 201, body = Agent),
        (status = 400, body = ErrorBody),
        (status = 409, description = "an agent by that name exists", body = ErrorBody),
    )
)]
pub(crate) async fn create_agent(
    State(state): State<ControlState>,
    caller: Caller,
    Body(input): Body<AgentInput>,
) -> Result<(StatusCode, Json<Agent>), Error> {
    let name = input.name.clone().unwrap_or_default();
    validate::name("name", &name)?;
    let (agent, _) = save_agent(&state, &caller, name, input, Write::Create).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

#[utoipa::path(
    put, path = "/api/v1/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "agent name")),
    request_body = AgentInput,
    responses(
        (status = 200, description = "replaced", body = Agent),
        (status = 201, description = "created", body = Agent),
        (status = 400, body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn replace_agent(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
    Body(input): Body<AgentInput>,
) -> Result<(StatusCode, Json<Agent>), Error> {
    validate::name_matches_path(&name, input.name.as_deref())?;
    let (agent, existed) = save_agent(&state, &caller, name, input, Write::Replace).await?;
    Ok((put_status(existed), Json(agent)))
}

#[utoipa::path(
    delete, path = "/api/v1/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "agent name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn remove_agent(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<StatusCode, Error> {
    let mut tx = state.store.begin().await?;
    let before = tx.agent(&name).await?.map(agent_to_dto);
    if !tx.delete_agent(&name).await? {
        return Err(Error::NotFound { kind: AGENT, name });
    }
    // Its sessions end with it, in the same transaction: an agent recreated under this name
    // later must not inherit them. (The data plane forgets them at the reload that follows.)
    let ended = tx.revoke_sessions_of(domain::PrincipalKind::Agent, &name, "agent deleted").await?;
    for session in &ended {
        let mut entry = caller.entry_named("session.revoke", "session", &session.id);
        entry.after = Some(serde_json::json!({"name": session.name, "reason": "agent deleted"}));
        tx.record_audit(&entry).await?;
    }
    let entry = caller.entry(Change::Delete, AGENT, &name, before.as_ref(), None)?;
    audit::commit(&state, tx, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores an agent, and answers with it and whether it existed before.
async fn save_agent(
    state: &ControlState,
    caller: &Caller,
    name: String,
    input: AgentInput,
    write: Write,
) -> Result<(Agent, bool), Error> {
    validate::text("description", &input.description)?;
    let record = AgentRecord {
        name,
        description: input.description,
        groups: validate::references("groups", input.groups, true)?,
        managed_by: ManagedBy::Api,
    };
    let mut tx = state.store.begin().await?;
    let before = tx.agent(&record.name).await?.map(agent_to_dto);
    match write {
        Write::Create => tx.create_agent(&record).await?,
        Write::Replace => tx.put_agent(&record).await?,
    }
    let name = record.name.clone();
    let after = agent_to_dto(record);
    let change = Change::write(before.is_some());
    let entry = caller.entry(change, AGENT, &name, before.as_ref(), Some(&after))?;
    audit::commit(state, tx, entry).await?;
    Ok((after, before.is_some()))
}

pub(crate) fn agent_to_dto(a: AgentRecord) -> Agent {
    Agent {
        name: a.name,
        description: a.description,
        groups: a.groups,
        managed_by: managed_by_to_dto(a.managed_by),
    }
}
