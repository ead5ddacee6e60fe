//! Tool calls a model asks for: offered from the host's tool list, run through its tool
//! invocation (the engine's `tools.list` and `tools.invoke`), repaired when the fix is
//! unambiguous, and otherwise reported back to the model as a tool error — never printed to
//! the user as reply text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::heal::Cancel;
use super::host::{TurnEvent, TurnHost};
use crate::providers::{ToolCall, ToolSpec};

/// Longest tool output passed back to the model.
pub const MAX_OUTPUT: usize = 16 * 1024;
/// Appended to an output cut at [`MAX_OUTPUT`].
pub const CUT_NOTE: &str = "\n[output cut at 16 KiB]";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolOutcome {
    pub id: String,
    pub name: String,
    /// The arguments as run (after any repair), or as sent when they could not be used.
    pub arguments: String,
    pub ok: bool,
    /// The tool's output, or what was wrong (what the model was told).
    pub output: String,
    /// What was repaired in the call, when something was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<String>,
}

impl ToolOutcome {
    pub fn call(&self) -> ToolCall {
        ToolCall {
            id: self.id.clone(),
            name: self.name.clone(),
            arguments: self.arguments.clone(),
        }
    }

    /// The text the model gets as the tool's result.
    pub fn content(&self) -> String {
        if self.ok {
            self.output.clone()
        } else {
            format!("error: {}", self.output)
        }
    }
}

/// A call after repair: runnable, or with the error to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Repaired {
    pub call: ToolCall,
    pub args: Option<Value>,
    pub note: Option<String>,
    pub error: Option<String>,
}

/// The tools the sandbox offers (`tools.list`); none when they cannot be listed.
pub async fn specs(host: &dyn TurnHost) -> Vec<ToolSpec> {
    let Ok(listed) = host.list_tools().await else {
        return Vec::new();
    };
    listed
        .into_iter()
        .map(|tool| ToolSpec {
            name: tool.name,
            description: tool.description,
            // The listing carries no parameter schema (`tools.describe` has it); the model
            // gets an open object and `tools.invoke` checks the input against the schema.
            parameters: json!({"type": "object"}),
        })
        .collect()
}

/// What the model is told for a call written in a reply that stopped at the token limit.
pub const CUT_OFF: &str = "the reply reached the token limit while this tool call was being \
written, so its arguments may be cut short; it was not run. Call it again with shorter \
arguments, or answer without it";

/// A call from a reply that ended at the token limit: never repaired and never run, since
/// closing its braces would run the tool on shortened values. The call is kept as sent.
pub fn cut_off(call: &ToolCall) -> Repaired {
    Repaired {
        call: call.clone(),
        args: None,
        note: None,
        error: Some(CUT_OFF.into()),
    }
}

/// Fix what has one obvious fix: a `functions.` prefix or wrong case in the name, empty
/// arguments, a markdown fence, unclosed braces, arguments sent as a JSON string.
pub fn repair(call: &ToolCall, specs: &[ToolSpec]) -> Repaired {
    let mut notes = Vec::new();
    let mut call = call.clone();
    let trimmed = call.name.trim();
    let bare = trimmed
        .strip_prefix("functions.")
        .unwrap_or(trimmed)
        .to_string();
    if !specs.is_empty() && !specs.iter().any(|s| s.name == bare) {
        let matches: Vec<&ToolSpec> = specs
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(&bare))
            .collect();
        if let [only] = matches.as_slice() {
            notes.push(format!("tool name '{}' read as '{}'", call.name, only.name));
            call.name = only.name.clone();
        } else {
            let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            let error = format!(
                "unknown tool '{}'; the tools are: {}",
                call.name,
                known.join(", ")
            );
            return Repaired {
                call,
                args: None,
                note: None,
                error: Some(error),
            };
        }
    } else if bare != call.name {
        notes.push(format!("tool name '{}' read as '{bare}'", call.name));
        call.name = bare;
    }
    if call.name.is_empty() {
        return Repaired {
            call,
            args: None,
            note: None,
            error: Some("the tool call has no tool name".into()),
        };
    }
    let (args, note) = match parse_args(&call.arguments) {
        Ok(parsed) => parsed,
        Err(error) => {
            return Repaired {
                call,
                args: None,
                note: None,
                error: Some(error),
            };
        }
    };
    if let Some(note) = note {
        notes.push(note);
        call.arguments = args.to_string();
    }
    Repaired {
        call,
        args: Some(args),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        error: None,
    }
}

/// The arguments as a JSON object, and what was repaired to get it.
fn parse_args(raw: &str) -> Result<(Value, Option<String>), String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok((json!({}), Some("empty arguments read as {}".into())));
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        // `trim` also strips what JSON does not count as whitespace (a form feed): then the
        // text as sent does not parse, and the call goes on with the parsed arguments.
        let note = serde_json::from_str::<serde::de::IgnoredAny>(raw)
            .is_err()
            .then(|| "characters around the arguments that are not JSON were removed".into());
        return match v {
            Value::Object(_) => Ok((v, note)),
            // Arguments double-encoded as a JSON string holding the object.
            Value::String(inner) => match serde_json::from_str::<Value>(&inner) {
                Ok(obj @ Value::Object(_)) => Ok((
                    obj,
                    Some("arguments sent as a JSON string were unwrapped".into()),
                )),
                _ => Err("the arguments must be a JSON object, not a string".into()),
            },
            other => Err(format!(
                "the arguments must be a JSON object, not {}",
                match other {
                    Value::Array(_) => "an array",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            )),
        };
    }
    let unfenced = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.trim_end().strip_suffix("```"))
        .map(str::trim);
    if let Some(inner) = unfenced
        && let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(inner)
    {
        return Ok((
            v,
            Some("a markdown fence around the arguments was removed".into()),
        ));
    }
    if let Some(closed) = close_brackets(text)
        && let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&closed)
    {
        return Ok((
            v,
            Some("unclosed brackets in the arguments were closed".into()),
        ));
    }
    let error = serde_json::from_str::<Value>(text)
        .err()
        .map_or_else(String::new, |e| e.to_string());
    Err(format!(
        "the arguments are not valid JSON ({error}); send them again as one JSON object"
    ))
}

