//! `GET /v1/models`: the models the caller may use, in the format of the API it speaks.
//!
//! Each provider the caller has a policy for is asked for its own list (with the provider key);
//! the union is filtered by the provider's model patterns and the caller's policies. A provider
//! that cannot be reached contributes the exact model names it is configured with.

use std::time::Duration;

use bytes::Bytes;
use domain::{model_visible, Api, Decision, Endpoint, Principal};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use llm::ModelEntry;

use crate::{
    gateway::Gateway,
    snapshot::{Snapshot, SnapshotProvider},
    upstream,
};

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;

pub(crate) async fn list(
    gateway: &Gateway,
    snapshot: &Snapshot,
    principal: &Principal,
    api: Api,
    explicit: Option<&str>,
) -> Vec<u8> {
    let candidates = snapshot.upstreams.iter().filter(|u| {
        u.provider.serves(api)
            && explicit.is_none_or(|name| u.provider.name == name)
            && matches!(
                domain::evaluate(snapshot.rules.policies(), principal, &u.provider.name, None),
                Decision::Allow { .. }
            )
    });
    let fetches = candidates.map(|u| async move { (u, fetch(gateway, u, api).await) });
    let mut entries: Vec<ModelEntry> = Vec::new();
    for (upstream, listed) in futures_util::future::join_all(fetches).await {
        let provider = &upstream.provider;
        let mut ids = listed.unwrap_or_default();
        ids.extend(provider.models.iter().filter(|p| p.is_exact()).map(|p| p.as_str().to_owned()));
        for id in ids {
            let served = provider.is_catch_all() || provider.models.iter().any(|p| p.matches(&id));
            if served
                && model_visible(snapshot.rules.policies(), principal, &provider.name, &id)
                && !entries.iter().any(|e| e.id == id)
            {
                entries.push(ModelEntry {
                    id,
                    owned_by: provider.name.clone(),
                    display_name: None,
                });
            }
        }
    }
    llm::models_list(api, &entries)
}

async fn fetch(gateway: &Gateway, upstream: &SnapshotProvider, api: Api) -> Option<Vec<String>> {
    let provider = &upstream.provider;
    let uri = upstream::upstream_uri(
        provider.kind,
        &provider.base_url,
        provider.azure_api_version.as_deref(),
        Endpoint::Models(api),
        None,
        None,
    )?;
    let mut request = Request::builder().method(Method::GET).uri(uri);
    if let Some((name, value)) = &upstream.auth {
        request = request.header(name, value.clone());
    }
    if api == Api::Anthropic {
        request = request.header("anthropic-version", "2023-06-01");
    }
    let request = request.body(Full::new(Bytes::new())).ok()?;
    let response =
        tokio::time::timeout(FETCH_TIMEOUT, gateway.client().request(request)).await.ok()?.ok()?;
    if !response.status().is_success() {
        tracing::debug!(provider = %provider.name, status = %response.status(), "model list refused");
        return None;
    }
    let body = Limited::new(response.into_body(), MAX_LIST_BYTES).collect().await.ok()?.to_bytes();
    Some(llm::parse_models_list(api, &body))
}
