//! OpenAI-compatible chat completions with SSE: OpenAI, OpenRouter, Groq, vLLM, llama.cpp
//! server and LM Studio, told apart only by `base_url`.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::sse::SseReader;
use super::{
    BoxFuture, ChatMessage, ChatRequest, ChatStream, FailureClass, FinishReason, Framing,
    HttpTarget, Provider, ProviderError, Replay, Role, StreamEvent, Usage, classify,
};
use crate::config::ProviderKind;

pub struct OpenAi {
    http: HttpTarget,
}

impl OpenAi {
    pub fn new(http: HttpTarget) -> Self {
        Self { http }
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut body = json!({
            "model": model_or(&request.model, &self.http.model),
            "messages": request.messages.iter().map(message).collect::<Vec<_>>(),
            "stream": self.http.streaming,
        });
        if self.http.streaming {
            body["stream_options"] = json!({ "include_usage": true });
        }
        if let Some(max) = request.max_tokens {
            body["max_tokens"] = json!(max);
        }
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
        body
    }

    fn authorized(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        Ok(match self.http.resolve_key()? {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        })
    }
}

pub(crate) fn model_or(requested: &str, default: &str) -> String {
    if requested.is_empty() {
        default.to_string()
    } else {
        requested.to_string()
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
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
    })
}

fn stream_error(v: &Value) -> Option<ProviderError> {
    let e = v.get("error")?;
    let kind = e["type"]
        .as_str()
        .or(e["code"].as_str())
        .unwrap_or("api_error");
    let message = e["message"]
        .as_str()
        .map_or_else(|| e.to_string(), str::to_string);
    Some(classify::classify_stream_error(kind, &message))
}

/// A whole `chat.completion` object as the events its stream would have carried.
fn whole_reply(v: &Value) -> Result<VecDeque<StreamEvent>, ProviderError> {
    if let Some(e) = stream_error(v) {
        return Err(e);
    }
    let choice = &v["choices"][0];
    let msg = &choice["message"];
    let mut events = VecDeque::new();
    for key in ["reasoning_content", "reasoning"] {
        if let Some(r) = msg[key].as_str().filter(|t| !t.is_empty()) {
            events.push_back(StreamEvent::Reasoning(r.to_string()));
        }
    }
    if let Some(text) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        events.push_back(StreamEvent::Text(text.to_string()));
    }
    for (index, call) in msg["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        events.push_back(StreamEvent::ToolCall {
            index,
            id: call["id"].as_str().map(str::to_string),
            name: call["function"]["name"].as_str().map(str::to_string),
            arguments: super::text_of(&call["function"]["arguments"]),
        });
    }
    if let Some(u) = usage(v) {
        events.push_back(StreamEvent::Usage(u));
    }
    events.push_back(StreamEvent::Finish(FinishReason::parse(
        choice["finish_reason"].as_str().unwrap_or("stop"),
    )));
    Ok(events)
}

impl Provider for OpenAi {
    fn id(&self) -> &str {
        &self.http.id
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
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
                .authorized(self.http.client.post(self.http.url("/chat/completions")))?
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
                    Ok(Box::new(OpenAiStream::new(SseReader::new(response)))
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
            let builder = self.authorized(self.http.client.get(self.http.url("/models")))?;
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

pub(crate) struct OpenAiStream {
    sse: SseReader,
    pending: VecDeque<StreamEvent>,
    /// A finish reason or `[DONE]` arrived: the end of the body is a clean end.
    finished: bool,
    ended: bool,
}

impl OpenAiStream {
    pub(crate) fn new(sse: SseReader) -> Self {
        Self {
            sse,
            pending: VecDeque::new(),
            finished: false,
            ended: false,
        }
    }

    fn decode(&mut self, data: &str) -> Result<(), ProviderError> {
        if data.trim() == "[DONE]" {
            self.finished = true;
            self.ended = true;
            return Ok(());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| ProviderError::format(format!("unparseable stream chunk: {e}")))?;
        if let Some(e) = stream_error(&v) {
            return Err(e);
        }
        for choice in v["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            for key in ["reasoning_content", "reasoning"] {
                if let Some(r) = delta[key].as_str().filter(|t| !t.is_empty()) {
                    self.pending
                        .push_back(StreamEvent::Reasoning(r.to_string()));
                }
            }
            if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.pending.push_back(StreamEvent::Text(t.to_string()));
            }
            for (i, call) in delta["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                self.pending.push_back(StreamEvent::ToolCall {
                    index: call["index"].as_u64().map_or(i, |n| n as usize),
                    id: call["id"].as_str().map(str::to_string),
                    name: call["function"]["name"].as_str().map(str::to_string),
                    arguments: call["function"]["arguments"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                });
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finished = true;
                self.pending
                    .push_back(StreamEvent::Finish(FinishReason::parse(reason)));
            }
        }
        if let Some(u) = usage(&v) {
            self.pending.push_back(StreamEvent::Usage(u));
        }
        Ok(())
    }
}

impl ChatStream for OpenAiStream {
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
                    Some(frame) => self.decode(&frame.data)?,
                    None if self.finished => self.ended = true,
                    None => {
                        return Err(ProviderError::new(
                            FailureClass::StreamInterrupted,
                            "the reply stream ended before the model finished",
                        ));
                    }
                }
            }
        })
    }
}
