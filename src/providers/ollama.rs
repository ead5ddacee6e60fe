//! Ollama's native API: `/api/chat` streamed as NDJSON, `/api/tags` for the models pulled.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::lines::{LineEnds, LineReader};
use super::{
    BoxFuture, ChatMessage, ChatRequest, ChatStream, FailureClass, FinishReason, Framing,
    HttpTarget, Provider, ProviderError, Replay, Role, StreamEvent, Usage,
};
use crate::config::ProviderKind;

pub struct Ollama {
    http: HttpTarget,
}

impl Ollama {
    pub fn new(http: HttpTarget) -> Self {
        Self { http }
    }

    /// The requested model, the configured one, or else the first one pulled.
    async fn model(&self, requested: &str) -> Result<String, ProviderError> {
        if !requested.is_empty() {
            return Ok(requested.to_string());
        }
        if !self.http.model.is_empty() {
            return Ok(self.http.model.clone());
        }
        self.models().await?.into_iter().next().ok_or_else(|| {
            ProviderError::new(
                FailureClass::ModelNotFound,
                "Ollama has no model pulled: run `ollama pull llama3.2` or set a model",
            )
        })
    }

    fn authorized(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        // Ollama needs no key; one configured is for a proxy in front of it.
        Ok(match self.http.resolve_key()? {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        })
    }
}

fn message(m: &ChatMessage) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut v = json!({ "role": role, "content": m.content });
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                let args =
                    serde_json::from_str::<Value>(&c.arguments).unwrap_or_else(|_| json!({}));
                json!({"function": {"name": c.name, "arguments": args}})
            })
            .collect();
    }
    if let Some(name) = &m.name {
        v["tool_name"] = json!(name);
    }
    v
}

/// Events of one NDJSON object (a whole reply when streaming is off).
fn decode(
    v: &Value,
    next_tool: &mut usize,
    out: &mut VecDeque<StreamEvent>,
) -> Result<bool, ProviderError> {
    if let Some(error) = v.get("error") {
        let text = super::text_of(error);
        return Err(super::classify::classify_http(
            if text.contains("not found") { 404 } else { 500 },
            &text,
        ));
    }
    let msg = &v["message"];
    if let Some(t) = msg["thinking"].as_str().filter(|t| !t.is_empty()) {
        out.push_back(StreamEvent::Reasoning(t.to_string()));
    }
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        out.push_back(StreamEvent::Text(t.to_string()));
    }
    for call in msg["tool_calls"].as_array().into_iter().flatten() {
        let index = *next_tool;
        *next_tool += 1;
        out.push_back(StreamEvent::ToolCall {
            index,
            // Ollama sends no ids; the turn loop names the call.
            id: None,
            name: call["function"]["name"].as_str().map(str::to_string),
            arguments: super::text_of(&call["function"]["arguments"]),
        });
    }
    if v["done"].as_bool() == Some(true) {
        out.push_back(StreamEvent::Usage(Usage {
            input_tokens: v["prompt_eval_count"].as_u64().unwrap_or(0),
            output_tokens: v["eval_count"].as_u64().unwrap_or(0),
        }));
        // Ollama says `stop` after tool calls; `length` must survive, since calls in a reply
        // cut at the token limit are not run.
        let reason = match FinishReason::parse(v["done_reason"].as_str().unwrap_or("stop")) {
            FinishReason::Length => FinishReason::Length,
            _ if *next_tool > 0 => FinishReason::ToolCalls,
            other => other,
        };
        out.push_back(StreamEvent::Finish(reason));
        return Ok(true);
    }
    Ok(false)
}

impl Provider for Ollama {
    fn id(&self) -> &str {
        &self.http.id
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Ollama
    }

    fn default_model(&self) -> String {
        if self.http.model.is_empty() {
            "(first pulled)".into()
        } else {
            self.http.model.clone()
        }
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Box<dyn ChatStream>, ProviderError>> {
        Box::pin(async move {
            let model = self.model(&request.model).await?;
            let mut body = json!({
                "model": model,
                "messages": request.messages.iter().map(message).collect::<Vec<_>>(),
                "stream": self.http.streaming,
            });
            if !request.tools.is_empty() {
                body["tools"] = request
                    .tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                    })
                    .collect();
            }
            if let Some(max) = request.max_tokens {
                body["options"] = json!({ "num_predict": max });
            }
            let builder = self
                .authorized(self.http.client.post(self.http.url("/api/chat")))?
                .json(&body);
            let response = self.http.send(builder).await?;
            let (framing, response) = super::framing(
                &self.http.id,
                response,
                "application/x-ndjson",
                self.http.streaming,
            )
            .await?;
            match framing {
                Framing::Stream => Ok(Box::new(OllamaStream::new(LineReader::new(
                    response,
                    LineEnds::Lf,
                ))) as Box<dyn ChatStream>),
                // One object, possibly pretty-printed over many lines: parsed whole.
                Framing::Whole => {
                    let v = super::whole_json(response).await?;
                    let mut events = VecDeque::new();
                    if !decode(&v, &mut 0, &mut events)? {
                        return Err(ProviderError::new(
                            FailureClass::StreamInterrupted,
                            "the whole reply has no \"done\": true",
                        ));
                    }
                    Ok(Box::new(Replay(events)) as Box<dyn ChatStream>)
                }
            }
        })
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async move {
            let builder = self.authorized(self.http.client.get(self.http.url("/api/tags")))?;
            let response = self.http.send(builder).await?;
            let v: Value = response
                .json()
                .await
                .map_err(|e| ProviderError::format(format!("unparseable /api/tags: {e}")))?;
            Ok(v["models"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    m["name"]
                        .as_str()
                        .or(m["model"].as_str())
                        .map(str::to_string)
                })
                .collect())
        })
    }
}

/// A streamed reply: one JSON object a line (NDJSON), the last with `"done": true`.
pub(crate) struct OllamaStream {
    lines: LineReader,
    pending: VecDeque<StreamEvent>,
    next_tool: usize,
    finished: bool,
}

impl OllamaStream {
    pub(crate) fn new(lines: LineReader) -> Self {
        Self {
            lines,
            pending: VecDeque::new(),
            next_tool: 0,
            finished: false,
        }
    }
}

impl ChatStream for OllamaStream {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<StreamEvent>, ProviderError>> {
        Box::pin(async move {
            loop {
                if let Some(event) = self.pending.pop_front() {
                    return Ok(Some(event));
                }
                if self.finished {
                    return Ok(None);
                }
                match self.lines.next_line().await? {
                    Some(line) if line.trim().is_empty() => {}
                    Some(line) => {
                        let v: Value = serde_json::from_str(&line).map_err(|e| {
                            ProviderError::format(format!("unparseable stream line: {e}"))
                        })?;
                        self.finished = decode(&v, &mut self.next_tool, &mut self.pending)?;
                    }
                    None => {
                        return Err(ProviderError::new(
                            FailureClass::StreamInterrupted,
                            "the reply stream ended before \"done\": true",
                        ));
                    }
                }
            }
        })
    }
}
