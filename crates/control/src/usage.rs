//! `/usage`, `/logs` and `/usage/summary`: usage records read back with filters, and totals per
//! principal.
//!
//! The summary is added up here from `Store::usage` pages (newest first, 1000 at a time) until
//! the scan limit; a `GROUP BY` query in the store would do it in the database instead.

use std::collections::{HashMap, HashSet};

use api_types::{ErrorBody, PrincipalUsage, UsageQuery, UsageRecord, UsageSummary, UsageTotals};
use axum::{extract::State, Json};

use crate::{extract::Query, ControlState, Error};

/// The store's page size (its maximum `limit`).
const PAGE: u32 = 1000;

/// How many records a summary adds up at most before it reports itself truncated.
pub(crate) const SUMMARY_SCAN_LIMIT: usize = 100_000;

#[utoipa::path(
    get, path = "/api/v1/usage", tag = "usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "matching records, newest first", body = Vec<UsageRecord>),
        (status = 400, description = "a malformed filter, e.g. a `since` that is not RFC 3339", body = ErrorBody),
    )
)]
pub(crate) async fn records(
    State(state): State<ControlState>,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Vec<UsageRecord>>, Error> {
    let records = state.store.usage(&to_store_query(&query)?).await?;
    Ok(Json(records.into_iter().map(to_dto).collect()))
}

/// The request log: the same records and filters as `/usage` (status and reason included), under
/// the name people look for when they debug a refused request.
#[utoipa::path(
    get, path = "/api/v1/logs", tag = "usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "matching records, newest first", body = Vec<UsageRecord>),
        (status = 400, body = ErrorBody),
    )
)]
pub(crate) async fn logs(
    state: State<ControlState>,
    query: Query<UsageQuery>,
) -> Result<Json<Vec<UsageRecord>>, Error> {
    records(state, query).await
}

#[utoipa::path(
    get, path = "/api/v1/usage/summary", tag = "usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "totals per principal, highest cost first", body = UsageSummary),
        (status = 400, body = ErrorBody),
    )
)]
pub(crate) async fn summary(
    State(state): State<ControlState>,
    Query(query): Query<UsageQuery>,
) -> Result<Json<UsageSummary>, Error> {
    let mut q = to_store_query(&query)?;
    q.limit = Some(PAGE);
    let mut seen: HashSet<String> = HashSet::new();
    let mut rows: HashMap<Option<String>, PrincipalUsage> = HashMap::new();
    let mut total = UsageTotals::default();
    let mut truncated = false;
    loop {
        let page = state.store.usage(&q).await?;
        let full = page.len() >= PAGE as usize;
        let oldest = page.last().map(|r| r.at_ms);
        let mut fresh = 0;
        for record in page {
            // Pages overlap by the records at the boundary millisecond; count each once.
            if !seen.insert(record.id.clone()) {
                continue;
            }
            fresh += 1;
            let record = to_dto(record);
            total.add(&record);
            rows.entry(record.principal.clone())
                .or_insert_with(|| PrincipalUsage {
                    principal: record.principal.clone(),
                    principal_kind: record.principal_kind.clone(),
                    totals: UsageTotals::default(),
                })
                .totals
                .add(&record);
        }
        let Some(oldest) = oldest.filter(|_| full) else {
            break;
        };
        if fresh == 0 || seen.len() >= SUMMARY_SCAN_LIMIT {
            // No progress (over a page of records in one millisecond) or the scan limit.
            truncated = true;
            break;
        }
        q.until_ms = Some(oldest + 1);
    }
    let mut principals: Vec<PrincipalUsage> = rows.into_values().collect();
    principals.sort_by(|a, b| {
        b.totals
            .cost_micro_usd
            .cmp(&a.totals.cost_micro_usd)
            .then(b.totals.requests.cmp(&a.totals.requests))
            .then_with(|| a.principal.cmp(&b.principal))
    });
    Ok(Json(UsageSummary {
        principals,
        total,
        records: seen.len() as u64,
        truncated,
    }))
}

fn to_store_query(q: &UsageQuery) -> Result<store::UsageQuery, Error> {
    let time = |field: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| {
                api_types::time::parse_rfc3339(v).map_err(|e| Error::invalid(field, e.to_string()))
            })
            .transpose()
    };
    Ok(store::UsageQuery {
        principal: q.principal.clone(),
        group: q.group.clone(),
        provider: q.provider.clone(),
        model: q.model.clone(),
        reason: q.reason.clone(),
        since_ms: time("since", &q.since)?,
        until_ms: time("until", &q.until)?,
        limit: q.limit,
    })
}

pub(crate) fn to_dto(r: store::UsageRecord) -> UsageRecord {
    UsageRecord {
        id: r.id,
        at: api_types::time::format_rfc3339(r.at_ms),
        principal_kind: r.principal_kind,
        principal: r.principal,
        subject: r.subject,
        groups: r.groups,
        policy: r.policy,
        provider: r.provider,
        api: r.api,
        endpoint: r.endpoint,
        model: r.model,
        stream: r.stream,
        status: r.status,
        reason: r.reason,
        latency_ms: r.latency_ms,
        ttfb_ms: r.ttfb_ms,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cache_creation_tokens: r.cache_creation_tokens,
        cache_read_tokens: r.cache_read_tokens,
        reasoning_tokens: r.reasoning_tokens,
        cost_micro_usd: r.cost_micro_usd,
        cost_usd: r.cost_micro_usd.map(api_types::micro_to_usd),
        cost_known: r.cost_micro_usd.is_some(),
        usage_reported: r.usage_reported,
        session_id: r.session_id,
    }
}
