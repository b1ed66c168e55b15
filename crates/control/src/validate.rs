//! Input validation for the admin API. Each check names the field it refuses, so the 400 says
//! exactly what to fix.

use crate::Error;

/// The longest record name accepted.
const MAX_NAME: usize = 64;

/// A record name (provider, group, agent, policy): 1 to 64 of `[A-Za-z0-9._-]`.
pub(crate) fn name(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_NAME {
        return Err(Error::invalid(field, format!("must be at most {MAX_NAME} characters")));
    }
    if let Some(bad) =
        value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("'{value}' contains {bad:?}; use only letters, digits, '.', '_' and '-'"),
        ));
    }
    Ok(())
}

/// The record name, from the path and (optionally) the body: they must agree.
pub(crate) fn name_matches_path(path: &str, body: Option<&str>) -> Result<(), Error> {
    name("name", path)?;
    match body {
        Some(body) if body != path => Err(Error::invalid(
            "name",
            format!("'{body}' does not match the name in the path, '{path}'"),
        )),
        _ => Ok(()),
    }
}

/// A name that refers to something outside this record: an IdP group, an email, a model
/// pattern. Those follow other systems' rules, so only emptiness, surrounding or inner
/// whitespace where `spaces` is false, and control characters are refused.
pub(crate) fn reference(field: &str, value: &str, spaces: bool) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.trim() != value {
        return Err(Error::invalid(field, format!("'{value}' has surrounding whitespace")));
    }
    if value.chars().any(char::is_control) || (!spaces && value.contains(char::is_whitespace)) {
        return Err(Error::invalid(
            field,
            format!("{value:?} contains whitespace or control characters"),
        ));
    }
    Ok(())
}

/// Each entry of a list checked as a `reference`, with its index in the field name; duplicates
/// are dropped, order kept.
pub(crate) fn references(
    field: &str,
    values: Vec<String>,
    spaces: bool,
) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        reference(&format!("{field}[{i}]"), &value, spaces)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// Free text such as a description: anything but control characters (newlines aside), and
/// at most 1024 characters.
pub(crate) fn text(field: &str, value: &str) -> Result<(), Error> {
    if value.chars().count() > 1024 {
        return Err(Error::invalid(field, "must be at most 1024 characters"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An upstream base URL: `http` or `https`, a host, no credentials, no query or fragment.
/// Returned without a trailing slash. It may end in `/v1`, as OpenRouter's, vLLM's and
/// LiteLLM's documented base URLs do: the proxy then appends `/messages`, `/chat/completions`, …
/// without a second `/v1`.
pub(crate) fn base_url(value: &str) -> Result<String, Error> {
    let field = "base_url";
    let rest =
        value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")).ok_or_else(
            || Error::invalid(field, format!("'{value}' must start with https:// or http://")),
        )?;
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(field, "must not contain whitespace"));
    }
    if value.contains(['?', '#']) {
        return Err(Error::invalid(field, format!("'{value}' must not have a query or fragment")));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(Error::invalid(
            field,
            "must not carry credentials; set the provider's key instead",
        ));
    }
    let host_only = if host.starts_with('[') {
        host.split(']').next().unwrap_or_default().trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    if host_only.is_empty() {
        return Err(Error::invalid(field, format!("'{value}' has no host")));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A price in USD per million tokens, to integer micro-dollars per million tokens.
pub(crate) fn usd_per_mtok(field: &str, usd: f64) -> Result<u64, Error> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(Error::invalid(
            field,
            "must be a non-negative number of USD per million tokens",
        ));
    }
    if usd > 1_000_000.0 {
        return Err(Error::invalid(field, "must be at most 1000000 USD per million tokens"));
    }
    // In range by the checks above: at most 10^12 micro-dollars, exact in an f64.
    Ok((usd * 1_000_000.0).round() as u64)
}

/// A provider key as sent by a client: not empty, no whitespace (a pasted newline would
/// otherwise end up in the upstream's auth header). The message never repeats the key.
pub(crate) fn api_key(field: &str, key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            field,
            "must not contain whitespace or control characters (a trailing newline?)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
