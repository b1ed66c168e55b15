//! The discovery endpoints (RFC 7644 §4): `ServiceProviderConfig` (what this server supports),
//! `ResourceTypes` (User with the enterprise extension, Group) and `Schemas` (their attribute
//! definitions). Filters on these are not supported and ignored, as RFC 7644 §4 allows.

use axum::{
    extract::{Path, State},
    response::Response,
};
use http::StatusCode;
use serde_json::{json, Value};

use super::{
    error::ScimError,
    schema::{self, ResourceDef},
    scim_response, BaseUrl, ScimState, LIST_URN, MAX_RESULTS,
};

const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

fn defs() -> [&'static ResourceDef; 2] {
    [schema::users(), schema::groups()]
}

pub(crate) async fn service_provider_config(
    State(_): State<ScimState>,
    BaseUrl(base): BaseUrl,
) -> Response {
    let body = json!({
        "schemas": [SPC_URN],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The SCIM token an agentnet admin creates with `agentnet admin scim token`, sent as 'Authorization: Bearer <token>'.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    });
    scim_response(StatusCode::OK, &body)
}

fn resource_type_json(base: &str, def: &ResourceDef) -> Value {
    let extensions: Vec<Value> =
        def.extensions.iter().map(|s| json!({"schema": s.urn, "required": false})).collect();
    let mut body = json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": def.name,
        "name": def.name,
        "endpoint": format!("/{}", def.endpoint),
        "description": def.core.json.get("description").cloned().unwrap_or(Value::Null),
        "schema": def.core.urn,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{}", def.name),
        },
    });
    if !extensions.is_empty() {
        body["schemaExtensions"] = Value::Array(extensions);
    }
    body
}

pub(crate) async fn resource_types(State(_): State<ScimState>, BaseUrl(base): BaseUrl) -> Response {
    let all: Vec<Value> = defs().iter().map(|d| resource_type_json(&base, d)).collect();
    scim_response(StatusCode::OK, &list(all))
}

pub(crate) async fn resource_type(
    State(_): State<ScimState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let def = defs()
        .into_iter()
        .find(|d| d.name.eq_ignore_ascii_case(&id))
        .ok_or_else(|| ScimError::not_found(format!("no resource type '{id}'")))?;
    Ok(scim_response(StatusCode::OK, &resource_type_json(&base, def)))
}

fn schema_json(base: &str, schema: &schema::Schema) -> Value {
    let mut body = schema.json.clone();
    body["schemas"] = json!([SCHEMA_URN]);
    body["meta"] = json!({
        "resourceType": "Schema",
        "location": format!("{base}/Schemas/{}", schema.urn),
    });
    body
}

fn all_schemas() -> impl Iterator<Item = &'static schema::Schema> {
    defs().into_iter().flat_map(ResourceDef::schemas)
}

pub(crate) async fn schemas(State(_): State<ScimState>, BaseUrl(base): BaseUrl) -> Response {
    let all: Vec<Value> = all_schemas().map(|s| schema_json(&base, s)).collect();
    scim_response(StatusCode::OK, &list(all))
}

pub(crate) async fn schema(
    State(_): State<ScimState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let schema = all_schemas()
        .find(|s| s.urn.eq_ignore_ascii_case(&id))
        .ok_or_else(|| ScimError::not_found(format!("no schema '{id}'")))?;
    Ok(scim_response(StatusCode::OK, &schema_json(&base, schema)))
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
