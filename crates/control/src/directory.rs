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
    extract::Body, providers::managed_by_to_dto, put_status, validate, ControlState, Error, Write,
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
    Body(input): Body<GroupInput>,
) -> Result<(StatusCode, Json<Group>), Error> {
    let name = input.name.clone().unwrap_or_default();
    validate::name("name", &name)?;
    Ok((StatusCode::CREATED, Json(save_group(&state, name, input, Write::Create).await?)))
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
    Body(input): Body<GroupInput>,
) -> Result<(StatusCode, Json<Group>), Error> {
    validate::name_matches_path(&name, input.name.as_deref())?;
    let existed = state.store.group(&name).await?.is_some();
    let group = save_group(&state, name, input, Write::Replace).await?;
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
) -> Result<StatusCode, Error> {
    if !state.store.delete_group(&name).await? {
        return Err(Error::NotFound { kind: GROUP, name });
    }
    tracing::info!(group = %name, "group deleted through the admin api");
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn save_group(
    state: &ControlState,
    name: String,
    input: GroupInput,
    write: Write,
) -> Result<Group, Error> {
    validate::text("description", &input.description)?;
    let record = GroupRecord { name, description: input.description, managed_by: ManagedBy::Api };
    match write {
        Write::Create => state.store.create_group(&record).await?,
        Write::Replace => state.store.put_group(&record).await?,
    }
    tracing::info!(group = %record.name, "group saved through the admin api");
    state.changed();
    Ok(group_to_dto(record))
}

fn group_to_dto(g: GroupRecord) -> Group {
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
    Body(input): Body<AgentInput>,
) -> Result<(StatusCode, Json<Agent>), Error> {
    let name = input.name.clone().unwrap_or_default();
    validate::name("name", &name)?;
    Ok((StatusCode::CREATED, Json(save_agent(&state, name, input, Write::Create).await?)))
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
    Body(input): Body<AgentInput>,
) -> Result<(StatusCode, Json<Agent>), Error> {
    validate::name_matches_path(&name, input.name.as_deref())?;
    let existed = state.store.agent(&name).await?.is_some();
    let agent = save_agent(&state, name, input, Write::Replace).await?;
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
) -> Result<StatusCode, Error> {
    if !state.store.delete_agent(&name).await? {
        return Err(Error::NotFound { kind: AGENT, name });
    }
    tracing::info!(agent = %name, "agent deleted through the admin api");
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn save_agent(
    state: &ControlState,
    name: String,
    input: AgentInput,
    write: Write,
) -> Result<Agent, Error> {
    validate::text("description", &input.description)?;
    let record = AgentRecord {
        name,
        description: input.description,
        groups: validate::references("groups", input.groups, true)?,
        managed_by: ManagedBy::Api,
    };
    match write {
        Write::Create => state.store.create_agent(&record).await?,
        Write::Replace => state.store.put_agent(&record).await?,
    }
    tracing::info!(agent = %record.name, "agent saved through the admin api");
    state.changed();
    Ok(agent_to_dto(record))
}

fn agent_to_dto(a: AgentRecord) -> Agent {
    Agent {
        name: a.name,
        description: a.description,
        groups: a.groups,
        managed_by: managed_by_to_dto(a.managed_by),
    }
}
