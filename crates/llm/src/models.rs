//! `/v1/models` bodies: the list the gateway serves (in the format of the API the client
//! speaks) and the ids read from an upstream's list.

use domain::Api;
use serde::{Deserialize, Serialize};

/// One model the gateway offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub id: String,
    /// The provider's name.
    pub owned_by: String,
    /// A human name; Anthropic lists need one, the id is used when absent.
    pub display_name: Option<String>,
}

/// Anthropic lists carry a creation time the gateway does not know; a fixed one keeps the body
/// valid and stable.
const CREATED_AT: &str = "2025-01-01T00:00:00Z";

/// A models list body in `api`'s format, in the given order.
pub fn models_list(api: Api, models: &[ModelEntry]) -> Vec<u8> {
    let body = match api {
        Api::Anthropic => serde_json::to_vec(&AnthropicList {
            data: models
                .iter()
                .map(|m| AnthropicModel {
                    kind: "model",
                    id: &m.id,
                    display_name: m.display_name.as_deref().unwrap_or(&m.id),
                    created_at: CREATED_AT,
                })
                .collect(),
            has_more: false,
            first_id: models.first().map(|m| m.id.as_str()),
            last_id: models.last().map(|m| m.id.as_str()),
        }),
        Api::OpenAi => serde_json::to_vec(&OpenAiList {
            object: "list",
            data: models
                .iter()
                .map(|m| OpenAiModel {
                    id: &m.id,
                    object: "model",
                    created: 0,
                    owned_by: &m.owned_by,
                })
                .collect(),
        }),
    };
    // Serializing strings into a Vec cannot fail; keep a valid body regardless.
    body.unwrap_or_else(|_| br#"{"data":[]}"#.to_vec())
}

/// The model ids in an upstream's `/v1/models` body. Both APIs list `data[].id`; entries
/// without a string id are skipped, and a body that is not such a list gives no ids.
pub fn parse_models_list(_api: Api, body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<UpstreamList>(body)
        .map(|list| list.data.into_iter().filter_map(|entry| entry.id).collect())
        .unwrap_or_default()
}

#[derive(Serialize)]
struct AnthropicList<'a> {
    data: Vec<AnthropicModel<'a>>,
    has_more: bool,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
}

#[derive(Serialize)]
struct AnthropicModel<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: &'static str,
}

#[derive(Serialize)]
struct OpenAiList<'a> {
    object: &'static str,
    data: Vec<OpenAiModel<'a>>,
}

#[derive(Serialize)]
struct OpenAiModel<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

#[derive(Deserialize)]
struct UpstreamList {
    #[serde(default)]
    data: Vec<UpstreamEntry>,
}

/// Any list element; a missing or non-string `id` (or a non-object entry) reads as `None`.
struct UpstreamEntry {
    id: Option<String>,
}

impl<'de> Deserialize<'de> for UpstreamEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Loose {
            Entry { id: String },
            Other(serde::de::IgnoredAny),
        }
        Ok(match Loose::deserialize(d)? {
            Loose::Entry { id } => UpstreamEntry { id: Some(id) },
            Loose::Other(_) => UpstreamEntry { id: None },
        })
    }
}

#[cfg(test)]
mod tests;
