//! SCIM server tests through `Router::oneshot` on an in-memory store. The request bodies are the
//! ones Okta and Entra ID document for their SCIM clients (Okta: "SCIM 2.0 protocol reference";
//! Microsoft: "Tutorial: Develop and plan provisioning for a SCIM endpoint"), plus the RFC 7644
//! behaviour around them: filters, pagination, projections, errors, authentication, and
//! `on_change` awaited before every mutation's response.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{body::Body, Router};
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const BASE: &str = "https://agentnet.example.com/scim/v2";

/// The audit entry of a token rotation made directly on the store.
fn token_entry(_: Option<i64>, _: i64) -> store::AuditEntry {
    store::AuditEntry::new(
        store::ActorKind::System,
        "test",
        "scim.token.create",
        "scim-token",
        "token",
    )
}

struct Harness {
    router: Router,
    store: store::Store,
    token: String,
    /// Incremented by `on_change` after a delay: a response that sees it incremented proves the
    /// handler awaited it.
    changes: Arc<AtomicUsize>,
}

async fn harness() -> Harness {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    let token =
        store.scim_token_rotate(token_entry).await.unwrap().secret.expose_secret().to_owned();
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    let state = ScimState {
        store: store.clone(),
        on_change: Arc::new(move || {
            let counter = counter.clone();
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            })
        }),
    };
    Harness { router: scim_router(state), store, token, changes }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

impl Harness {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "agentnet.example.com")
            .header("x-forwarded-proto", "https");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/scim+json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            assert_eq!(headers[header::CONTENT_TYPE], "application/scim+json", "{path}");
            serde_json::from_slice(&bytes).unwrap()
        };
        Answer { status, headers, body }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let answer = self.send(method, path, Some(&self.token.clone()), body).await;
        (answer.status, answer.body)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method.clone(), path, Some(body)).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    async fn patch(&self, path: &str, operations: Value) -> Value {
        self.ok(Method::PATCH, path, json!({"schemas": [PATCH], "Operations": operations})).await
    }

    async fn create_user(&self, user_name: &str) -> String {
        let created = self
            .ok(
                Method::POST,
                "/scim/v2/Users",
                json!({"schemas": [USER], "userName": user_name, "active": true}),
            )
            .await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let created = self
            .ok(
                Method::POST,
                "/scim/v2/Groups",
                json!({"schemas": [GROUP], "displayName": name, "members": members}),
            )
            .await;
        created["id"].as_str().unwrap().to_owned()
    }

    fn changes(&self) -> usize {
        self.changes.load(Ordering::SeqCst)
    }

    async fn directory_user(&self, user_name: &str) -> store::DirectoryUser {
        self.store
            .directory()
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.user_name == user_name)
            .unwrap()
    }
}

