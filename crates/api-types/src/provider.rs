//! Providers: the upstream LLM APIs the gateway forwards to, and their write-only keys.
//!
//! Prices are floats in USD per million tokens here, at the API edge, because that is how
//! providers publish them; `control` converts them to integer micro-dollars per million tokens,
//! which is what the data plane computes with.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ManagedBy;

/// What kind of upstream a provider is; decides the auth header, URL layout and default APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ProviderKind {
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "azure-openai")]
    AzureOpenAi,
    /// Any OpenAI-compatible base URL: LiteLLM, vLLM, Ollama, OpenRouter, gateways.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::Anthropic,
        ProviderKind::OpenAi,
        ProviderKind::AzureOpenAi,
        ProviderKind::OpenAiCompatible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::AzureOpenAi => "azure-openai",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The wire family a provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Api {
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
}

impl Api {
    pub const ALL: [Api; 2] = [Api::Anthropic, Api::OpenAi];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAi => "openai",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The gateway in front of the provider whose attribution headers (or body field) are filled
/// with the caller's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub enum GatewayPreset {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "litellm")]
    LiteLlm,
    #[serde(rename = "portkey")]
    Portkey,
    #[serde(rename = "cloudflare-ai-gateway")]
    CloudflareAiGateway,
    #[serde(rename = "bifrost")]
    Bifrost,
    /// Sets the body's `user` field: the one preset that changes the body.
    #[serde(rename = "openrouter")]
    OpenRouter,
}

impl GatewayPreset {
    pub const ALL: [GatewayPreset; 6] = [
        GatewayPreset::None,
        GatewayPreset::LiteLlm,
        GatewayPreset::Portkey,
        GatewayPreset::CloudflareAiGateway,
        GatewayPreset::Bifrost,
        GatewayPreset::OpenRouter,
    ];

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
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How the caller's identity is stamped onto upstream requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Stamping {
    /// Off: the upstream sees no identity at all.
    pub enabled: bool,
    pub preset: GatewayPreset,
    /// The signed assertion (`X-Agentnet-Assertion`, an EdDSA JWT verifiable against
    /// `/.well-known/jwks.json`). Off for an upstream that never verifies it: the plain and preset
    /// identity headers still go, and each request costs one signature less.
    pub assertion: bool,
}

impl Default for Stamping {
    fn default() -> Self {
        Self { enabled: true, preset: GatewayPreset::None, assertion: true }
    }
}

/// The operator's price for a model (or `*` pattern), in USD per million tokens.
///
/// On input the cache prices may be left out: they then default to the provider's convention
/// (Anthropic: writes 1.25x input, reads 0.1x input; others: both at the input price). In
/// responses they are always filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    #[schema(example = "claude-sonnet-4*")]
    pub model: String,
    #[schema(example = 3.0)]
    pub input_usd_per_mtok: f64,
    #[schema(example = 15.0)]
    pub output_usd_per_mtok: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_usd_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_usd_per_mtok: Option<f64>,
}

/// A provider as the admin API shows it. The key itself is never shown: only whether one is
/// set and its last four characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL, e.g. `https://api.anthropic.com`. One that ends in `/v1`, such as
    /// `https://openrouter.ai/api/v1`, is not given a second `/v1`.
    pub base_url: String,
    pub apis: Vec<Api>,
    /// Model names or `*` patterns it serves; empty means any model (a catch-all).
    pub models: Vec<String>,
    pub prices: Vec<ModelPrice>,
    pub stamping: Stamping,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_api_version: Option<String>,
    pub managed_by: ManagedBy,
    pub has_key: bool,
    /// The key's last four characters, e.g. `…wxyz`.
    #[serde(default)]
    pub key_fingerprint: Option<String>,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

/// The body of `POST /providers` and `PUT /providers/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// Required on `POST`; on `PUT` it may be left out, and must match the path if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: ProviderKind,
    pub base_url: String,
    /// Empty: the kind's default (`anthropic` for Anthropic, `openai` for the others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<Api>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<ModelPrice>,
    #[serde(default)]
    pub stamping: Stamping,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_api_version: Option<String>,
    /// Write-only: stored encrypted, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKey>,
}

/// A provider's upstream key on its way in. `Debug` never shows it; no response type holds one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Password)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself: hand it straight to the store (or the HTTP body), never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// The body of `PUT /providers/{name}/key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetKeyRequest {
    pub api_key: ApiKey,
}

/// The answer to `PUT /providers/{name}/key`: what operators may know of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetKeyResponse {
    pub name: String,
    /// The key's last four characters, e.g. `…wxyz`.
    pub key_fingerprint: String,
}
