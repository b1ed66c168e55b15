//! Providers (upstream LLM APIs), the client-facing API surfaces, and routing a request to a
//! provider by API path and model.

use crate::{glob::ModelPattern, pricing::Price};

/// The wire family a client speaks, decided by the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Anthropic,
    OpenAi,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAi => "openai",
        }
    }
}

/// The operations the AI endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// `GET /v1/models`, in the format of the API the client speaks.
    Models(Api),
}

impl Endpoint {
    pub fn api(self) -> Api {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Api::Anthropic,
            Endpoint::ChatCompletions | Endpoint::Responses | Endpoint::Embeddings => Api::OpenAi,
            Endpoint::Models(api) => api,
        }
    }

    /// The path below the provider's base URL, as the OpenAI and Anthropic APIs spell it.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Models(_) => "/v1/models",
        }
    }

    /// A stable label for records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Messages => "messages",
            Endpoint::CountTokens => "count_tokens",
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Responses => "responses",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Models(_) => "models",
        }
    }

    /// Whether the operation produces tokens that are billed.
    pub fn is_metered(self) -> bool {
        !matches!(self, Endpoint::Models(_) | Endpoint::CountTokens)
    }
}

/// What kind of upstream a provider is; decides auth header, URL layout and default APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Anthropic,
    OpenAi,
    AzureOpenAi,
    /// Any OpenAI-compatible base URL: LiteLLM, vLLM, Ollama, OpenRouter, gateways.
    OpenAiCompatible,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::AzureOpenAi => "azure-openai",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "anthropic" => ProviderKind::Anthropic,
            "openai" => ProviderKind::OpenAi,
            "azure-openai" => ProviderKind::AzureOpenAi,
            "openai-compatible" => ProviderKind::OpenAiCompatible,
            _ => return None,
        })
    }

    /// The APIs a provider of this kind serves unless configured otherwise.
    pub fn default_apis(self) -> Vec<Api> {
        match self {
            ProviderKind::Anthropic => vec![Api::Anthropic],
            _ => vec![Api::OpenAi],
        }
    }
}

/// An upstream, as the data plane sees it (its key lives in the store, encrypted, not here).
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL without the `/v1` path, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    /// APIs this provider answers (an OpenAI-compatible gateway may also speak Anthropic's).
    pub apis: Vec<Api>,
    /// Model names or patterns it serves; empty means any model (a catch-all).
    pub models: Vec<ModelPattern>,
    /// The operator's prices for this provider, layered over the built-in table.
    pub price_overrides: Vec<(ModelPattern, Price)>,
    /// How the caller's identity is stamped onto upstream requests.
    pub stamping: Stamping,
    /// Azure OpenAI `api-version` query parameter (Azure only).
    pub azure_api_version: Option<String>,
}

/// Identity stamping for one provider: plain headers, the signed assertion, and the headers a
/// gateway in front of the provider reads to attribute usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamping {
    /// Off: the upstream sees no identity at all (neither plain, signed nor preset headers).
    pub enabled: bool,
    pub preset: GatewayPreset,
    /// The signed assertion (`X-Agentnet-Assertion`), when stamping is on. Off for an upstream
    /// that never verifies it: the plain and preset headers still go, and each request skips an
    /// Ed25519 signature, the largest single cost of forwarding (BENCHMARKS.md).
    pub assertion: bool,
}

impl Default for Stamping {
    fn default() -> Self {
        Self { enabled: true, preset: GatewayPreset::None, assertion: true }
    }
}

/// The upstream gateway whose attribution headers (or body field) are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayPreset {
    None,
    /// `x-litellm-end-user-id`, `x-litellm-tags`.
    LiteLlm,
    /// `x-portkey-metadata` with `_user`.
    Portkey,
    /// `cf-aig-metadata`.
    CloudflareAiGateway,
    /// `x-bf-dim-…` dimension headers.
    Bifrost,
    /// The body's `user` field: the one stamping that changes the body, so it is opt-in.
    OpenRouter,
}

impl GatewayPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayPreset::None => "none",
            GatewayPreset::LiteLlm => "litellm",
            GatewayPreset::Portkey => "portkey",
            GatewayPreset::CloudflareAiGateway => "cloudflare-ai-gateway",
            GatewayPreset::Bifrost => "bifrost",
            GatewayPreset::OpenRouter => "openrouter",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => GatewayPreset::None,
            "litellm" => GatewayPreset::LiteLlm,
            "portkey" => GatewayPreset::Portkey,
            "cloudflare-ai-gateway" => GatewayPreset::CloudflareAiGateway,
            "bifrost" => GatewayPreset::Bifrost,
            "openrouter" => GatewayPreset::OpenRouter,
            _ => return None,
        })
    }
}

impl Api {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "anthropic" => Some(Api::Anthropic),
            "openai" => Some(Api::OpenAi),
            _ => None,
        }
    }
}

impl Provider {
    pub fn serves(&self, api: Api) -> bool {
        self.apis.contains(&api)
    }

    pub fn is_catch_all(&self) -> bool {
        self.models.is_empty()
    }

    /// How specifically this provider lists `model`, if it lists it at all.
    fn listing(&self, model: &str) -> Option<(bool, usize)> {
        self.models.iter().filter(|p| p.matches(model)).map(ModelPattern::specificity).max()
    }
}

/// Why no provider could take a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// `/p/{name}/…` named a provider that does not exist.
    UnknownProvider(String),
    /// The named provider does not speak the API the client called.
    WrongApi { provider: String, api: Api },
    /// No provider serves this API (and model).
    NoProvider { api: Api, model: Option<String> },
}

/// Picks the provider for a request.
///
/// With `explicit` (from `/p/{provider}/…`) that provider is used if it speaks `api`. Otherwise,
/// among providers that speak `api`: one that lists `model` wins (the most specific listing,
/// then the name, for determinism); failing that, the first catch-all by name.
pub fn route<'a>(
    providers: &'a [Provider],
    api: Api,
    model: Option<&str>,
    explicit: Option<&str>,
) -> Result<&'a Provider, RouteError> {
    if let Some(name) = explicit {
        let provider = providers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| RouteError::UnknownProvider(name.to_owned()))?;
        if !provider.serves(api) {
            return Err(RouteError::WrongApi { provider: provider.name.clone(), api });
        }
        return Ok(provider);
    }
    let fitting = || providers.iter().filter(move |p| p.serves(api));
    if let Some(model) = model {
        let listed = fitting()
            .filter_map(|p| p.listing(model).map(|rank| (rank, p)))
            .max_by(|(ra, pa), (rb, pb)| ra.cmp(rb).then_with(|| pb.name.cmp(&pa.name)));
        if let Some((_, provider)) = listed {
            return Ok(provider);
        }
    }
    fitting()
        .filter(|p| p.is_catch_all())
        .min_by(|a, b| a.name.cmp(&b.name))
        .ok_or_else(|| RouteError::NoProvider { api, model: model.map(str::to_owned) })
}

#[cfg(test)]
mod tests;
