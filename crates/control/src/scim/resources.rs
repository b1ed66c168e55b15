//! `/Users` and `/Groups`: list (filter, pagination, `attributes` / `excludedAttributes`),
//! `.search`, get, create, replace (PUT), patch and delete; and `/.search` across both.
//!
//! A resource is rendered from what the store holds: the stored JSON, plus `id`, `meta`
//! (`location` and `$ref`s built from the URL the client used), `schemas`, and the
//! memberships: a group's `members`, a user's read-only `groups`. A group's members are read
//! only when the answer shows them or the filter needs them (Entra lists groups with
//! `excludedAttributes=members`).

use axum::{
    extract::{Path, State},
    response::Response,
};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use scim_v2::filter::Filter;
use serde_json::{json, Map, Value};
use store::{Members, ScimGroup, ScimGroupData, ScimGroupRef, ScimLookup, ScimUser, ScimUserData};

use super::{
    error::ScimError,
    filter, patch,
    schema::{self, normalize_resource, Projection, ResourceDef},
    scim_response, BaseUrl, ScimBody, ScimQuery, ScimState, LIST_URN, MAX_RESULTS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
}

impl Kind {
    fn def(self) -> &'static ResourceDef {
        match self {
            Kind::User => schema::users(),
            Kind::Group => schema::groups(),
        }
    }
}

/// The parameters of a query (GET with a query string, or a SearchRequest body).
#[derive(Debug, Default)]
struct Params {
    filter: Option<Filter>,
    /// 1-based.
    start_index: u64,
    count: u64,
    attributes: Vec<String>,
    excluded: Vec<String>,
}

impl Params {
    fn from_query(query: &ScimQuery) -> Result<Self, ScimError> {
        let q = &query.0;
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            q.get(name)
                .map(|v| {
                    v.trim().parse::<i64>().map_err(|_| {
                        ScimError::invalid_value(format!("'{name}' must be an integer, not '{v}'"))
                    })
                })
                .transpose()
        };
        Self::new(
            q.get("filter").map(String::as_str),
            number("startindex")?,
            number("count")?,
            q.get("attributes").cloned().into_iter().collect(),
            q.get("excludedattributes").cloned().into_iter().collect(),
        )
    }

    fn from_body(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(body) = body else {
            return Err(ScimError::invalid_syntax("a search body is a SearchRequest object"));
        };
        let field =
            |name: &str| body.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            match field(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .map(Some)
                    .ok_or_else(|| {
                        ScimError::invalid_value(format!("'{name}' must be an integer"))
                    }),
            }
        };
        let strings = |name: &str| -> Result<Vec<String>, ScimError> {
            match field(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("'{name}' must list attribute names"))
                        })
                    })
                    .collect(),
                Some(_) => {
                    Err(ScimError::invalid_value(format!("'{name}' must list attribute names")))
                }
            }
        };
        let filter = match field("filter") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(ScimError::invalid_filter("'filter' must be a string")),
        };
        Self::new(
            filter,
            number("startIndex")?,
            number("count")?,
            strings("attributes")?,
            strings("excludedAttributes")?,
        )
    }

    fn new(
        filter: Option<&str>,
        start_index: Option<i64>,
        count: Option<i64>,
        attributes: Vec<String>,
        excluded: Vec<String>,
    ) -> Result<Self, ScimError> {
        if !attributes.is_empty() && !excluded.is_empty() {
            return Err(ScimError::invalid_value(
                "'attributes' and 'excludedAttributes' cannot be given together",
            ));
        }
        let filter = match filter.map(str::trim).filter(|f| !f.is_empty()) {
            Some(text) => Some(filter::parse(text)?),
            None => None,
        };
        Ok(Params {
            filter,
            // RFC 7644 §3.4.2.4: below 1 is 1; a negative count is 0; above the maximum is it.
            start_index: start_index.map_or(1, |s| u64::try_from(s.max(1)).unwrap_or(1)),
            count: count
                .map_or(MAX_RESULTS, |c| u64::try_from(c.max(0)).unwrap_or(0).min(MAX_RESULTS)),
            attributes,
            excluded,
        })
    }

    fn projection(&self, kind: Kind) -> Result<Projection, ScimError> {
        Projection::parse(kind.def(), &self.attributes, &self.excluded)
    }
}

