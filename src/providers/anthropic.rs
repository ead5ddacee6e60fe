//! Anthropic Messages API with SSE (`base_url` without `/v1`).

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

use super::openai::model_or;
use super::sse::SseReader;
use super::{
    BoxFuture, ChatRequest, ChatStream, FailureClass, FinishReason, Framing, HttpTarget, Provider,
    ProviderError, Replay, Role, StreamEvent, Usage, classify,
};
use crate::config::ProviderKind;

const API_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    http: HttpTarget,
    max_tokens: u32,
}

impl Anthropic {
    pub fn new(http: HttpTarget, max_tokens: u32) -> Self {
        Self { http, max_tokens }
    }

    fn headers(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let builder = builder.header("anthropic-version", API_VERSION);
        Ok(match self.http.resolve_key()? {
            Some(key) => builder.header("x-api-key", key),
            None => builder,
        })
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let mut messages: Vec<Value> = Vec::new();
        for m in request.messages.iter().filter(|m| m.role != Role::System) {
            let (role, blocks) = match m.role {
                Role::Tool => (
                    "user",
                    vec![json!({"type": "tool_result",
                        "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                        "content": m.content})],
                ),
                Role::Assistant => {
                    let mut blocks = Vec::new();
                    if !m.content.is_empty() {
                        blocks.push(json!({"type": "text", "text": m.content}));
                    }
                    for c in &m.tool_calls {
                        let input = serde_json::from_str::<Value>(&c.arguments)
                            .ok()
                            .filter(Value::is_object)
                            .unwrap_or_else(|| json!({}));
                        blocks.push(
                            json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                        );
                    }
                    ("assistant", blocks)
                }
                _ => ("user", vec![json!({"type": "text", "text": m.content})]),
            };
            // The API wants roles to alternate: tool results and a following user message
            // share one user turn.
            match messages.last_mut() {
                Some(last) if last["role"] == role => {
                    if let Some(content) = last["content"].as_array_mut() {
                        content.extend(blocks);
                    }
                }
                _ => messages.push(json!({"role": role, "content": blocks})),
            }
        }
        let mut body = json!({
            "model": model_or(&request.model, &self.http.model),
            "max_tokens": request.max_tokens.unwrap_or(self.max_tokens),
            "messages": messages,
            "stream": self.http.streaming,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
        }
        body
    }
}

/// A whole `message` object as the events its stream would have carried.
fn whole_reply(v: &Value) -> Result<VecDeque<StreamEvent>, ProviderError> {
    if v["type"] == "error" {
        let e = &v["error"];
        return Err(classify::classify_stream_error(
            e["type"].as_str().unwrap_or("api_error"),
            e["message"].as_str().unwrap_or(""),
        ));
    }
    let mut events = VecDeque::new();
    let mut tool_index = 0;
    for block in v["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => events.push_back(StreamEvent::Text(
                block["text"].as_str().unwrap_or("").to_string(),
            )),
            Some("thinking") => events.push_back(StreamEvent::Reasoning(
                block["thinking"].as_str().unwrap_or("").to_string(),
            )),
            Some("tool_use") => {
                events.push_back(StreamEvent::ToolCall {
                    index: tool_index,
                    id: block["id"].as_str().map(str::to_string),
                    name: block["name"].as_str().map(str::to_string),
                    arguments: block["input"].to_string(),
                });
                tool_index += 1;
            }
            _ => {}
        }
    }
    events.push_back(StreamEvent::Usage(Usage {
        input_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
    }));
    events.push_back(StreamEvent::Finish(FinishReason::parse(
        v["stop_reason"].as_str().unwrap_or("end_turn"),
    )));
    Ok(events)
}

impl Provider for Anthropic {
    fn id(&self) -> &str {
        &self.http.id
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn default_model(&self) -> String {
        self.http.model.clone()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Box<dyn ChatStream>, ProviderError>> {
        Box::pin(async move {
            let builder = self
                .headers(self.http.client.post(self.http.url("/v1/messages")))?
                .json(&self.body(request));
            let response = self.http.send(builder).await?;
            let (framing, response) = super::framing(
                &self.http.id,
                response,
                "text/event-stream",
                self.http.streaming,
            )
            .await?;
            match framing {
                Framing::Stream => {
                    Ok(Box::new(AnthropicStream::new(SseReader::new(response)))
                        as Box<dyn ChatStream>)
                }
                Framing::Whole => {
                    let events = whole_reply(&super::whole_json(response).await?)?;
                    Ok(Box::new(Replay(events)) as Box<dyn ChatStream>)
                }
            }
        })
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async move {
            let builder = self.headers(self.http.client.get(self.http.url("/v1/models")))?;
            let response = self.http.send(builder).await?;
            let v: Value = response
                .json()
                .await
                .map_err(|e| ProviderError::format(format!("unparseable model list: {e}")))?;
            Ok(v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect())
        })
    }
}

pub(crate) struct AnthropicStream {
    sse: SseReader,
    pending: VecDeque<StreamEvent>,
    /// Content block index to tool-call index.
    tools: HashMap<u64, usize>,
    usage: Usage,
    finished: bool,
    ended: bool,
}

impl AnthropicStream {
    pub(crate) fn new(sse: SseReader) -> Self {
        Self {
            sse,
            pending: VecDeque::new(),
            tools: HashMap::new(),
            usage: Usage::default(),
            finished: false,
            ended: false,
        }
    }

