//! Usage records: one per AI request, the metering truth. Written in batches by the data
//! plane's writer task, read back with filters by the admin API.

use sqlx::{QueryBuilder, Row, Sqlite};

use crate::{Result, Store};

/// One request, as metered. Token counts follow `domain::Usage`'s normalization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageRecord {
    pub id: String,
    pub at_ms: i64,
    /// `user` or `agent`; `None` when the caller was not identified (e.g. a 401).
    pub principal_kind: Option<String>,
    /// Email or agent name.
    pub principal: Option<String>,
    pub subject: Option<String>,
    /// The caller's groups at request time.
    pub groups: Vec<String>,
    /// The policy that admitted the request.
    pub policy: Option<String>,
    pub provider: Option<String>,
    pub api: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub stream: bool,
    pub status: u16,
    /// `ok`, or the reason code of the failure or denial.
    pub reason: String,
    pub latency_ms: i64,
    pub ttfb_ms: Option<i64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub reasoning_tokens: i64,
    /// `None`: the model has no known price (flagged, never recorded as zero).
    pub cost_micro_usd: Option<i64>,
    /// False when the upstream never reported usage (e.g. cut before the final event).
    pub usage_reported: bool,
    /// Claude Code's `x-claude-code-session-id` or Codex's `session-id`.
    pub session_id: Option<String>,
}

/// Filters for reading usage records; all optional, newest first.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub principal: Option<String>,
    /// `user` or `agent`: with `principal`, one caller exactly (an agent and a user could share
    /// a name).
    pub principal_kind: Option<String>,
    pub group: Option<String>,
    /// The policy that admitted the request.
    pub policy: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub reason: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<u32>,
}

/// Totals for one principal over the records matching a query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrincipalTotals {
    pub principal_kind: Option<String>,
    pub principal: Option<String>,
    pub requests: i64,
    /// Requests answered with a status of 400 or more.
    pub failed_requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub reasoning_tokens: i64,
    /// Sum of the known costs.
    pub cost_micro_usd: i64,
    /// Requests whose cost is unknown (not in the sum).
    pub unknown_cost_requests: i64,
}

const COLUMNS: &str = "id, at_ms, principal_kind, principal, subject, groups, policy, provider, \
    api, endpoint, model, stream, status, reason, latency_ms, ttfb_ms, input_tokens, \
    output_tokens, cache_creation_tokens, cache_read_tokens, reasoning_tokens, cost_micro_usd, \
    usage_reported, session_id";

