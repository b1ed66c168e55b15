//! `/providers`: upstream LLM APIs and their keys. The key is write-only: it goes into the store
//! encrypted and only its fingerprint ever comes back (or goes into the audit log).

use api_types::{ErrorBody, ModelPrice, Provider, ProviderInput, SetKeyRequest, SetKeyResponse};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use domain::{ModelPattern, Price};
use secrecy::SecretString;
use store::{ManagedBy, ProviderRecord};

use crate::{
    audit::{self, Caller, Change},
    extract::Body,
    put_status, validate, ControlState, Error, Write,
};

const KIND: &str = "provider";

/// The audit log's `target_kind` (and action prefix) for providers.
const AUDIT_KIND: &str = "provider";

#[utoipa::path(
    get, path = "/api/v1/providers", tag = "providers",
    responses((status = 200, description = "every provider, by name", body = Vec<Provider>))
)]
pub(crate) async fn list(State(state): State<ControlState>) -> Result<Json<Vec<Provider>>, Error> {
    let records = state.store.providers().await?;
    Ok(Json(records.iter().map(to_dto).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/providers/{name}", tag = "providers",
    params(("name" = String, Path, description = "provider name")),
    responses(
        (status = 200, body = Provider),
        (status = 404, description = "no such provider", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<ControlState>,
    Path(name): Path<String>,
) -> Result<Json<Provider>, Error> {
    Ok(Json(to_dto(&find(&state, &name).await?)))
}

#[utoipa::path(
    post, path = "/api/v1/providers", tag = "providers",
    request_body = ProviderInput,
    responses(
        (status = 201, description = "created", body = Provider),
        (status = 400, description = "invalid input; `field` names what to fix", body = ErrorBody),
        (status = 409, description = "a provider by that name exists", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ControlState>,
    caller: Caller,
    Body(input): Body<ProviderInput>,
) -> Result<(StatusCode, Json<Provider>), Error> {
    let name = input.name.clone().unwrap_or_default();
    validate::name("name", &name)?;
    let (provider, _) = save(&state, &caller, name, input, Write::Create).await?;
    Ok((StatusCode::CREATED, Json(provider)))
}

#[utoipa::path(
    put, path = "/api/v1/providers/{name}", tag = "providers",
    params(("name" = String, Path, description = "provider name")),
    request_body = ProviderInput,
    responses(
        (status = 200, description = "replaced (its key is kept unless `api_key` is given)", body = Provider),
        (status = 201, description = "created", body = Provider),
        (status = 400, description = "invalid input", body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn replace(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
    Body(input): Body<ProviderInput>,
) -> Result<(StatusCode, Json<Provider>), Error> {
    validate::name_matches_path(&name, input.name.as_deref())?;
    let (provider, existed) = save(&state, &caller, name, input, Write::Replace).await?;
    Ok((put_status(existed), Json(provider)))
}

#[utoipa::path(
    delete, path = "/api/v1/providers/{name}", tag = "providers",
    params(("name" = String, Path, description = "provider name")),
    responses(
        (status = 204, description = "deleted, with its key"),
        (status = 404, description = "no such provider", body = ErrorBody),
        (status = 409, description = "managed by the config file", body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<StatusCode, Error> {
    let mut tx = state.store.begin().await?;
    let before = tx.provider(&name).await?.map(|r| to_dto(&r));
    if !tx.delete_provider(&name).await? {
        return Err(Error::NotFound { kind: KIND, name });
    }
    let entry = caller.entry(Change::Delete, AUDIT_KIND, &name, before.as_ref(), None)?;
    audit::commit(&state, tx, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Allowed on config-managed providers too: the config file names the provider, the key is set
/// here so that it never sits in a file in plaintext.
#[utoipa::path(
    put, path = "/api/v1/providers/{name}/key", tag = "providers",
    params(("name" = String, Path, description = "provider name")),
    request_body = SetKeyRequest,
    responses(
        (status = 200, description = "stored encrypted; only the fingerprint comes back", body = SetKeyResponse),
        (status = 400, description = "empty key, or whitespace in it", body = ErrorBody),
        (status = 404, description = "no such provider", body = ErrorBody),
    )
)]
pub(crate) async fn set_key(
    State(state): State<ControlState>,
    Path(name): Path<String>,
    caller: Caller,
    Body(request): Body<SetKeyRequest>,
) -> Result<Json<SetKeyResponse>, Error> {
    validate::api_key("api_key", request.api_key.expose())?;
    let key = SecretString::from(request.api_key.into_inner());
    let mut tx = state.store.begin().await?;
    let before = tx.provider(&name).await?.map(|r| to_dto(&r));
    tx.set_provider_key(&name, &key).await?;
    let after = to_dto(&find_in(&mut tx, &name).await?);
    let entry = caller.entry(Change::KeySet, AUDIT_KIND, &name, before.as_ref(), Some(&after))?;
    audit::commit(&state, tx, entry).await?;
    Ok(Json(SetKeyResponse { key_fingerprint: store::fingerprint(&key), name }))
}

async fn find(state: &ControlState, name: &str) -> Result<ProviderRecord, Error> {
    state
        .store
        .provider(name)
        .await?
        .ok_or_else(|| Error::NotFound { kind: KIND, name: name.to_owned() })
}

async fn find_in(tx: &mut store::Transaction, name: &str) -> Result<ProviderRecord, Error> {
    tx.provider(name).await?.ok_or_else(|| Error::NotFound { kind: KIND, name: name.to_owned() })
}

/// Validates `input`, stores it as an API-managed provider (and its key, if given), and answers
/// with the stored record and whether it existed before.
///
/// The spec, the key and the audit entry are written in one transaction: a request whose key
/// cannot be stored leaves nothing behind. One request is one entry (`provider.create` or
/// `provider.update`), whose `after` shows the new key's fingerprint.
async fn save(
    state: &ControlState,
    caller: &Caller,
    name: String,
    input: ProviderInput,
    write: Write,
) -> Result<(Provider, bool), Error> {
    let key = match &input.api_key {
        Some(key) => {
            validate::api_key("api_key", key.expose())?;
            Some(SecretString::from(key.expose().to_owned()))
        }
        None => None,
    };
    let provider = from_input(name, input)?;
    let name = provider.name.as_str();
    let mut tx = state.store.begin().await?;
    let before = tx.provider(name).await?.map(|r| to_dto(&r));
    match write {
        Write::Create => tx.create_provider(&provider, ManagedBy::Api).await?,
        Write::Replace => tx.put_provider(&provider, ManagedBy::Api).await?,
    }
    if let Some(key) = &key {
        tx.set_provider_key(name, key).await?;
    }
    let after = to_dto(&find_in(&mut tx, name).await?);
    let change = Change::write(before.is_some());
    let entry = caller.entry(change, AUDIT_KIND, name, before.as_ref(), Some(&after))?;
    audit::commit(state, tx, entry).await?;
    Ok((after, before.is_some()))
}

/// The domain provider for validated `input`.
pub(crate) fn from_input(name: String, input: ProviderInput) -> Result<domain::Provider, Error> {
    let kind = kind_to_domain(input.kind);
    let base_url = validate::base_url(&input.base_url)?;
    let apis = if input.apis.is_empty() {
        kind.default_apis()
    } else {
        let mut apis = Vec::new();
        for api in input.apis.into_iter().map(api_to_domain) {
            if !apis.contains(&api) {
                apis.push(api);
            }
        }
        apis
    };
    let models = validate::references("models", input.models, false)?;
    let mut price_overrides = Vec::with_capacity(input.prices.len());
    for (i, price) in input.prices.into_iter().enumerate() {
        let field = |f: &str| format!("prices[{i}].{f}");
        validate::reference(&field("model"), &price.model, false)?;
        let input_price =
            validate::usd_per_mtok(&field("input_usd_per_mtok"), price.input_usd_per_mtok)?;
        let output =
            validate::usd_per_mtok(&field("output_usd_per_mtok"), price.output_usd_per_mtok)?;
        // The provider's convention fills in cache prices that are not given.
        let default = match kind {
            domain::ProviderKind::Anthropic => Price::anthropic(input_price, output),
            _ => Price::openai(input_price, input_price, output),
        };
        let optional = |f: &str, v: Option<f64>, default: u64| {
            v.map_or(Ok(default), |usd| validate::usd_per_mtok(&field(f), usd))
        };
        let cache_write = optional(
            "cache_write_usd_per_mtok",
            price.cache_write_usd_per_mtok,
            default.cache_write,
        )?;
        let cache_read =
            optional("cache_read_usd_per_mtok", price.cache_read_usd_per_mtok, default.cache_read)?;
        price_overrides.push((
            ModelPattern::new(price.model),
            Price { input: input_price, output, cache_write, cache_read },
        ));
    }
    let azure_api_version = match input.azure_api_version {
        Some(version) => {
            validate::reference("azure_api_version", &version, false)?;
            if kind != domain::ProviderKind::AzureOpenAi {
                return Err(Error::invalid(
                    "azure_api_version",
                    "only applies to providers of kind azure-openai",
                ));
            }
            Some(version)
        }
        None => None,
    };
    Ok(domain::Provider {
        name,
        kind,
        base_url,
        apis,
        models: models.into_iter().map(ModelPattern::new).collect(),
        price_overrides,
        stamping: domain::Stamping {
            enabled: input.stamping.enabled,
            preset: preset_to_domain(input.stamping.preset),
            assertion: input.stamping.assertion,
        },
        azure_api_version,
    })
}

pub(crate) fn to_dto(record: &ProviderRecord) -> Provider {
    let p = &record.provider;
    let usd = |micro: u64| micro as f64 / 1_000_000.0;
    Provider {
        name: p.name.clone(),
        kind: kind_to_dto(p.kind),
        base_url: p.base_url.clone(),
        apis: p.apis.iter().map(|a| api_to_dto(*a)).collect(),
        models: p.models.iter().map(|m| m.as_str().to_owned()).collect(),
        prices: p
            .price_overrides
            .iter()
            .map(|(model, price)| ModelPrice {
                model: model.as_str().to_owned(),
                input_usd_per_mtok: usd(price.input),
                output_usd_per_mtok: usd(price.output),
                cache_write_usd_per_mtok: Some(usd(price.cache_write)),
                cache_read_usd_per_mtok: Some(usd(price.cache_read)),
            })
            .collect(),
        stamping: api_types::Stamping {
            enabled: p.stamping.enabled,
            preset: preset_to_dto(p.stamping.preset),
            assertion: p.stamping.assertion,
        },
        azure_api_version: p.azure_api_version.clone(),
        managed_by: managed_by_to_dto(record.managed_by),
        has_key: record.key_fingerprint.is_some(),
        key_fingerprint: record.key_fingerprint.clone(),
        updated_at: api_types::time::format_rfc3339(record.updated_at_ms),
    }
}

pub(crate) fn managed_by_to_dto(m: ManagedBy) -> api_types::ManagedBy {
    match m {
        ManagedBy::Config => api_types::ManagedBy::Config,
        ManagedBy::Api => api_types::ManagedBy::Api,
    }
}

fn kind_to_domain(kind: api_types::ProviderKind) -> domain::ProviderKind {
    use api_types::ProviderKind as K;
    match kind {
        K::Anthropic => domain::ProviderKind::Anthropic,
        K::OpenAi => domain::ProviderKind::OpenAi,
        K::AzureOpenAi => domain::ProviderKind::AzureOpenAi,
        K::OpenAiCompatible => domain::ProviderKind::OpenAiCompatible,
    }
}

fn kind_to_dto(kind: domain::ProviderKind) -> api_types::ProviderKind {
    use domain::ProviderKind as K;
    match kind {
        K::Anthropic => api_types::ProviderKind::Anthropic,
        K::OpenAi => api_types::ProviderKind::OpenAi,
        K::AzureOpenAi => api_types::ProviderKind::AzureOpenAi,
        K::OpenAiCompatible => api_types::ProviderKind::OpenAiCompatible,
    }
}

fn api_to_domain(api: api_types::Api) -> domain::Api {
    match api {
        api_types::Api::Anthropic => domain::Api::Anthropic,
        api_types::Api::OpenAi => domain::Api::OpenAi,
    }
}

fn api_to_dto(api: domain::Api) -> api_types::Api {
    match api {
        domain::Api::Anthropic => api_types::Api::Anthropic,
        domain::Api::OpenAi => api_types::Api::OpenAi,
    }
}

fn preset_to_domain(preset: api_types::GatewayPreset) -> domain::GatewayPreset {
    use api_types::GatewayPreset as P;
    match preset {
        P::None => domain::GatewayPreset::None,
        P::LiteLlm => domain::GatewayPreset::LiteLlm,
        P::Portkey => domain::GatewayPreset::Portkey,
        P::CloudflareAiGateway => domain::GatewayPreset::CloudflareAiGateway,
        P::Bifrost => domain::GatewayPreset::Bifrost,
        P::OpenRouter => domain::GatewayPreset::OpenRouter,
    }
}

fn preset_to_dto(preset: domain::GatewayPreset) -> api_types::GatewayPreset {
    use domain::GatewayPreset as P;
    match preset {
        P::None => api_types::GatewayPreset::None,
        P::LiteLlm => api_types::GatewayPreset::LiteLlm,
        P::Portkey => api_types::GatewayPreset::Portkey,
        P::CloudflareAiGateway => api_types::GatewayPreset::CloudflareAiGateway,
        P::Bifrost => api_types::GatewayPreset::Bifrost,
        P::OpenRouter => api_types::GatewayPreset::OpenRouter,
    }
}