// ---- handlers --------------------------------------------------------------------------------

pub(crate) async fn list_users(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    query: ScimQuery,
) -> Result<Response, ScimError> {
    list(&state, &base, &[Kind::User], Params::from_query(&query)?).await
}

pub(crate) async fn list_groups(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    query: ScimQuery,
) -> Result<Response, ScimError> {
    list(&state, &base, &[Kind::Group], Params::from_query(&query)?).await
}

pub(crate) async fn search_users(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    list(&state, &base, &[Kind::User], Params::from_body(&body)?).await
}

pub(crate) async fn search_groups(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    list(&state, &base, &[Kind::Group], Params::from_body(&body)?).await
}

/// `POST /.search`: users and groups together.
pub(crate) async fn search_all(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    list(&state, &base, &[Kind::User, Kind::Group], Params::from_body(&body)?).await
}

pub(crate) async fn get_user(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    query: ScimQuery,
) -> Result<Response, ScimError> {
    let params = Params::from_query(&query)?;
    let user = state.store.scim_user(&id).await?.ok_or_else(|| not_found(Kind::User, &id))?;
    let rendered = render_users(&state, &base, vec![user]).await?.pop().unwrap_or_default();
    Ok(one(StatusCode::OK, Kind::User, &params.projection(Kind::User)?, rendered))
}

pub(crate) async fn get_group(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    query: ScimQuery,
) -> Result<Response, ScimError> {
    let projection = Params::from_query(&query)?.projection(Kind::Group)?;
    let members = if projection.shows("members") { Members::Load } else { Members::Skip };
    let group =
        state.store.scim_group(&id, members).await?.ok_or_else(|| not_found(Kind::Group, &id))?;
    let rendered = render_group(&base, &group, members == Members::Load);
    Ok(one(StatusCode::OK, Kind::Group, &projection, rendered))
}

pub(crate) async fn create_user(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let projection = Params::from_query(&query)?.projection(Kind::User)?;
    let data = user_data(normalize_resource(Kind::User.def(), object(&body)?))?;
    let user = state.store.scim_create_user(&data, user_audit(&headers)).await?;
    tracing::info!(scim_user = %user.id, user_name = %user.data.user_name, active = user.data.active, "SCIM user created");
    state.changed().await;
    let rendered = render_users(&state, &base, vec![user]).await?.pop().unwrap_or_default();
    Ok(one(StatusCode::CREATED, Kind::User, &projection, rendered))
}

pub(crate) async fn create_group(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let projection = Params::from_query(&query)?.projection(Kind::Group)?;
    let mut doc = normalize_resource(Kind::Group.def(), object(&body)?);
    let members = take_members(&mut doc)?;
    let group =
        state.store.scim_create_group(&group_data(doc, members)?, group_audit(&headers)).await?;
    tracing::info!(scim_group = %group.id, display_name = %group.data.display_name, members = group.data.members.len(), "SCIM group created");
    state.changed().await;
    Ok(one(StatusCode::CREATED, Kind::Group, &projection, render_group(&base, &group, true)))
}

pub(crate) async fn replace_user(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let projection = Params::from_query(&query)?.projection(Kind::User)?;
    let data = user_data(normalize_resource(Kind::User.def(), object(&body)?))?;
    let user = state
        .store
        .scim_modify_user::<ScimError, _, _>(&id, |_| Ok(data), user_audit(&headers))
        .await
        .map_err(|e| on(Kind::User, &id, e))?;
    tracing::info!(scim_user = %user.id, user_name = %user.data.user_name, active = user.data.active, "SCIM user replaced");
    state.changed().await;
    let rendered = render_users(&state, &base, vec![user]).await?.pop().unwrap_or_default();
    Ok(one(StatusCode::OK, Kind::User, &projection, rendered))
}