/// `text` with its open brackets and an open string closed, when that is all it lacks.
fn close_brackets(text: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            '}' | ']' if stack.pop() != Some(c) => return None,
            _ => {}
        }
    }
    if stack.is_empty() && !in_string {
        return None;
    }
    let mut out = text.to_string();
    if in_string {
        out.push('"');
    }
    out.extend(stack.iter().rev());
    Some(out)
}

/// Run one repaired call through `tools.invoke`. Every failure becomes the tool's result.
pub async fn run(
    host: &dyn TurnHost,
    session: &str,
    repaired: Repaired,
    cancel: &Cancel,
) -> ToolOutcome {
    let call = repaired.call;
    let emit = |status: &str, output: Option<String>| {
        host.emit_turn(TurnEvent::ToolCall {
            conversation: session.to_string(),
            id: call.id.clone(),
            name: call.name.clone(),
            // Shown on every face: redacted like the turn's text (the tool got them whole).
            arguments: crate::secrets::redact::redact_json_text(&call.arguments),
            status: status.to_string(),
            output,
        });
    };
    let finish = |ok: bool, output: String| {
        emit(if ok { "ok" } else { "error" }, Some(output.clone()));
        ToolOutcome {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: crate::secrets::redact::redact_json_text(&call.arguments),
            ok,
            output,
            repaired: repaired.note.clone(),
        }
    };
    let (Some(args), None) = (repaired.args, repaired.error.clone()) else {
        return finish(
            false,
            repaired
                .error
                .clone()
                .unwrap_or_else(|| "invalid call".into()),
        );
    };
    emit("running", None);
    let invoked = tokio::select! {
        _ = cancel.cancelled() => return finish(false, "aborted".into()),
        r = host.invoke_tool(call.name.clone(), args) => r,
    };
    match invoked {
        Ok(output) => finish(true, output_text(&output)),
        Err(why) => finish(false, why),
    }
}

/// What the model is told a tool returned: the `output` of `tools.invoke`'s answer (a string
/// bare, other JSON as text), cut to [`MAX_OUTPUT`] bytes.
pub fn output_text(output: &Value) -> String {
    cap(crate::providers::text_of(output))
}

fn cap(mut text: String) -> String {
    if text.len() > MAX_OUTPUT {
        let mut end = MAX_OUTPUT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(CUT_NOTE);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: json!({"type": "object"}),
        }
    }

    fn call(name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[test]
    fn unambiguous_repairs() {
        let specs = [spec("read_file"), spec("echo")];
        let r = repair(&call("functions.echo", "{\"a\":1"), &specs);
        assert_eq!(r.call.name, "echo");
        assert_eq!(r.args, Some(json!({"a": 1})));
        assert!(r.note.unwrap().contains("unclosed"));
        let r = repair(&call("ECHO", ""), &specs);
        assert_eq!((r.call.name.as_str(), r.args), ("echo", Some(json!({}))));
        let r = repair(&call("echo", "```json\n{\"x\": \"}\"}\n```"), &specs);
        assert_eq!(r.args, Some(json!({"x": "}"})));
        let r = repair(&call("echo", "\"{\\\"q\\\": 2}\""), &specs);
        assert_eq!(r.args, Some(json!({"q": 2})));
        let r = repair(&call("echo", "{\"s\": \"open"), &specs);
        assert_eq!(r.args, Some(json!({"s": "open"})));
    }

    /// Found by the `tool_call_repair` fuzz target: arguments wrapped in a form feed ran,
    /// but the call kept the text as sent, which is not JSON.
    #[test]
    fn arguments_run_are_the_arguments_kept() {
        let r = repair(&call("echo", "\r\u{c}{\"a\": 1}\u{c}"), &[spec("echo")]);
        assert_eq!(r.args, Some(json!({"a": 1})));
        assert_eq!(r.call.arguments, "{\"a\":1}");
        assert!(r.note.is_some_and(|n| n.contains("not JSON")));
        let r = repair(&call("echo", " {\"a\": 1}\n"), &[spec("echo")]);
        assert_eq!((r.call.arguments.as_str(), r.note), (" {\"a\": 1}\n", None));
    }

    #[test]
    fn ambiguous_or_broken_calls_are_reported_not_guessed() {
        let specs = [spec("echo"), spec("Echo")];
        let r = repair(&call("ECHO", "{}"), &specs);
        assert!(r.error.unwrap().contains("unknown tool"));
        let r = repair(&call("nope", "{}"), &[spec("echo")]);
        assert!(r.error.unwrap().contains("the tools are: echo"));
        let r = repair(&call("echo", "{\"a\": 1}}"), &[spec("echo")]);
        assert!(r.error.unwrap().contains("not valid JSON"));
        let r = repair(&call("echo", "[1, 2]"), &[spec("echo")]);
        assert!(r.error.unwrap().contains("not an array"));
        assert!(repair(&call("", "{}"), &[]).error.is_some());
    }
}