    fn decode(&mut self, event: Option<&str>, data: &str) -> Result<(), ProviderError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| ProviderError::format(format!("unparseable stream event: {e}")))?;
        let kind = v["type"].as_str().or(event).unwrap_or("");
        match kind {
            "message_start" => {
                self.usage.input_tokens =
                    v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                let block = &v["content_block"];
                if block["type"] == "tool_use" {
                    let index = self.tools.len();
                    self.tools.insert(v["index"].as_u64().unwrap_or(0), index);
                    self.pending.push_back(StreamEvent::ToolCall {
                        index,
                        id: block["id"].as_str().map(str::to_string),
                        name: block["name"].as_str().map(str::to_string),
                        arguments: String::new(),
                    });
                }
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => self.pending.push_back(StreamEvent::Text(
                        delta["text"].as_str().unwrap_or("").to_string(),
                    )),
                    Some("thinking_delta") => self.pending.push_back(StreamEvent::Reasoning(
                        delta["thinking"].as_str().unwrap_or("").to_string(),
                    )),
                    Some("input_json_delta") => {
                        let block = v["index"].as_u64().unwrap_or(0);
                        let index = self.tools.get(&block).copied().ok_or_else(|| {
                            ProviderError::format("tool input for a block that is not a tool call")
                        })?;
                        self.pending.push_back(StreamEvent::ToolCall {
                            index,
                            id: None,
                            name: None,
                            arguments: delta["partial_json"].as_str().unwrap_or("").to_string(),
                        });
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(out) = v["usage"]["output_tokens"].as_u64() {
                    self.usage.output_tokens = out;
                }
                if let Some(reason) = v["delta"]["stop_reason"].as_str() {
                    self.pending.push_back(StreamEvent::Usage(self.usage));
                    self.pending
                        .push_back(StreamEvent::Finish(FinishReason::parse(reason)));
                }
            }
            "message_stop" => {
                self.finished = true;
                self.ended = true;
            }
            "error" => {
                let e = &v["error"];
                return Err(classify::classify_stream_error(
                    e["type"].as_str().unwrap_or("api_error"),
                    e["message"].as_str().unwrap_or(""),
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

impl ChatStream for AnthropicStream {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<StreamEvent>, ProviderError>> {
        Box::pin(async move {
            loop {
                if let Some(event) = self.pending.pop_front() {
                    return Ok(Some(event));
                }
                if self.ended {
                    return Ok(None);
                }
                match self.sse.next_frame().await? {
                    Some(frame) => self.decode(frame.event.as_deref(), &frame.data)?,
                    None if self.finished => self.ended = true,
                    None => {
                        return Err(ProviderError::new(
                            FailureClass::StreamInterrupted,
                            "the reply stream ended before message_stop",
                        ));
                    }
                }
            }
        })
    }
}