pub(crate) async fn replace_group(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let projection = Params::from_query(&query)?.projection(Kind::Group)?;
    let mut doc = normalize_resource(Kind::Group.def(), object(&body)?);
    let members = take_members(&mut doc)?;
    let data = group_data(doc, members)?;
    let group = state
        .store
        .scim_modify_group::<ScimError, _, _>(&id, |_| Ok(data), group_audit(&headers))
        .await
        .map_err(|e| on(Kind::Group, &id, e))?;
    tracing::info!(scim_group = %group.id, display_name = %group.data.display_name, members = group.data.members.len(), "SCIM group replaced");
    state.changed().await;
    Ok(one(StatusCode::OK, Kind::Group, &projection, render_group(&base, &group, true)))
}

pub(crate) async fn patch_user(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let projection = Params::from_query(&query)?.projection(Kind::User)?;
    let ops = patch::parse(&body)?;
    let def = Kind::User.def();
    let user = state
        .store
        .scim_modify_user::<ScimError, _, _>(
            &id,
            |current| {
                let mut doc = current.data.resource.clone();
                patch::apply(def, &mut doc, &ops)?;
                user_data(normalize_resource(def, &doc))
            },
            user_audit(&headers),
        )
        .await
        .map_err(|e| on(Kind::User, &id, e))?;
    tracing::info!(scim_user = %user.id, user_name = %user.data.user_name, active = user.data.active, "SCIM user patched");
    state.changed().await;
    let rendered = render_users(&state, &base, vec![user]).await?.pop().unwrap_or_default();
    Ok(one(StatusCode::OK, Kind::User, &projection, rendered))
}

pub(crate) async fn patch_group(
    State(state): State<ScimState>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let projection = Params::from_query(&query)?.projection(Kind::Group)?;
    let ops = patch::parse(&body)?;
    let def = Kind::Group.def();
    let group = state
        .store
        .scim_modify_group::<ScimError, _, _>(
            &id,
            |current| {
                let mut doc = current.data.resource.clone();
                if !current.data.members.is_empty() {
                    let members =
                        current.data.members.iter().map(|m| json!({"value": m})).collect();
                    doc.insert("members".into(), Value::Array(members));
                }
                patch::apply(def, &mut doc, &ops)?;
                let mut doc = normalize_resource(def, &doc);
                let members = take_members(&mut doc)?;
                group_data(doc, members)
            },
            group_audit(&headers),
        )
        .await
        .map_err(|e| on(Kind::Group, &id, e))?;
    tracing::info!(scim_group = %group.id, display_name = %group.data.display_name, members = group.data.members.len(), "SCIM group patched");
    state.changed().await;
    Ok(one(StatusCode::OK, Kind::Group, &projection, render_group(&base, &group, true)))
}

pub(crate) async fn delete_user(
    State(state): State<ScimState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    if !state.store.scim_delete_user(&id, user_audit(&headers)).await? {
        return Err(not_found(Kind::User, &id));
    }
    tracing::info!(scim_user = %id, "SCIM user deleted");
    state.changed().await;
    Ok(no_content())
}

pub(crate) async fn delete_group(
    State(state): State<ScimState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    if !state.store.scim_delete_group(&id, group_audit(&headers)).await? {
        return Err(not_found(Kind::Group, &id));
    }
    tracing::info!(scim_group = %id, "SCIM group deleted");
    state.changed().await;
    Ok(no_content())
}

// ---- audit -----------------------------------------------------------------------------------