/// `status scimType: detail` of a SCIM error, after checking its shape.
fn error((status, body): (StatusCode, Value)) -> String {
    assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{body}");
    assert_eq!(body["status"], json!(status.as_str()), "status is a string: {body}");
    format!(
        "{} {}: {}",
        status.as_u16(),
        body["scimType"].as_str().unwrap_or("-"),
        body["detail"].as_str().unwrap()
    )
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

// ---- Okta ------------------------------------------------------------------------------------

#[tokio::test]
async fn okta_user_lifecycle() {
    let h = harness().await;

    // Okta's existence check before a create: 200 and an empty list, not a 404.
    let empty = h
        .get("/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100")
        .await;
    assert_eq!(
        empty,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
               "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );

    // Okta's create, with a password and externalId.
    let okta_user = json!({
        "schemas": [USER],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    let answer =
        h.send(Method::POST, "/scim/v2/Users", Some(&h.token), Some(okta_user.clone())).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(h.changes(), 1, "on_change was awaited before the response");
    let user = answer.body;
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(answer.headers[header::LOCATION], format!("{BASE}/Users/{id}"));
    assert_eq!(user["schemas"], json!([USER]));
    assert_eq!(user["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(user["active"], true);
    assert_eq!(user["name"], json!({"givenName": "Test", "familyName": "User"}));
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["location"], format!("{BASE}/Users/{id}"));
    assert_eq!(user["meta"]["version"], "W/\"1\"");
    assert!(user.get("password").is_none() && user.get("groups").is_none(), "{user}");
    // The password is not stored anywhere.
    let stored = h.store.scim_user(&id).await.unwrap().unwrap();
    assert!(!Value::Object(stored.data.resource).to_string().contains("1mz050nq"));

    // A second create of the same userName (any case) is a 409 uniqueness.
    let mut again = okta_user.clone();
    again["userName"] = json!("Test.User@OKTA.local");
    assert_eq!(
        error(h.call(Method::POST, "/scim/v2/Users", Some(again)).await),
        "409 uniqueness: a SCIM user named 'Test.User@OKTA.local' already exists"
    );

    // The existence check now finds it, case-insensitively.
    let found = h.get("/scim/v2/Users?filter=userName%20eq%20%22TEST.USER%40okta.local%22&startIndex=1&count=100").await;
    assert_eq!((found["totalResults"].clone(), ids(&found)), (json!(1), vec![id.clone()]));

    // Okta's profile update: a PUT of the whole user.
    let mut put = okta_user.clone();
    put["id"] = json!(id);
    put["name"]["givenName"] = json!("Another");
    put.as_object_mut().unwrap().remove("locale");
    let updated = h.ok(Method::PUT, &format!("/scim/v2/Users/{id}"), put).await;
    assert_eq!(updated["name"]["givenName"], "Another");
    assert!(updated.get("locale").is_none(), "PUT replaces: what is left out is gone");
    assert_eq!(updated["meta"]["version"], "W/\"2\"");

    // Okta's deactivation: replace without a path.
    let deactivated = h
        .patch(
            &format!("/scim/v2/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(deactivated["active"], false);
    assert!(!h.directory_user("test.user@okta.local").await.active);
    // And back.
    h.patch(&format!("/scim/v2/Users/{id}"), json!([{"op": "replace", "value": {"active": true}}]))
        .await;
    assert!(h.directory_user("test.user@okta.local").await.active);

    // Okta's password sync: accepted, never stored.
    h.patch(
        &format!("/scim/v2/Users/{id}"),
        json!([{"op": "replace", "value": {"password": "t1meMa$heen"}}]),
    )
    .await;
    let stored = h.store.scim_user(&id).await.unwrap().unwrap();
    assert!(!Value::Object(stored.data.resource).to_string().contains("t1meMa$heen"));
    assert_eq!(h.changes(), 5);

    assert_eq!(
        error(h.call(Method::GET, "/scim/v2/Users/010101", None).await),
        "404 -: User '010101' not found"
    );
    assert_eq!(
        error(h.call(Method::PATCH, "/scim/v2/Users/010101", Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]}))).await),
        "404 -: User '010101' not found"
    );
    assert_eq!(h.changes(), 5, "failed requests do not report a change");
}

#[tokio::test]
async fn okta_group_push() {
    let h = harness().await;
    let alice = h.create_user("alice@okta.local").await;
    let bob = h.create_user("bob@okta.local").await;

    let created = h
        .ok(
            Method::POST,
            "/scim/v2/Groups",
            json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}),
        )
        .await;
    let gid = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["meta"]["location"], format!("{BASE}/Groups/{gid}"));
    assert!(created.get("members").is_none());
    assert_eq!(
        error(
            h.call(
                Method::POST,
                "/scim/v2/Groups",
                Some(json!({"schemas": [GROUP], "displayName": "test scimv2"}))
            )
            .await
        ),
        "409 uniqueness: a SCIM group named 'test scimv2' already exists"
    );

    // Okta adds members.
    let group = h
        .patch(
            &format!("/scim/v2/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": alice, "display": "alice@okta.local"}]}]),
        )
        .await;
    assert_eq!(
        group["members"],
        json!([{"value": alice, "$ref": format!("{BASE}/Users/{alice}"), "type": "User"}])
    );
    assert_eq!(h.directory_user("alice@okta.local").await.groups, ["Test SCIMv2"]);

    // Okta renames a group with a path-less replace that includes the id.
    let group = h
        .patch(
            &format!("/scim/v2/Groups/{gid}"),
            json!([{"op": "replace", "value": {"id": gid, "displayName": "Engineers"}}]),
        )
        .await;
    assert_eq!(group["displayName"], "Engineers");
    assert_eq!(group["id"], json!(gid));
    assert_eq!(h.directory_user("alice@okta.local").await.groups, ["Engineers"]);

    // Okta removes a member by filter.
    let group = h
        .patch(
            &format!("/scim/v2/Groups/{gid}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{alice}\"]")}]),
        )
        .await;
    assert!(group.get("members").is_none(), "{group}");
    assert!(h.directory_user("alice@okta.local").await.groups.is_empty());

    // Okta replaces the member list.
    let group = h
        .patch(
            &format!("/scim/v2/Groups/{gid}"),
            json!([{"op": "replace", "path": "members", "value": [{"value": alice}, {"value": bob}]}]),
        )
        .await;
    assert_eq!(member_ids(&group), sorted(vec![alice.clone(), bob.clone()]));
    let group = h
        .patch(
            &format!("/scim/v2/Groups/{gid}"),
            json!([{"op": "replace", "path": "members", "value": [{"value": bob}]}]),
        )
        .await;
    assert_eq!(member_ids(&group), vec![bob.clone()]);

    // Okta deletes the group; the memberships go with it.
    let before = h.changes();
    let answer =
        h.send(Method::DELETE, &format!("/scim/v2/Groups/{gid}"), Some(&h.token), None).await;
    assert_eq!((answer.status, answer.body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(h.changes(), before + 1);
    assert_eq!(
        error(h.call(Method::GET, &format!("/scim/v2/Groups/{gid}"), None).await),
        format!("404 -: Group '{gid}' not found")
    );
    assert!(h.directory_user("bob@okta.local").await.groups.is_empty());
}

// ---- Entra ID --------------------------------------------------------------------------------

#[tokio::test]
async fn entra_user_shapes() {
    let h = harness().await;
    // "Test connection" probes with a random userName.
    let probe =
        h.get("/scim/v2/Users?filter=userName+eq+%226fd8a6d1-8a8c-4ca1-b5d8-7a5f3c8e1b2a%22").await;
    assert_eq!(probe["totalResults"], 0);

    let manager = h.create_user("manager@contoso.com").await;
    // Entra's create: both schemas, meta from the client (ignored), an empty roles list.
    let created = h
        .ok(
            Method::POST,
            "/scim/v2/Users",
            json!({
                "schemas": [USER, ENTERPRISE],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": [],
                ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}
            }),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let user_path = format!("/scim/v2/Users/{id}");
    assert_eq!(created["schemas"], json!([USER, ENTERPRISE]));
    assert_eq!(
        created[ENTERPRISE],
        json!({"employeeNumber": "701984", "department": "Tour Operations"})
    );
    assert!(created.get("roles").is_none(), "an empty list is unassigned");
    assert_eq!(created["meta"]["resourceType"], "User");

    // Entra's capitalized ops and boolean strings.
    let user =
        h.patch(&user_path, json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    assert_eq!(user["active"], false);
    assert!(!h.directory_user("Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1").await.active);
    let user =
        h.patch(&user_path, json!([{"op": "Replace", "path": "active", "value": "True"}])).await;
    assert_eq!(user["active"], true);

    // Entra's documented attribute updates: a filtered email path and a dotted one.
    let user = h
        .patch(
            &user_path,
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
            ]),
        )
        .await;
    assert_eq!(
        user["emails"],
        json!([{"primary": true, "type": "work", "value": "updatedEmail@microsoft.com"}])
    );
    assert_eq!(user["name"]["familyName"], "updatedFamilyName");
    assert_eq!(user["name"]["givenName"], "givenName");
    assert_eq!(
        h.directory_user("Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1").await.emails,
        ["updatedEmail@microsoft.com"]
    );

    // Entra's path-less replace with dotted and enterprise-URN keys (its non-compliant mode).
    let user = h
        .patch(
            &user_path,
            json!([{"op": "Replace", "value": {
                "displayName": "Jane Doe",
                "name.givenName": "Jane",
                "name.familyName": "Doe",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": manager,
                "active": "False"
            }}]),
        )
        .await;
    assert_eq!(user["displayName"], "Jane Doe");
    assert_eq!(
        user["name"],
        json!({"formatted": "givenName familyName", "givenName": "Jane", "familyName": "Doe"})
    );
    assert_eq!(
        user[ENTERPRISE],
        json!({"employeeNumber": "701984", "department": "Sales", "manager": {"value": manager}})
    );
    assert_eq!(user["active"], false);

    // A phone number Entra adds by filter on a user that has none, then a new work email on top.
    let user = h
        .patch(
            &user_path,
            json!([
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
                {"op": "Add", "path": "emails", "value": [{"value": "jane@contoso.com", "type": "other", "primary": true}]}
            ]),
        )
        .await;
    assert_eq!(user["phoneNumbers"], json!([{"type": "mobile", "value": "+1 555 0100"}]));
    assert_eq!(
        user["emails"],
        json!([
            {"primary": false, "type": "work", "value": "updatedEmail@microsoft.com"},
            {"primary": true, "type": "other", "value": "jane@contoso.com"}
        ]),
        "one primary"
    );
    assert_eq!(
        h.directory_user("Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1").await.emails,
        ["jane@contoso.com", "updatedEmail@microsoft.com"],
        "primary first"
    );

    // Entra removes the manager by its URN path, and renames.
    let user = h
        .patch(
            &user_path,
            json!([
                {"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"},
                {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}
            ]),
        )
        .await;
    assert_eq!(user[ENTERPRISE], json!({"employeeNumber": "701984", "department": "Sales"}));
    assert_eq!(user["userName"], "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com");

    // Entra deletes users.
    let answer = h.send(Method::DELETE, &user_path, Some(&h.token), None).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        error(h.call(Method::GET, &user_path, None).await),
        format!("404 -: User '{id}' not found")
    );
    assert_eq!(
        error(h.call(Method::DELETE, &user_path, None).await),
        format!("404 -: User '{id}' not found")
    );
}

