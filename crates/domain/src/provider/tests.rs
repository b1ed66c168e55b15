//! Tests for routing.

use super::*;

fn provider(name: &str, kind: ProviderKind, models: &[&str]) -> Provider {
    Provider {
        name: name.into(),
        kind,
        base_url: format!("http://{name}.invalid"),
        apis: kind.default_apis(),
        models: models.iter().map(|m| ModelPattern::new(*m)).collect(),
        price_overrides: vec![],
        stamping: Stamping::default(),
        azure_api_version: None,
    }
}

fn fleet() -> Vec<Provider> {
    vec![
        provider("anthropic", ProviderKind::Anthropic, &[]),
        provider("openai", ProviderKind::OpenAi, &[]),
        provider("vllm", ProviderKind::OpenAiCompatible, &["llama-*", "qwen-*"]),
        provider("llama-special", ProviderKind::OpenAiCompatible, &["llama-3.1-70b"]),
    ]
}

fn pick(api: Api, model: Option<&str>, explicit: Option<&str>) -> Result<String, RouteError> {
    let providers = fleet();
    route(&providers, api, model, explicit).map(|p| p.name.clone())
}

#[test]
fn by_api_path() {
    assert_eq!(pick(Api::Anthropic, Some("claude-sonnet-4-5"), None).unwrap(), "anthropic");
    assert_eq!(pick(Api::OpenAi, Some("gpt-5"), None).unwrap(), "openai");
}

#[test]
fn listed_model_beats_catch_all_and_exact_beats_glob() {
    assert_eq!(pick(Api::OpenAi, Some("qwen-2.5"), None).unwrap(), "vllm");
    assert_eq!(pick(Api::OpenAi, Some("llama-3.1-8b"), None).unwrap(), "vllm");
    assert_eq!(pick(Api::OpenAi, Some("llama-3.1-70b"), None).unwrap(), "llama-special");
}

#[test]
fn explicit_provider() {
    assert_eq!(pick(Api::OpenAi, Some("gpt-5"), Some("vllm")).unwrap(), "vllm");
    assert_eq!(
        pick(Api::Anthropic, None, Some("vllm")),
        Err(RouteError::WrongApi { provider: "vllm".into(), api: Api::Anthropic })
    );
    assert_eq!(
        pick(Api::OpenAi, None, Some("nope")),
        Err(RouteError::UnknownProvider("nope".into()))
    );
}

#[test]
fn nothing_fits() {
    let providers = vec![provider("vllm", ProviderKind::OpenAiCompatible, &["llama-*"])];
    assert_eq!(
        route(&providers, Api::OpenAi, Some("gpt-5"), None).map(|p| p.name.clone()),
        Err(RouteError::NoProvider { api: Api::OpenAi, model: Some("gpt-5".into()) })
    );
    assert!(matches!(
        route(&providers, Api::Anthropic, None, None),
        Err(RouteError::NoProvider { api: Api::Anthropic, .. })
    ));
}