/// The audit entry of a write to a user, from the user before and after it: `scim.user.create`,
/// `.update`, `.deactivate` (`active` from true to false) or `.delete`.
fn user_audit(
    headers: &HeaderMap,
) -> impl FnOnce(Option<&ScimUser>, Option<&ScimUser>) -> store::AuditEntry {
    let request_id = crate::audit::request_id(headers);
    move |before, after| {
        let verb = match (before, after) {
            (None, _) => "create",
            (Some(_), None) => "delete",
            (Some(b), Some(a)) if b.data.active && !a.data.active => "deactivate",
            (Some(_), Some(_)) => "update",
        };
        let snapshot = |user: &ScimUser| {
            let mut out = Map::new();
            out.insert("id".into(), json!(user.id));
            out.extend(user.data.resource.clone());
            out
        };
        audit_entry(
            Kind::User,
            verb,
            before.or(after).map_or("", |u| u.id.as_str()),
            before.map(snapshot),
            after.map(snapshot),
            request_id,
        )
    }
}

/// The audit entry of a write to a group, from the group before and after it (with its member
/// ids): `scim.group.create`, `.update` or `.delete`.
fn group_audit(
    headers: &HeaderMap,
) -> impl FnOnce(Option<&ScimGroup>, Option<&ScimGroup>) -> store::AuditEntry {
    let request_id = crate::audit::request_id(headers);
    move |before, after| {
        let verb = match (before, after) {
            (None, _) => "create",
            (Some(_), None) => "delete",
            (Some(_), Some(_)) => "update",
        };
        let snapshot = |group: &ScimGroup| {
            let mut out = Map::new();
            out.insert("id".into(), json!(group.id));
            out.extend(group.data.resource.clone());
            out.insert("members".into(), json!(group.data.members));
            out
        };
        audit_entry(
            Kind::Group,
            verb,
            before.or(after).map_or("", |g| g.id.as_str()),
            before.map(snapshot),
            after.map(snapshot),
            request_id,
        )
    }
}

/// An entry by the SCIM client. The snapshots are stored resources, which never hold a
/// password (it is write-only and dropped when a resource is normalized); any key named like
/// one is dropped here as well, in case.
fn audit_entry(
    kind: Kind,
    verb: &str,
    target: &str,
    before: Option<Map<String, Value>>,
    after: Option<Map<String, Value>>,
    request_id: Option<String>,
) -> store::AuditEntry {
    let (noun, target_kind) = match kind {
        Kind::User => ("user", "scim-user"),
        Kind::Group => ("group", "scim-group"),
    };
    let actor = store::ActorKind::Scim;
    let action = format!("scim.{noun}.{verb}");
    let mut entry = store::AuditEntry::new(actor, actor.as_str(), action, target_kind, target);
    let clean = |mut doc: Map<String, Value>| {
        doc.retain(|key, _| !key.eq_ignore_ascii_case("password"));
        Value::Object(doc)
    };
    entry.before = before.map(clean);
    entry.after = after.map(clean);
    entry.request_id = request_id;
    entry
}

// ---- queries ---------------------------------------------------------------------------------

/// Answers a query over one or both resource types with a ListResponse.
async fn list(
    state: &ScimState,
    base: &str,
    kinds: &[Kind],
    params: Params,
) -> Result<Response, ScimError> {
    let offset = params.start_index - 1;
    let (total, page) = match (&params.filter, kinds) {
        // No filter, one type: the store pages.
        (None, [kind]) => {
            let projection = params.projection(*kind)?;
            let (total, rendered) = match kind {
                Kind::User => {
                    let (total, users) = state.store.scim_users_page(offset, params.count).await?;
                    (total, render_users(state, base, users).await?)
                }
                Kind::Group => {
                    let members =
                        if projection.shows("members") { Members::Load } else { Members::Skip };
                    let (total, groups) =
                        state.store.scim_groups_page(offset, params.count, members).await?;
                    let rendered = groups
                        .iter()
                        .map(|g| render_group(base, g, members == Members::Load))
                        .collect();
                    (total, rendered)
                }
            };
            (
                total,
                rendered.into_iter().map(|r| projection.apply(kind.def(), r)).collect::<Vec<_>>(),
            )
        }
        _ => {
            let mut all = Vec::new();
            for &kind in kinds {
                let projection = params.projection(kind)?;
                for resource in
                    matching(state, base, kind, params.filter.as_ref(), &projection).await?
                {
                    all.push(projection.apply(kind.def(), resource));
                }
            }
            let total = all.len() as u64;
            let page = all.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX));
            (total, page.take(usize::try_from(params.count).unwrap_or(usize::MAX)).collect())
        }
    };
    let body = json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": params.start_index,
        "itemsPerPage": page.len(),
        "Resources": page,
    });
    Ok(scim_response(StatusCode::OK, &body))
}

