//! Reading just enough of a request (model, stream flag, offered tools, trailing tool results) to
//! decide what a scripted [`Reply`] turns into: the [`Outcome`] every provider module renders.

use serde_json::{json, Value};

use super::script::{Reply, ToolCall, Usage};

/// Which API a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    Anthropic,
    Chat,
    Responses,
}

/// What the model "says", independent of the wire format.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) thinking: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) tool: Option<ToolCall>,
    pub(crate) usage: Usage,
    pub(crate) stop_reason: Option<String>,
}

const ECHO_LIMIT: usize = 4000;

/// Turns a reply into an outcome for this request.
pub(crate) fn resolve(api: Api, req: &Value, reply: &Reply, text: &str, usage: Usage) -> Outcome {
    let tool_result = if reply.verbatim { None } else { tool_result_text(api, req) };
    let mut tool = reply.tool_call.clone().or_else(|| {
        reply.shell.as_deref().and_then(|cmd| shell_call(api, &offered_tools(req), cmd))
    });
    let mut out_text = reply.text.clone();
    if let Some(result) = tool_result {
        tool = None;
        let base = out_text.unwrap_or_else(|| text.to_owned());
        let mut echo: String = result.chars().take(ECHO_LIMIT).collect();
        if echo.len() < result.len() {
            echo.push('…');
        }
        out_text = Some(format!("{base}\n\nTool result: {echo}"));
    } else if tool.is_none() && out_text.is_none() {
        out_text = Some(text.to_owned());
    }
    Outcome {
        thinking: reply.thinking.clone(),
        text: out_text,
        tool,
        usage: reply.usage.unwrap_or(usage),
        stop_reason: reply.stop_reason.clone(),
    }
}

/// The request's `model`, or `fallback`.
pub(crate) fn model(req: &Value, fallback: &str) -> String {
    req.get("model").and_then(Value::as_str).unwrap_or(fallback).to_owned()
}

/// The request's `stream` flag.
pub(crate) fn streaming(req: &Value) -> bool {
    req.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

/// Names of the tools a request offers (nested `tools` lists included).
pub(crate) fn offered_tools(req: &Value) -> Vec<String> {
    fn collect(tools: &Value, out: &mut Vec<String>) {
        for tool in tools.as_array().into_iter().flatten() {
            let name = tool
                .get("name")
                .or_else(|| tool.get("function").and_then(|f| f.get("name")))
                .and_then(Value::as_str);
            if let Some(name) = name {
                out.push(name.to_owned());
            }
            if let Some(nested) = tool.get("tools") {
                collect(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(tools) = req.get("tools") {
        collect(tools, &mut out);
    }
    out
}

/// A call of the shell tool the request offers, or `None` when it offers no tools.
fn shell_call(api: Api, offered: &[String], cmd: &str) -> Option<ToolCall> {
    if offered.is_empty() {
        return None;
    }
    let has = |n: &str| offered.iter().any(|o| o == n);
    let (name, input) = if has("Bash") {
        ("Bash", json!({"command": cmd, "description": "Run the scripted command"}))
    } else if has("shell") {
        ("shell", json!({"command": ["bash", "-lc", cmd]}))
    } else if has("shell_command") {
        ("shell_command", json!({"command": cmd}))
    } else if has("exec_command") {
        ("exec_command", json!({"cmd": cmd}))
    } else if api == Api::Anthropic {
        ("Bash", json!({"command": cmd, "description": "Run the scripted command"}))
    } else {
        ("shell", json!({"command": ["bash", "-lc", cmd]}))
    };
    Some(ToolCall { name: name.to_owned(), input })
}

/// The text of the tool results that end the conversation, if it ends with any.
pub(crate) fn tool_result_text(api: Api, req: &Value) -> Option<String> {
    let mut parts = Vec::new();
    match api {
        Api::Anthropic => {
            let last = req.get("messages")?.as_array()?.last()?;
            if last.get("role").and_then(Value::as_str) != Some("user") {
                return None;
            }
            for block in last.get("content")?.as_array()? {
                if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                    parts.push(block.get("content").map(content_text).unwrap_or_default());
                }
            }
        }
        Api::Chat => {
            for msg in req.get("messages")?.as_array()?.iter().rev() {
                if msg.get("role").and_then(Value::as_str) != Some("tool") {
                    break;
                }
                parts.push(msg.get("content").map(content_text).unwrap_or_default());
            }
            parts.reverse();
        }
        Api::Responses => {
            for item in req.get("input")?.as_array()?.iter().rev() {
                let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
                if kind.ends_with("_output") {
                    parts.push(item.get("output").map(content_text).unwrap_or_default());
                } else if !parts.is_empty() {
                    break;
                } else if kind == "message" {
                    let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                    if role != "assistant" {
                        break;
                    }
                }
                // reasoning, function calls and assistant messages are skipped over
            }
            parts.reverse();
        }
    }
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// Plain text of a content value: a string, an array of text parts, or anything else as JSON.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| other.get("content").map(content_text))
                    .unwrap_or_default(),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other
            .get("text")
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), str::to_owned),
    }
}
