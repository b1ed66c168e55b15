//! `/limits`: global limits, checked before any policy for the principals they target, and the
//! conversion of every limit (global or a policy's) between its DTO and the domain.
//!
//! A limit sets exactly one of `spend_usd` (USD, stored as micro-dollars), `tokens` and
//! `requests`; `per` is `user` or `group`; `window` is a whole number with a unit `s`, `m`, `h`
//! or `d`, from one minute to ten years, and comes back in its shortest spelling (`720h` →
//! `30d`). A cap of 0 is allowed: it admits nothing that counts against it, a way to freeze
//! someone.

use api_types::{ErrorBody, GlobalLimit, GlobalLimitInput, Limit, LimitPer};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use domain::{Metric, Per};
use store::{GlobalLimitRecord, ManagedBy};

use crate::{
    audit::{self, Caller, Change},
    extract::Body,
    policies::{sources_from_dto, sources_to_dto},
    providers::managed_by_to_dto,
    put_status, validate, ControlState, Error, Write,
};

const KIND: &str = "global limit";

/// The audit log's `target_kind` (and action prefix) for global limits, as the path names them.
const AUDIT_KIND: &str = "limit";

/// The largest spend cap, in USD.
const MAX_SPEND_USD: f64 = 1e9;

/// The longest window: ten years.
const MAX_WINDOW_SECS: u64 = 3650 * 86_400;