/// Every resource of a type that matches `filter`, rendered, oldest first.
async fn matching(
    state: &ScimState,
    base: &str,
    kind: Kind,
    filter: Option<&Filter>,
    projection: &Projection,
) -> Result<Vec<Map<String, Value>>, ScimError> {
    let def = kind.def();
    let lookup = filter.map_or(ScimLookup::All, |f| filter::lookup(def, f));
    let rendered = match kind {
        Kind::User => {
            render_users(state, base, state.store.scim_find_users(&lookup).await?).await?
        }
        Kind::Group => {
            let load = projection.shows("members")
                || filter.is_some_and(|f| filter::mentions(f, "members"));
            let members = if load { Members::Load } else { Members::Skip };
            let groups = state.store.scim_find_groups(&lookup, members).await?;
            groups.iter().map(|g| render_group(base, g, load)).collect()
        }
    };
    Ok(match filter {
        Some(f) => rendered.into_iter().filter(|r| filter::matches(def, r, f)).collect(),
        None => rendered,
    })
}

// ---- rendering -------------------------------------------------------------------------------

async fn render_users(
    state: &ScimState,
    base: &str,
    users: Vec<ScimUser>,
) -> Result<Vec<Map<String, Value>>, ScimError> {
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let mut groups = state.store.scim_user_groups(&ids).await?;
    Ok(users
        .iter()
        .map(|user| render_user(base, user, &groups.remove(&user.id).unwrap_or_default()))
        .collect())
}

fn render_user(base: &str, user: &ScimUser, groups: &[ScimGroupRef]) -> Map<String, Value> {
    let mut out = user.data.resource.clone();
    out.insert("id".into(), json!(user.id));
    if !groups.is_empty() {
        let groups = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.id,
                    "$ref": format!("{base}/Groups/{}", g.id),
                    "display": g.display_name,
                    "type": "direct",
                })
            })
            .collect();
        out.insert("groups".into(), Value::Array(groups));
    }
    out.insert("meta".into(), meta(base, Kind::User, &user.id, &user.meta));
    out
}

fn render_group(base: &str, group: &ScimGroup, with_members: bool) -> Map<String, Value> {
    let mut out = group.data.resource.clone();
    out.insert("id".into(), json!(group.id));
    out.remove("members");
    if with_members && !group.data.members.is_empty() {
        let members = group
            .data
            .members
            .iter()
            .map(|m| json!({"value": m, "$ref": format!("{base}/Users/{m}"), "type": "User"}))
            .collect();
        out.insert("members".into(), Value::Array(members));
    }
    out.insert("meta".into(), meta(base, Kind::Group, &group.id, &group.meta));
    out
}

fn meta(base: &str, kind: Kind, id: &str, meta: &store::ScimMeta) -> Value {
    let def = kind.def();
    json!({
        "resourceType": def.name,
        "created": api_types::time::format_rfc3339(meta.created_at_ms),
        "lastModified": api_types::time::format_rfc3339(meta.updated_at_ms),
        "location": format!("{base}/{}/{id}", def.endpoint),
        "version": format!("W/\"{}\"", meta.version),
    })
}