#[tokio::test]
async fn entra_group_shapes() {
    let h = harness().await;
    let alice = h.create_user("alice@contoso.com").await;
    let bob = h.create_user("bob@contoso.com").await;
    let created = h
        .ok(
            Method::POST,
            "/scim/v2/Groups",
            json!({"schemas": [GROUP], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                   "displayName": "displayName", "meta": {"resourceType": "Group"}}),
        )
        .await;
    let gid = created["id"].as_str().unwrap().to_owned();
    let group_path = format!("/scim/v2/Groups/{gid}");
    assert_eq!(created["externalId"], "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159");

    // Member adds with `"$ref": null`; adding a member twice changes nothing.
    let add = json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": alice}]}]);
    h.patch(&group_path, add.clone()).await;
    let group = h.patch(&group_path, add).await;
    assert_eq!(member_ids(&group), vec![alice.clone()]);
    let group = h
        .patch(&group_path, json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": bob}, {"value": alice}]}]))
        .await;
    assert_eq!(member_ids(&group), sorted(vec![alice.clone(), bob.clone()]));
    assert_eq!(
        h.store.scim_group(&gid, store::Members::Load).await.unwrap().unwrap().data.members.len(),
        2
    );

    // Entra reads groups without their members.
    let listed = h
        .get("/scim/v2/Groups?excludedAttributes=members&filter=displayName+eq+%22displayName%22")
        .await;
    assert_eq!(ids(&listed), vec![gid.clone()]);
    assert!(listed["Resources"][0].get("members").is_none());
    assert_eq!(listed["Resources"][0]["displayName"], "displayName");
    let one = h.get(&format!("{group_path}?excludedAttributes=members")).await;
    assert!(one.get("members").is_none() && one["id"] == json!(gid));

    // Entra's membership check.
    let check = |user: &str| {
        format!(
        "/scim/v2/Groups?filter=id%20eq%20%22{gid}%22%20and%20members%20eq%20%22{user}%22&excludedAttributes=members"
    )
    };
    let yes = h.get(&check(&alice)).await;
    assert_eq!((yes["totalResults"].clone(), ids(&yes)), (json!(1), vec![gid.clone()]));
    assert!(yes["Resources"][0].get("members").is_none());

    // Member removal, Entra's default (non-compliant) shape: `members` with a value list.
    let group = h
        .patch(
            &group_path,
            json!([{"op": "Remove", "path": "members", "value": [{"value": alice}]}]),
        )
        .await;
    assert_eq!(member_ids(&group), vec![bob.clone()]);
    assert_eq!(h.get(&check(&alice)).await["totalResults"], 0);
    assert!(h.directory_user("alice@contoso.com").await.groups.is_empty());
    // …and its compliant shape: a value filter.
    let group = h
        .patch(
            &group_path,
            json!([{"op": "Remove", "path": format!("members[value eq \"{bob}\"]")}]),
        )
        .await;
    assert!(group.get("members").is_none());
    // Removing someone who is not a member is a no-op, not an error.
    h.patch(&group_path, json!([{"op": "Remove", "path": "members", "value": [{"value": bob}]}]))
        .await;

    // Entra renames with a path.
    let group = h.patch(&group_path, json!([{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}])).await;
    assert_eq!(group["displayName"], "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName");

    // A member that is not a user of this service is refused, and nothing changes.
    assert_eq!(
        error(h.call(Method::PATCH, &group_path, Some(json!({"schemas": [PATCH], "Operations": [
            {"op": "Add", "path": "members", "value": [{"value": alice}, {"value": "no-such-user"}]}
        ]}))).await),
        "400 invalidValue: member 'no-such-user' is not a SCIM user of this service"
    );
    assert!(h.get(&group_path).await.get("members").is_none());
}

// ---- PATCH semantics -------------------------------------------------------------------------

#[tokio::test]
async fn patch_semantics_and_errors() {
    let h = harness().await;
    let id = h.create_user("pat@example.com").await;
    let path = format!("/scim/v2/Users/{id}");
    let call = |ops: Value| {
        let h = &h;
        let path = path.clone();
        async move {
            h.call(Method::PATCH, &path, Some(json!({"schemas": [PATCH], "Operations": ops}))).await
        }
    };

    // Op names in any case; add to a complex attribute merges; the extension as a whole.
    let user = h
        .patch(
            &path,
            json!([
                {"op": "ADD", "path": "name", "value": {"givenName": "Pat"}},
                {"op": "add", "value": {"name": {"familyName": "Smith"}, "title": "Engineer"}},
                {"op": "add", "path": ENTERPRISE, "value": {"costCenter": "4130", "manager": {"value": "m-1", "displayName": "ignored"}}}
            ]),
        )
        .await;
    assert_eq!(user["name"], json!({"givenName": "Pat", "familyName": "Smith"}));
    assert_eq!(
        user[ENTERPRISE],
        json!({"costCenter": "4130", "manager": {"value": "m-1"}}),
        "read-only sub-attribute dropped"
    );
    assert_eq!(user["schemas"], json!([USER, ENTERPRISE]));

    // Replace of a complex attribute keeps the sub-attributes it does not name (RFC 7644
    // §3.5.2.3); remove of a sub-attribute; remove of the whole extension.
    let user = h
        .patch(
            &path,
            json!([
                {"op": "replace", "path": "name", "value": {"givenName": "Patricia"}},
                {"op": "remove", "path": "name.familyName"},
                {"op": "remove", "path": ENTERPRISE}
            ]),
        )
        .await;
    assert_eq!(user["name"], json!({"givenName": "Patricia"}));
    assert!(user.get(ENTERPRISE).is_none());
    assert_eq!(user["schemas"], json!([USER]));

    // Filtered replace of a whole element keeps what the filter selected on.
    h.patch(&path, json!([{"op": "add", "path": "emails", "value": [{"value": "a@example.com", "type": "work"}, {"value": "b@example.com", "type": "home"}]}])).await;
    let user = h
        .patch(&path, json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "c@example.com", "primary": "true"}}]))
        .await;
    assert_eq!(
        user["emails"],
        json!([{"value": "a@example.com", "type": "work"}, {"type": "home", "value": "c@example.com", "primary": true}])
    );
    let user = h.patch(&path, json!([{"op": "remove", "path": "emails[value co \"@example.com\" and type ne \"work\"]"}])).await;
    assert_eq!(user["emails"], json!([{"value": "a@example.com", "type": "work"}]));

    // Unknown attributes round-trip; a replace with null unassigns.
    let user = h
        .patch(&path, json!([{"op": "add", "value": {"favoriteColor": "teal", "urn:example:custom:1.0:User": {"badge": 7}}}]))
        .await;
    assert_eq!(
        (user["favoriteColor"].clone(), user["urn:example:custom:1.0:User"].clone()),
        (json!("teal"), json!({"badge": 7}))
    );
    assert_eq!(user["schemas"], json!([USER, "urn:example:custom:1.0:User"]));
    let user =
        h.patch(&path, json!([{"op": "replace", "path": "favoriteColor", "value": null}])).await;
    assert!(user.get("favoriteColor").is_none());

    // Errors: a whole request fails, and leaves the user as it was.
    let before = h.get(&path).await;
    let changes = h.changes();
    assert_eq!(
        error(call(json!([{"op": "remove"}])).await),
        "400 noTarget: a remove operation needs a path"
    );
    assert_eq!(
        error(call(json!([{"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "path": "meta.created", "value": "x"}])).await),
        "400 mutability: 'meta.created' is read-only"
    );
    assert_eq!(
        error(call(json!([{"op": "replace", "path": "groups", "value": []}])).await),
        "400 mutability: 'groups' is read-only"
    );
    assert!(error(call(json!([{"op": "add", "path": "emails[type eq", "value": "x"}])).await)
        .starts_with("400 invalidPath: invalid path 'emails[type eq'"));
    assert_eq!(
        error(call(json!([{"op": "replace", "path": "emails[type eq \"other\" or type eq \"home\"].display", "value": "x"}])).await),
        "400 noTarget: no value of 'emails' matches the path's filter"
    );
    assert_eq!(
        error(call(json!([{"op": "move", "path": "title"}])).await),
        "400 invalidSyntax: operation 0: 'op' must be add, remove or replace, not 'move'"
    );
    assert_eq!(error(call(json!([{"op": "replace", "value": "x"}])).await), "400 invalidValue: an add or replace without a path needs an object of attributes as its value");
    assert_eq!(
        error(call(json!([{"op": "replace", "path": "active", "value": "maybe"}])).await),
        "400 invalidValue: 'active' must be a boolean"
    );
    assert_eq!(
        error(call(json!([{"op": "remove", "path": "userName"}])).await),
        "400 invalidValue: 'userName' is required"
    );
    assert_eq!(
        error(h.call(Method::PATCH, &path, Some(json!({"schemas": [USER], "Operations": []}))).await),
        "400 invalidSyntax: a PATCH body's schemas must include urn:ietf:params:scim:api:messages:2.0:PatchOp"
    );
    assert_eq!(
        error(h.call(Method::PATCH, &path, Some(json!({"schemas": [PATCH]}))).await),
        "400 invalidSyntax: a PATCH body needs an 'Operations' list"
    );
    let answer = h.send(Method::PATCH, &path, Some(&h.token), None).await;
    assert!(error((answer.status, answer.body))
        .starts_with("400 invalidSyntax: the request body is not JSON"));
    assert_eq!(h.get(&path).await, before);
    assert_eq!(h.changes(), changes);

    // Renaming onto another user's name.
    h.create_user("taken@example.com").await;
    assert_eq!(
        error(
            call(json!([{"op": "replace", "path": "userName", "value": "TAKEN@example.com"}]))
                .await
        ),
        "409 uniqueness: a SCIM user named 'TAKEN@example.com' already exists"
    );
}

// ---- queries ---------------------------------------------------------------------------------

#[tokio::test]
async fn filters_pagination_and_projection() {
    let h = harness().await;
    let mut all = Vec::new();
    for (name, email, external, active, title) in [
        ("ada@example.com", "ada@example.com", "e-1", true, "Engineer"),
        ("bea@example.org", "bea@example.org", "e-2", false, "Manager"),
        ("cal@example.com", "cal@work.example.com", "E-3", true, "Engineering Manager"),
        ("dee@example.net", "dee@example.net", "e-4", true, ""),
        ("eve@example.com", "eve@example.com", "e-5", true, "Designer"),
    ] {
        let mut body = json!({"schemas": [USER], "userName": name, "externalId": external, "active": active,
                              "emails": [{"value": email, "type": "work", "primary": true}]});
        if !title.is_empty() {
            body["title"] = json!(title);
        }
        all.push(
            h.ok(Method::POST, "/scim/v2/Users", body).await["id"].as_str().unwrap().to_owned(),
        );
    }
    let [ada, bea, cal, dee, eve] = [0, 1, 2, 3, 4].map(|i| all[i].clone());
    let query = |filter: &str| {
        let h = &h;
        let url = format!("/scim/v2/Users?filter={}", urlencode(filter));
        async move { ids(&h.get(&url).await) }
    };
    assert_eq!(query(r#"userName sw "A""#).await, vec![ada.clone()]);
    assert_eq!(query(r#"userName ew ".com""#).await, [ada.clone(), cal.clone(), eve.clone()]);
    assert_eq!(query(r#"title co "engineer""#).await, [ada.clone(), cal.clone()]);
    assert_eq!(query(r#"title pr and not (title co "Manager")"#).await, [ada.clone(), eve.clone()]);
    assert_eq!(
        query(r#"active eq false or externalId eq "E-3""#).await,
        [bea.clone(), cal.clone()]
    );
    assert_eq!(
        query(r#"externalId eq "e-3""#).await,
        Vec::<String>::new(),
        "externalId is case-exact"
    );
    assert_eq!(query(r#"emails eq "CAL@work.example.com""#).await, vec![cal.clone()]);
    assert_eq!(
        query(r#"emails[type eq "work" and value co "example.net"]"#).await,
        vec![dee.clone()]
    );
    assert_eq!(query(r#"emails.value ew ".org""#).await, vec![bea.clone()]);
    assert_eq!(query(&format!(r#"id eq "{eve}""#)).await, vec![eve.clone()]);
    assert_eq!(
        query(&format!(r#"id eq "{}""#, eve.to_uppercase())).await,
        Vec::<String>::new(),
        "ids are case-exact"
    );
    assert_eq!(
        query(r#"userName ne "ada@example.com" and title pr"#).await,
        [bea.clone(), cal.clone(), eve.clone()]
    );
    assert_eq!(query(r#"meta.created gt "2000-01-01T00:00:00Z""#).await.len(), 5);
    assert_eq!(
        query(r#"USERNAME EQ "dee@example.net""#).await,
        vec![dee.clone()],
        "names and operators in any case"
    );
    let bad = error(
        h.call(Method::GET, &format!("/scim/v2/Users?filter={}", urlencode("userName eq")), None)
            .await,
    );
    assert!(bad.starts_with("400 invalidFilter: invalid filter 'userName eq': "), "{bad}");

    // Pagination: 1-based, totalResults counts everything.
    let page = h.get("/scim/v2/Users?startIndex=2&count=2").await;
    assert_eq!(
        (page["totalResults"].clone(), page["startIndex"].clone(), page["itemsPerPage"].clone()),
        (json!(5), json!(2), json!(2))
    );
    assert_eq!(ids(&page), [bea.clone(), cal.clone()]);
    let page = h
        .get(&format!(
            "/scim/v2/Users?filter={}&startIndex=3&count=10",
            urlencode("userName co \"e\"")
        ))
        .await;
    assert_eq!(
        (page["totalResults"].clone(), ids(&page)),
        (json!(5), vec![cal.clone(), dee.clone(), eve.clone()])
    );
    let page = h.get("/scim/v2/Users?startIndex=0&count=0").await;
    assert_eq!(
        (page["totalResults"].clone(), page["startIndex"].clone(), ids(&page)),
        (json!(5), json!(1), vec![])
    );
    assert_eq!(
        error(h.call(Method::GET, "/scim/v2/Users?count=ten", None).await),
        "400 invalidValue: 'count' must be an integer, not 'ten'"
    );

    // attributes / excludedAttributes, also on .search.
    let only = h.get(&format!("/scim/v2/Users/{ada}?attributes=userName,emails.value")).await;
    assert_eq!(
        only,
        json!({"id": ada, "schemas": [USER], "userName": "ada@example.com", "emails": [{"value": "ada@example.com"}]})
    );
    let without =
        h.get(&format!("/scim/v2/Users/{ada}?excludedAttributes=emails,meta,externalId")).await;
    assert_eq!(
        without,
        json!({"id": ada, "schemas": [USER], "userName": "ada@example.com", "active": true, "title": "Engineer"})
    );
    let (status, searched) = h
        .call(
            Method::POST,
            "/scim/v2/Users/.search",
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "attributes": ["userName"], "filter": "title co \"manager\"", "startIndex": 1, "count": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(searched["totalResults"], 2);
    assert_eq!(
        searched["Resources"],
        json!([{"id": bea, "schemas": [USER], "userName": "bea@example.org"}])
    );
    assert_eq!(
        error(
            h.call(
                Method::GET,
                "/scim/v2/Users?attributes=userName&excludedAttributes=title",
                None
            )
            .await
        ),
        "400 invalidValue: 'attributes' and 'excludedAttributes' cannot be given together"
    );

    // Groups: displayName filters, members filters, a user's groups; /.search over both.
    let eng = h.create_group("Engineering", &[&ada, &cal]).await;
    let ops = h.create_group("Operations", &[&cal]).await;
    let groups = |filter: &str| {
        let h = &h;
        let url = format!("/scim/v2/Groups?filter={}", urlencode(filter));
        async move { ids(&h.get(&url).await) }
    };
    assert_eq!(groups(r#"displayName eq "engineering""#).await, vec![eng.clone()]);
    assert_eq!(groups(&format!(r#"members eq "{cal}""#)).await, [eng.clone(), ops.clone()]);
    assert_eq!(
        groups(&format!(r#"members.value eq "{ada}" or displayName sw "Op""#)).await,
        [eng.clone(), ops.clone()]
    );
    assert_eq!(groups(&format!(r#"not (members eq "{ada}")"#)).await, vec![ops.clone()]);
    let cal_user = h.get(&format!("/scim/v2/Users/{cal}")).await;
    assert_eq!(
        cal_user["groups"],
        json!([
            {"value": eng, "$ref": format!("{BASE}/Groups/{eng}"), "display": "Engineering", "type": "direct"},
            {"value": ops, "$ref": format!("{BASE}/Groups/{ops}"), "display": "Operations", "type": "direct"}
        ])
    );
    assert_eq!(query(&format!(r#"groups eq "{ops}""#)).await, vec![cal.clone()]);
    let (_, both) = h
        .call(Method::POST, "/scim/v2/.search", Some(json!({"filter": "displayName sw \"Eng\" or userName sw \"ada\"", "attributes": ["displayName", "userName"]})))
        .await;
    assert_eq!(ids(&both), [ada.clone(), eng.clone()]);
    assert_eq!(
        both["Resources"][1],
        json!({"id": eng, "schemas": [GROUP], "displayName": "Engineering"})
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

// ---- authentication, discovery, routing --------------------------------------------------------

#[tokio::test]
async fn bearer_token_is_required_and_checked() {
    let h = harness().await;
    for token in [None, Some("wrong"), Some(&h.token[..h.token.len() - 1])] {
        let answer = h.send(Method::GET, "/scim/v2/Users", token, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"agentnet-scim\"");
        assert_eq!(answer.body["status"], "401");
    }
    // Discovery and unknown paths need it too.
    for path in ["/scim/v2/ServiceProviderConfig", "/scim/v2/nope", "/scim/v2/Users/x"] {
        assert_eq!(
            h.send(Method::GET, path, None, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        h.send(Method::GET, "/scim/v2/Users", Some(&h.token), None).await.status,
        StatusCode::OK
    );

    // A new token revokes the old one; without a token SCIM is off.
    let new =
        h.store.scim_token_rotate(token_entry).await.unwrap().secret.expose_secret().to_owned();
    assert_eq!(
        h.send(Method::GET, "/scim/v2/Users", Some(&h.token), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.send(Method::GET, "/scim/v2/Users", Some(&new), None).await.status,
        StatusCode::OK
    );
    h.store.scim_token_revoke(|_| token_entry(None, 0)).await.unwrap();
    let answer = h.send(Method::GET, "/scim/v2/Users", Some(&new), None).await;
    assert_eq!(
        error((answer.status, answer.body)),
        "401 -: SCIM provisioning is off: an admin turns it on with `agentnet admin scim token`"
    );
}

#[tokio::test]
async fn discovery_endpoints() {
    let h = harness().await;
    let spc = h.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(
        spc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(
        (
            spc["patch"].clone(),
            spc["filter"].clone(),
            spc["bulk"]["supported"].clone(),
            spc["authenticationSchemes"][0]["type"].clone()
        ),
        (
            json!({"supported": true}),
            json!({"supported": true, "maxResults": 1000}),
            json!(false),
            json!("oauthbearertoken")
        )
    );

    let types = h.get("/scim/v2/ResourceTypes").await;
    assert_eq!(types["totalResults"], 2);
    let user_type = h.get("/scim/v2/ResourceTypes/User").await;
    assert_eq!(
        (
            user_type["endpoint"].clone(),
            user_type["schema"].clone(),
            user_type["schemaExtensions"].clone()
        ),
        (json!("/Users"), json!(USER), json!([{"schema": ENTERPRISE, "required": false}]))
    );
    assert_eq!(h.get("/scim/v2/ResourceTypes/Group").await["endpoint"], "/Groups");

    let schemas = h.get("/scim/v2/Schemas").await;
    let ids: Vec<&str> = schemas["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [USER, ENTERPRISE, GROUP]);
    let user = h.get(&format!("/scim/v2/Schemas/{USER}")).await;
    assert_eq!(
        user["meta"],
        json!({"resourceType": "Schema", "location": format!("{BASE}/Schemas/{USER}")})
    );
    let user_name =
        user["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(
        (
            user_name["caseExact"].clone(),
            user_name["uniqueness"].clone(),
            user_name["required"].clone()
        ),
        (json!(false), json!("server"), json!(true))
    );
    let password =
        user["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(
        (password["mutability"].clone(), password["returned"].clone()),
        (json!("writeOnly"), json!("never"))
    );
    // Every published attribute parses into the model the server uses.
    for def in [schema::users(), schema::groups()] {
        assert!(def.schemas().all(|s| !s.attrs.is_empty()));
    }

    assert_eq!(
        error(h.call(Method::GET, "/scim/v2/Schemas/urn:nope", None).await),
        "404 -: no schema 'urn:nope'"
    );
    assert_eq!(
        error(h.call(Method::GET, "/scim/v2/ResourceTypes/Device", None).await),
        "404 -: no resource type 'Device'"
    );
    assert_eq!(
        error(h.call(Method::GET, "/scim/v2/Bulk", None).await),
        "404 -: no SCIM endpoint at /scim/v2/Bulk"
    );
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        assert_eq!(
            error(h.call(method, "/scim/v2/ServiceProviderConfig", None).await),
            "405 -: this endpoint does not support that method"
        );
    }
    assert_eq!(
        error(h.call(Method::DELETE, "/scim/v2/Users", None).await),
        "405 -: this endpoint does not support that method"
    );
}

#[tokio::test]
async fn put_group_replaces_members_and_checks_them() {
    let h = harness().await;
    let a = h.create_user("a@example.com").await;
    let b = h.create_user("b@example.com").await;
    let gid = h.create_group("Team", &[&a]).await;
    let path = format!("/scim/v2/Groups/{gid}");
    let put = h
        .ok(Method::PUT, &path, json!({"schemas": [GROUP], "id": gid, "displayName": "Team", "members": [{"value": b, "type": "User"}]}))
        .await;
    assert_eq!(member_ids(&put), vec![b.clone()]);
    // PUT without members: the group has none (RFC 7644 §3.5.1).
    let put = h.ok(Method::PUT, &path, json!({"schemas": [GROUP], "displayName": "Team"})).await;
    assert!(put.get("members").is_none());
    assert_eq!(
        error(
            h.call(
                Method::PUT,
                &path,
                Some(json!({"displayName": "Team", "members": [{"value": gid, "type": "Group"}]}))
            )
            .await
        ),
        "400 invalidValue: groups cannot be members of groups here; only users"
    );
    assert_eq!(
        error(h.call(Method::PUT, &path, Some(json!({"members": []}))).await),
        "400 invalidValue: 'displayName' is required"
    );
    assert_eq!(
        error(h.call(Method::PUT, "/scim/v2/Groups/nope", Some(json!({"displayName": "X"}))).await),
        "404 -: Group 'nope' not found"
    );
    // A member given by `$ref` only.
    let put = h
        .ok(
            Method::PUT,
            &path,
            json!({"displayName": "Team", "members": [{"$ref": format!("{BASE}/Users/{a}")}]}),
        )
        .await;
    assert_eq!(member_ids(&put), vec![a.clone()]);
    // Deleting a user takes it out of its groups.
    h.call(Method::DELETE, &format!("/scim/v2/Users/{a}"), None).await;
    assert!(h.get(&path).await.get("members").is_none());
}

// ---- the admin API ---------------------------------------------------------------------------

#[tokio::test]
async fn admin_api_creates_rotates_and_deletes_the_token() {
    let store = store::Store::in_memory(&store::MasterKey::generate().unwrap()).await.unwrap();
    let admin_changes = Arc::new(AtomicUsize::new(0));
    let counter = admin_changes.clone();
    let admin = crate::router(crate::ControlState::new(store.clone(), move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let scim =
        scim_router(ScimState { store: store.clone(), on_change: Arc::new(|| Box::pin(async {})) });
    let call = |router: &Router, method: Method, path: &str, token: Option<&str>| {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Body::empty()).unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };

    let (status, off) = call(&admin, Method::GET, "/api/v1/scim", None).await;
    assert_eq!((status, off), (StatusCode::OK, json!({"enabled": false, "path": "/scim/v2"})));

    let (status, first) = call(&admin, Method::POST, "/api/v1/scim/token", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let first_token = first["token"].as_str().unwrap().to_owned();
    assert_eq!(first_token.len(), 43);
    api_types::time::parse_rfc3339(first["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        call(&scim, Method::GET, "/scim/v2/Users", Some(&first_token)).await.0,
        StatusCode::OK
    );

    let (_, second) = call(&admin, Method::POST, "/api/v1/scim/token", None).await;
    let second_token = second["token"].as_str().unwrap().to_owned();
    assert_ne!(first_token, second_token);
    assert_eq!(
        call(&scim, Method::GET, "/scim/v2/Users", Some(&first_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&scim, Method::GET, "/scim/v2/Users", Some(&second_token)).await.0,
        StatusCode::OK
    );
    let (_, on) = call(&admin, Method::GET, "/api/v1/scim", None).await;
    assert_eq!(
        (on["enabled"].clone(), on["token_created_at"].clone()),
        (json!(true), second["created_at"].clone())
    );
    assert!(!on.to_string().contains(&second_token));
    assert!(store.scim_enabled().await.unwrap());

    let (status, off) = call(&admin, Method::DELETE, "/api/v1/scim/token", None).await;
    assert_eq!((status, off), (StatusCode::OK, json!({"enabled": false, "path": "/scim/v2"})));
    assert_eq!(
        call(&scim, Method::GET, "/scim/v2/Users", Some(&second_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Deleting again is harmless.
    assert_eq!(call(&admin, Method::DELETE, "/api/v1/scim/token", None).await.0, StatusCode::OK);
    assert_eq!(admin_changes.load(Ordering::SeqCst), 3, "two creations and one effective deletion");
}

// ---- audit -------------------------------------------------------------------------------------

impl Harness {
    /// Every SCIM resource entry (not the harness's token), oldest first.
    async fn scim_entries(&self) -> Vec<store::AuditEntry> {
        let q = store::AuditQuery {
            action: Some("scim.".into()),
            limit: Some(1000),
            ..Default::default()
        };
        let mut all = self.store.audit(&q).await.unwrap();
        all.retain(|e| e.target_kind != "scim-token");
        all.reverse();
        all
    }

    /// The entry the last call recorded, asserting it recorded exactly one (`seen` before it).
    async fn one_new(&self, seen: &mut usize) -> store::AuditEntry {
        let all = self.scim_entries().await;
        assert_eq!(all.len(), *seen + 1, "exactly one new entry: {:#?}", &all[*seen..]);
        *seen += 1;
        all.last().unwrap().clone()
    }
}

#[tokio::test]
async fn every_scim_write_records_one_entry_with_the_resource_before_and_after() {
    let h = harness().await;
    let mut seen = 0;

    // Create, with a password that must not reach the log; the request id is kept.
    let answer = h
        .router
        .clone()
        .oneshot(
            Request::post("/scim/v2/Users")
                .header(header::HOST, "agentnet.example.com")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
                .header(header::CONTENT_TYPE, "application/scim+json")
                .header("x-request-id", "req-42")
                .body(Body::from(
                    json!({
                        "schemas": [USER],
                        "userName": "ada@example.com",
                        "displayName": "Ada",
                        "password": "s3cret-Pa55",
                        "active": true,
                    })
                    .to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let bytes = answer.into_body().collect().await.unwrap().to_bytes();
    let ada = serde_json::from_slice::<Value>(&bytes).unwrap()["id"].as_str().unwrap().to_owned();
    let e = h.one_new(&mut seen).await;
    assert_eq!(
        (
            e.actor_kind,
            e.actor.as_str(),
            e.action.as_str(),
            e.target_kind.as_str(),
            e.target.as_str(),
            e.request_id.as_deref()
        ),
        (
            store::ActorKind::Scim,
            "scim",
            "scim.user.create",
            "scim-user",
            ada.as_str(),
            Some("req-42")
        )
    );
    assert_eq!(e.before, None);
    let created =
        json!({"id": ada, "userName": "ada@example.com", "displayName": "Ada", "active": true});
    assert_eq!(e.after, Some(created.clone()));

    // A deactivating PATCH (Okta's and Entra's way of offboarding).
    h.patch(
        &format!("/scim/v2/Users/{ada}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    let e = h.one_new(&mut seen).await;
    assert_eq!((e.action.as_str(), e.target.as_str()), ("scim.user.deactivate", ada.as_str()));
    assert_eq!(e.before, Some(created.clone()));
    let mut inactive = created.clone();
    inactive["active"] = json!(false);
    assert_eq!(e.after, Some(inactive.clone()));

    // Any other change is an update (reactivating too); a refused one records nothing.
    h.patch(
        &format!("/scim/v2/Users/{ada}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    let e = h.one_new(&mut seen).await;
    assert_eq!(
        (e.action.as_str(), e.before, e.after),
        ("scim.user.update", Some(inactive), Some(created))
    );
    let (status, _) = h
        .call(Method::PATCH, &format!("/scim/v2/Users/{ada}"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": 7}]})))
        .await;
    assert!(status.is_client_error());
    h.call(Method::DELETE, "/scim/v2/Users/missing", None).await;
    assert_eq!(h.scim_entries().await.len(), seen);

    // A group: create, a member removal, delete.
    let bob = h.create_user("bob@example.com").await;
    h.one_new(&mut seen).await;
    let eng = h.create_group("Engineering", &[&ada, &bob]).await;
    let e = h.one_new(&mut seen).await;
    let with_both = json!({"id": eng, "displayName": "Engineering", "members": [ada, bob]});
    assert_eq!(
        (e.action.as_str(), e.target_kind.as_str(), e.target.as_str(), e.before, e.after.clone()),
        ("scim.group.create", "scim-group", eng.as_str(), None, Some(with_both.clone()))
    );
    h.patch(
        &format!("/scim/v2/Groups/{eng}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
    )
    .await;
    let e = h.one_new(&mut seen).await;
    let with_ada = json!({"id": eng, "displayName": "Engineering", "members": [ada]});
    assert_eq!(
        (e.action.as_str(), e.target.as_str(), e.before, e.after),
        ("scim.group.update", eng.as_str(), Some(with_both), Some(with_ada.clone()))
    );
    let (status, _) = h.call(Method::DELETE, &format!("/scim/v2/Groups/{eng}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let e = h.one_new(&mut seen).await;
    assert_eq!(
        (e.action.as_str(), e.target.as_str(), e.before, e.after),
        ("scim.group.delete", eng.as_str(), Some(with_ada), None)
    );

    // A user's DELETE.
    let (status, _) = h.call(Method::DELETE, &format!("/scim/v2/Users/{bob}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let e = h.one_new(&mut seen).await;
    assert_eq!(
        (e.action.as_str(), e.target.as_str(), e.before, e.after),
        (
            "scim.user.delete",
            bob.as_str(),
            Some(json!({"id": bob, "userName": "bob@example.com", "active": true})),
            None
        )
    );

    // Replace (PUT) is an update too, and the password never reached the log.
    h.ok(
        Method::PUT,
        &format!("/scim/v2/Users/{ada}"),
        json!({"schemas": [USER], "userName": "ada@example.com", "password": "0ther-Pa55"}),
    )
    .await;
    assert_eq!(h.one_new(&mut seen).await.action, "scim.user.update");
    let all = format!("{:?}", h.store.audit(&store::AuditQuery::default()).await.unwrap());
    assert!(!all.contains("Pa55") && !all.to_lowercase().contains("password"), "{all}");
}