impl Store {
    /// Inserts a batch of records in one transaction.
    pub async fn insert_usage(&self, records: &[UsageRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // SQLite allows 32766 bound parameters per statement; 24 per row, so chunks of 500.
        for chunk in records.chunks(500) {
            let mut query: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("INSERT INTO usage_records ({COLUMNS}) "));
            query.push_values(chunk, |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(r.at_ms)
                    .push_bind(&r.principal_kind)
                    .push_bind(&r.principal)
                    .push_bind(&r.subject)
                    .push_bind(serde_json::to_string(&r.groups).unwrap_or_else(|_| "[]".into()))
                    .push_bind(&r.policy)
                    .push_bind(&r.provider)
                    .push_bind(&r.api)
                    .push_bind(&r.endpoint)
                    .push_bind(&r.model)
                    .push_bind(r.stream)
                    .push_bind(i64::from(r.status))
                    .push_bind(&r.reason)
                    .push_bind(r.latency_ms)
                    .push_bind(r.ttfb_ms)
                    .push_bind(r.input_tokens)
                    .push_bind(r.output_tokens)
                    .push_bind(r.cache_creation_tokens)
                    .push_bind(r.cache_read_tokens)
                    .push_bind(r.reasoning_tokens)
                    .push_bind(r.cost_micro_usd)
                    .push_bind(r.usage_reported)
                    .push_bind(&r.session_id);
            });
            query.push(" ON CONFLICT (id) DO NOTHING");
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Per-principal totals over the records matching `q` (its `limit` is ignored), largest
    /// spend first.
    pub async fn usage_summary(&self, q: &UsageQuery) -> Result<Vec<PrincipalTotals>> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT principal_kind, principal, COUNT(*) AS requests,
                    SUM(status >= 400) AS failed_requests,
                    SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                    SUM(cache_creation_tokens) AS cache_creation_tokens,
                    SUM(cache_read_tokens) AS cache_read_tokens,
                    SUM(reasoning_tokens) AS reasoning_tokens,
                    COALESCE(SUM(cost_micro_usd), 0) AS cost_micro_usd,
                    SUM(cost_micro_usd IS NULL) AS unknown_cost_requests
             FROM usage_records WHERE 1 = 1",
        );
        push_filters(&mut query, q);
        query.push(" GROUP BY principal_kind, principal ORDER BY cost_micro_usd DESC, principal");
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                Ok(PrincipalTotals {
                    principal_kind: row.try_get("principal_kind")?,
                    principal: row.try_get("principal")?,
                    requests: row.try_get("requests")?,
                    failed_requests: row.try_get("failed_requests")?,
                    input_tokens: row.try_get("input_tokens")?,
                    output_tokens: row.try_get("output_tokens")?,
                    cache_creation_tokens: row.try_get("cache_creation_tokens")?,
                    cache_read_tokens: row.try_get("cache_read_tokens")?,
                    reasoning_tokens: row.try_get("reasoning_tokens")?,
                    cost_micro_usd: row.try_get("cost_micro_usd")?,
                    unknown_cost_requests: row.try_get("unknown_cost_requests")?,
                })
            })
            .collect()
    }

    /// Every record of a forwarded request (2xx) since `since_ms`, oldest first: what budget
    /// counters are rebuilt from after a restart.
    pub async fn settled_since(&self, since_ms: i64) -> Result<Vec<UsageRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM usage_records
             WHERE at_ms >= ?1 AND status >= 200 AND status < 300 ORDER BY at_ms, id"
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| record_from_row(&row)).collect()
    }

    /// Records matching `q`, newest first (at most 1000, default 100).
    pub async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>> {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM usage_records WHERE 1 = 1"));
        push_filters(&mut query, q);
        let limit = i64::from(q.limit.unwrap_or(100).min(1000));
        query.push(" ORDER BY at_ms DESC, id DESC LIMIT ").push_bind(limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.into_iter().map(|row| record_from_row(&row)).collect()
    }
}

/// The `AND …` clauses for a query's filters.
fn push_filters<'a>(query: &mut QueryBuilder<'a, Sqlite>, q: &'a UsageQuery) {
    if let Some(p) = &q.principal {
        query.push(" AND principal = ").push_bind(p);
    }
    if let Some(k) = &q.principal_kind {
        query.push(" AND principal_kind = ").push_bind(k);
    }
    if let Some(g) = &q.group {
        query.push(" AND EXISTS (SELECT 1 FROM json_each(groups) WHERE value = ").push_bind(g);
        query.push(")");
    }
    if let Some(p) = &q.policy {
        query.push(" AND policy = ").push_bind(p);
    }
    if let Some(p) = &q.provider {
        query.push(" AND provider = ").push_bind(p);
    }
    if let Some(m) = &q.model {
        query.push(" AND model = ").push_bind(m);
    }
    if let Some(r) = &q.reason {
        query.push(" AND reason = ").push_bind(r);
    }
    if let Some(t) = q.since_ms {
        query.push(" AND at_ms >= ").push_bind(t);
    }
    if let Some(t) = q.until_ms {
        query.push(" AND at_ms < ").push_bind(t);
    }
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<UsageRecord> {
    let groups: String = row.try_get("groups")?;
    let status: i64 = row.try_get("status")?;
    Ok(UsageRecord {
        id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        principal_kind: row.try_get("principal_kind")?,
        principal: row.try_get("principal")?,
        subject: row.try_get("subject")?,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        policy: row.try_get("policy")?,
        provider: row.try_get("provider")?,
        api: row.try_get("api")?,
        endpoint: row.try_get("endpoint")?,
        model: row.try_get("model")?,
        stream: row.try_get("stream")?,
        status: u16::try_from(status).unwrap_or(0),
        reason: row.try_get("reason")?,
        latency_ms: row.try_get("latency_ms")?,
        ttfb_ms: row.try_get("ttfb_ms")?,
        input_tokens: row.try_get("input_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
        cache_creation_tokens: row.try_get("cache_creation_tokens")?,
        cache_read_tokens: row.try_get("cache_read_tokens")?,
        reasoning_tokens: row.try_get("reasoning_tokens")?,
        cost_micro_usd: row.try_get("cost_micro_usd")?,
        usage_reported: row.try_get("usage_reported")?,
        session_id: row.try_get("session_id")?,
    })
}