#[utoipa::path(
    get, path = "/api/v1/limits", tag = "limits",
    responses((status = 200, description = "every global limit, by name", body = Vec<GlobalLimit>))
)]
pub(crate) async fn list(
    State(state): State<ControlState>,
) -> Result<Json<Vec<GlobalLimit>>, Error> {
    Ok(Json(state.store.global_limits().await?.iter().map(to_dto).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/limits/{name}", tag = "limits",
    params(("name" = String, Path, description = "global limit name")),
    responses((status = 200, body = GlobalLimit), (status = 404, body = ErrorBody))
)]
pub(crate) async fn show(
    State(state): State<ControlState>,
    Path(name): Path<String>,
) -> Result<Json<GlobalLimit>, Error> {
    Ok(Json(to_dto(&find(&state, &name).await?)))
}

#[utoipa::path(
    post, path = "/api/v1/limits", tag = "limits",
    request_body = GlobalLimitInput,
    responses(
        (status = 201, body = GlobalLimit),
        (status = 400, description = "invalid input; `field` names what to fix (`limit` when \
            none of `spend_usd`, `tokens`, `requests` is set)", body = ErrorBody),
        (status = 409, description = "a global limit by that name exists", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ControlState>,
    caller: Caller,
    Body(input): Body<GlobalLimitInput>,
) -> Result<(StatusCode, Json<GlobalLimit>), Error> {
    let name = input.name.clone().unwrap_or_default();
    validate::name("name", &name)?;
    let (limit, _) = save(&state, &caller, name, input, Write::Create).await?;
    Ok((StatusCode::CREATED, Json(limit)))
}

#[utoipa::path(
    put, path = "/api/v1/limits/{name}", tag = "limits",
    params(("name" = String, Path, description = "global limit name")),
    request_body = GlobalLimitInput,
    responses(
        (status = 200, description = "replaced", body = GlobalLimit),
        (status = 201, description = "created", body = GlobalLimit),
        (status = 400, body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn replace(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
    Body(input): Body<GlobalLimitInput>,
) -> Result<(StatusCode, Json<GlobalLimit>), Error> {
    validate::name_matches_path(&name, input.name.as_deref())?;
    let (limit, existed) = save(&state, &caller, name, input, Write::Replace).await?;
    Ok((put_status(existed), Json(limit)))
}

#[utoipa::path(
    delete, path = "/api/v1/limits/{name}", tag = "limits",
    params(("name" = String, Path, description = "global limit name")),
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
    let before = tx.global_limit(&name).await?.map(|r| to_dto(&r));
    if !tx.delete_global_limit(&name).await? {
        return Err(Error::NotFound { kind: KIND, name });
    }
    let entry = caller.entry(Change::Delete, AUDIT_KIND, &name, before.as_ref(), None)?;
    audit::commit(&state, tx, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn find(state: &ControlState, name: &str) -> Result<GlobalLimitRecord, Error> {
    state
        .store
        .global_limit(name)
        .await?
        .ok_or_else(|| Error::NotFound { kind: KIND, name: name.to_owned() })
}

/// Stores a global limit, and answers with the stored record and whether it existed before.
async fn save(
    state: &ControlState,
    caller: &Caller,
    name: String,
    input: GlobalLimitInput,
    write: Write,
) -> Result<(GlobalLimit, bool), Error> {
    let limit = from_input(name, input)?;
    let name = limit.name.as_str();
    let mut tx = state.store.begin().await?;
    let before = tx.global_limit(name).await?.map(|r| to_dto(&r));
    match write {
        Write::Create => tx.create_global_limit(&limit, ManagedBy::Api).await?,
        Write::Replace => tx.put_global_limit(&limit, ManagedBy::Api).await?,
    }
    let stored = tx
        .global_limit(name)
        .await?
        .ok_or_else(|| Error::NotFound { kind: KIND, name: name.to_owned() })?;
    let after = to_dto(&stored);
    let change = Change::write(before.is_some());
    let entry = caller.entry(change, AUDIT_KIND, name, before.as_ref(), Some(&after))?;
    audit::commit(state, tx, entry).await?;
    Ok((after, before.is_some()))
}

/// The domain global limit for validated `input`.
pub(crate) fn from_input(
    name: String,
    input: GlobalLimitInput,
) -> Result<domain::GlobalLimit, Error> {
    let limit = limit_from_dto("", &input.limit())?;
    if input.targets.is_empty() {
        return Err(Error::invalid(
            "targets",
            "a global limit needs at least one target: groups, users, agents, or everyone",
        ));
    }
    let targets = sources_from_dto("targets", input.targets)?;
    Ok(domain::GlobalLimit { name, targets, limit })
}

pub(crate) fn to_dto(record: &GlobalLimitRecord) -> GlobalLimit {
    let g = &record.limit;
    let limit = limit_to_dto(&g.limit);
    GlobalLimit {
        name: g.name.clone(),
        targets: sources_to_dto(&g.targets),
        spend_usd: limit.spend_usd,
        tokens: limit.tokens,
        requests: limit.requests,
        per: limit.per,
        window: limit.window,
        managed_by: managed_by_to_dto(record.managed_by),
        updated_at: api_types::time::format_rfc3339(record.updated_at_ms),
    }
}

/// A policy's limits, validated, identical ones merged (they would count twice against the same
/// counter), order kept.
pub(crate) fn limits_from_dto(limits: &[Limit]) -> Result<Vec<domain::Limit>, Error> {
    let mut out: Vec<domain::Limit> = Vec::with_capacity(limits.len());
    for (i, limit) in limits.iter().enumerate() {
        let limit = limit_from_dto(&format!("limits[{i}]"), limit)?;
        if !out.contains(&limit) {
            out.push(limit);
        }
    }
    Ok(out)
}

/// One limit, validated. `at` is the limit object's path in the body (`limits[0]`), empty when
/// its fields sit at the top level (a global limit); errors name `at.field`.
pub(crate) fn limit_from_dto(at: &str, limit: &Limit) -> Result<domain::Limit, Error> {
    let field = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    let set: Vec<&str> = [
        ("spend_usd", limit.spend_usd.is_some()),
        ("tokens", limit.tokens.is_some()),
        ("requests", limit.requests.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let (metric, cap) = match (limit.spend_usd, limit.tokens, limit.requests) {
        (Some(usd), None, None) => (Metric::Spend, spend_micro(&field("spend_usd"), usd)?),
        (None, Some(n), None) => (Metric::Tokens, n),
        (None, None, Some(n)) => (Metric::Requests, n),
        (None, None, None) => {
            let object = if at.is_empty() { "limit" } else { at };
            return Err(Error::invalid(
                object,
                "a limit needs one of spend_usd, tokens or requests",
            ));
        }
        _ => {
            return Err(Error::invalid(
                field(set[1]),
                format!(
                    "a limit sets exactly one of spend_usd, tokens or requests, not {}",
                    set.join(" and ")
                ),
            ))
        }
    };
    let per = match limit.per {
        LimitPer::User => Per::User,
        LimitPer::Group => Per::Group,
    };
    let window_secs = window(&field("window"), &limit.window)?;
    Ok(domain::Limit { metric, per, cap, window_secs })
}

/// A spend cap in USD to integer micro-dollars.
fn spend_micro(field: &str, usd: f64) -> Result<u64, Error> {
    if !usd.is_finite() || !(0.0..=MAX_SPEND_USD).contains(&usd) {
        return Err(Error::invalid(field, "must be between 0 and 1000000000 USD"));
    }
    // In range by the check above: at most 10^15 micro-dollars, exact in an f64.
    Ok((usd * 1_000_000.0).round() as u64)
}

/// A window string to seconds: one minute to ten years.
fn window(field: &str, text: &str) -> Result<u64, Error> {
    if text.is_empty() {
        return Err(Error::invalid(
            field,
            "is required: a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d",
        ));
    }
    let secs = api_types::parse_window(text).map_err(|e| Error::invalid(field, e.to_string()))?;
    if secs < domain::limits::MIN_WINDOW_SECS {
        return Err(Error::invalid(
            field,
            format!("'{text}' is shorter than one minute (1m), the shortest window"),
        ));
    }
    if secs > MAX_WINDOW_SECS {
        return Err(Error::invalid(
            field,
            format!("'{text}' is longer than 3650d, the longest window"),
        ));
    }
    Ok(secs)
}

/// A domain limit as the API shows it; the window in its shortest spelling.
pub(crate) fn limit_to_dto(limit: &domain::Limit) -> Limit {
    let per = match limit.per {
        Per::User => LimitPer::User,
        Per::Group => LimitPer::Group,
    };
    let window = api_types::format_window(limit.window_secs);
    match limit.metric {
        Metric::Spend => Limit::spend(limit.cap as f64 / 1_000_000.0, per, window),
        Metric::Tokens => Limit::tokens(limit.cap, per, window),
        Metric::Requests => Limit::requests(limit.cap, per, window),
    }
}

#[cfg(test)]
mod tests;