/// One resource as a response: projected, with its `Location` (on 201 too).
fn one(
    status: StatusCode,
    kind: Kind,
    projection: &Projection,
    rendered: Map<String, Value>,
) -> Response {
    let location = rendered
        .get("meta")
        .and_then(|m| m.get("location"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let version = rendered
        .get("meta")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = Value::Object(projection.apply(kind.def(), rendered));
    let mut response = scim_response(status, &body);
    for (name, value) in [(header::LOCATION, location), (header::ETAG, version)] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn no_content() -> Response {
    let mut response = Response::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

// ---- writes ----------------------------------------------------------------------------------

fn object(body: &Value) -> Result<&Map<String, Value>, ScimError> {
    body.as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))
}

/// What the store keeps of a normalized user: the resource and the columns derived from it.
fn user_data(resource: Map<String, Value>) -> Result<ScimUserData, ScimError> {
    let text = |value: Option<&Value>, name: &str| -> Result<Option<String>, ScimError> {
        match value {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be a string"))),
        }
    };
    let user_name = text(resource.get("userName"), "userName")?
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("'userName' is required"))?;
    let active = match resource.get("active") {
        None => true,
        Some(Value::Bool(active)) => *active,
        Some(_) => return Err(ScimError::invalid_value("'active' must be a boolean")),
    };
    let name = resource.get("name").and_then(Value::as_object);
    let mut emails: Vec<(bool, String)> = resource
        .get("emails")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|e| {
                    let value = e.get("value")?.as_str()?.trim();
                    (!value.is_empty())
                        .then(|| (e.get("primary") == Some(&Value::Bool(true)), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    emails.sort_by_key(|(primary, _)| !primary);
    Ok(ScimUserData {
        external_id: text(resource.get("externalId"), "externalId")?,
        display_name: text(resource.get("displayName"), "displayName")?,
        given_name: text(name.and_then(|n| n.get("givenName")), "name.givenName")?,
        family_name: text(name.and_then(|n| n.get("familyName")), "name.familyName")?,
        emails: emails.into_iter().map(|(_, e)| e).collect(),
        user_name,
        active,
        resource,
    })
}

fn group_data(
    resource: Map<String, Value>,
    members: Vec<String>,
) -> Result<ScimGroupData, ScimError> {
    let display_name = match resource.get("displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => {
            return Err(ScimError::invalid_value("'displayName' is required"))
        }
        Some(_) => return Err(ScimError::invalid_value("'displayName' must be a string")),
    };
    let external_id = match resource.get("externalId") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ScimError::invalid_value("'externalId' must be a string")),
    };
    Ok(ScimGroupData { display_name, external_id, resource, members })
}

/// Takes the member ids out of a normalized group: each member's `value`, or the last segment
/// of its `$ref`. Only users can be members.
fn take_members(doc: &mut Map<String, Value>) -> Result<Vec<String>, ScimError> {
    let Some(Value::Array(members)) = doc.remove("members") else { return Ok(Vec::new()) };
    members
        .iter()
        .map(|member| {
            if member
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("Group"))
            {
                return Err(ScimError::invalid_value(
                    "groups cannot be members of groups here; only users",
                ));
            }
            let by_ref = || {
                member
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.trim_end_matches('/').rsplit('/').next())
            };
            member
                .get("value")
                .and_then(Value::as_str)
                .or_else(by_ref)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    ScimError::invalid_value("a member needs a 'value': the id of a user")
                })
        })
        .collect()
}

fn not_found(kind: Kind, id: &str) -> ScimError {
    ScimError::not_found(format!("{} '{id}' not found", kind.def().name))
}

/// A store's not-found for the resource in the path, in SCIM words.
fn on(kind: Kind, id: &str, err: ScimError) -> ScimError {
    if err.status == StatusCode::NOT_FOUND {
        not_found(kind, id)
    } else {
        err
    }
}
