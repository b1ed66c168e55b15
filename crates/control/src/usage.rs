//! `/usage`, `/logs` and `/usage/summary`: usage records read back with filters, and totals per
//! principal (added up by the store, in one `GROUP BY` query over every matching record).

use api_types::{ErrorBody, PrincipalUsage, UsageQuery, UsageRecord, UsageSummary, UsageTotals};
use axum::{extract::State, Json};

use crate::{extract::Query, ControlState, Error};

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
    let rows = state.store.usage_summary(&to_store_query(&query)?).await?;
    let total = sum_totals(&rows);
    let mut principals: Vec<PrincipalUsage> = rows
        .into_iter()
        .map(|row| PrincipalUsage {
            totals: totals_to_dto(&row),
            principal: row.principal,
            principal_kind: row.principal_kind,
        })
        .collect();
    // The store orders by cost; equal costs go by request count, then name.
    principals.sort_by(|a, b| {
        b.totals
            .cost_micro_usd
            .cmp(&a.totals.cost_micro_usd)
            .then(b.totals.requests.cmp(&a.totals.requests))
            .then_with(|| a.principal.cmp(&b.principal))
            .then_with(|| a.principal_kind.cmp(&b.principal_kind))
    });
    Ok(Json(UsageSummary { principals, total }))
}

/// The totals of several principals' rows added up (zero for none).
pub(crate) fn sum_totals<'a>(
    rows: impl IntoIterator<Item = &'a store::PrincipalTotals>,
) -> UsageTotals {
    let mut sum = UsageTotals::default();
    for row in rows {
        add_totals(&mut sum, &totals_to_dto(row));
    }
    sum
}

/// One principal's totals as the store added them up.
fn totals_to_dto(t: &store::PrincipalTotals) -> UsageTotals {
    // Counts from `COUNT`/`SUM` of booleans are never negative.
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    UsageTotals {
        requests: count(t.requests),
        failed_requests: count(t.failed_requests),
        input_tokens: t.input_tokens,
        output_tokens: t.output_tokens,
        cache_creation_tokens: t.cache_creation_tokens,
        cache_read_tokens: t.cache_read_tokens,
        reasoning_tokens: t.reasoning_tokens,
        total_tokens: t
            .input_tokens
            .saturating_add(t.output_tokens)
            .saturating_add(t.cache_creation_tokens)
            .saturating_add(t.cache_read_tokens),
        cost_micro_usd: t.cost_micro_usd,
        cost_usd: api_types::micro_to_usd(t.cost_micro_usd),
        unknown_cost_requests: count(t.unknown_cost_requests),
    }
}

/// Adds `t` into `sum`.
fn add_totals(sum: &mut UsageTotals, t: &UsageTotals) {
    sum.requests = sum.requests.saturating_add(t.requests);
    sum.failed_requests = sum.failed_requests.saturating_add(t.failed_requests);
    sum.input_tokens = sum.input_tokens.saturating_add(t.input_tokens);
    sum.output_tokens = sum.output_tokens.saturating_add(t.output_tokens);
    sum.cache_creation_tokens = sum.cache_creation_tokens.saturating_add(t.cache_creation_tokens);
    sum.cache_read_tokens = sum.cache_read_tokens.saturating_add(t.cache_read_tokens);
    sum.reasoning_tokens = sum.reasoning_tokens.saturating_add(t.reasoning_tokens);
    sum.total_tokens = sum.total_tokens.saturating_add(t.total_tokens);
    sum.cost_micro_usd = sum.cost_micro_usd.saturating_add(t.cost_micro_usd);
    sum.cost_usd = api_types::micro_to_usd(sum.cost_micro_usd);
    sum.unknown_cost_requests = sum.unknown_cost_requests.saturating_add(t.unknown_cost_requests);
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
        principal_kind: None,
        group: q.group.clone(),
        policy: q.policy.clone(),
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
