//! Model providers: one trait, four wire formats, and a model run in-process (`local`).
//!
//! A [`Provider`] starts a streamed chat and hands back a [`ChatStream`] of [`StreamEvent`]s
//! (text, reasoning, tool-call pieces, usage, finish). Every failure is a [`ProviderError`]
//! carrying its [`FailureClass`], which is what the orchestrator's self-heal policy acts on.
//! Timeouts are not set here: the orchestrator wraps each step in its own deadline, so one
//! policy governs every provider.

pub mod anthropic;
mod classify;
pub mod lines;
pub mod local;
pub mod offline;
pub mod ollama;
pub mod openai;
pub mod sse;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use classify::{classify_http, classify_reqwest, parse_retry_after};

use crate::config::{Config, ProviderConfig, ProviderKind, SecretRef};
use crate::memory::types::{SearchParams, SearchResult};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a provider needs from the program that runs it. Providers sit below the engine and
/// never name it; the engine implements this (engine/host.rs), so a provider can be built
/// and tested without one.
pub trait ProviderHost: Send + Sync {
    /// Memory search, for the offline provider's answers. `Err`: why it failed, as told to
    /// the user.
    fn search_memory(&self, params: SearchParams) -> BoxFuture<'_, Result<SearchResult, String>>;
    /// Progress of long work (the local model's load), shown on every face.
    fn progress(&self, progress: LoadProgress);
}

/// How far a long piece of work has come (the engine shows it as a progress event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProgress {
    pub task: String,
    pub done: u64,
    pub total: Option<u64>,
    pub message: String,
}

/// Ollama's address when nothing else is configured.
pub const OLLAMA_DEFAULT_URL: &str = "http://127.0.0.1:11434";
/// What the offline provider calls itself wherever a model name would show.
pub const OFFLINE_LABEL: &str = "offline (no model)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One tool call a model asked for. `arguments` is the raw JSON text the model sent, which
/// may be malformed; the turn loop repairs or reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For `Role::Tool`: the tool's name (Ollama and Anthropic want it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id.clone()),
            name: Some(call.name.clone()),
        }
    }
}

/// A tool offered to the model: name, description and a JSON Schema of its params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Other(String),
}

impl FinishReason {
    fn parse(raw: &str) -> Self {
        match raw {
            "stop" | "end_turn" | "stop_sequence" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "tool_calls" | "tool_use" | "function_call" => FinishReason::ToolCalls,
            "content_filter" | "refusal" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Text(String),
    /// A model's visible reasoning ("thinking"), shown dimmed and never sent back.
    Reasoning(String),
    /// A piece of tool call `index`: the first piece carries id and name, the rest carry
    /// argument text to append.
    ToolCall {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Usage(Usage),
    Finish(FinishReason),
}

/// Why a timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    Connect,
    FirstByte,
    Idle,
    Total,
}

/// Every way a call can fail, as far as recovery is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    Auth,
    Billing,
    RateLimit,
    /// 503 and 529: the service is up but shedding load.
    Overloaded,
    /// Other 5xx.
    Server,
    Timeout(TimeoutKind),
    Network,
    /// The reply stream broke off before it finished.
    StreamInterrupted,
    /// A request the provider refused as malformed, or a response we cannot parse.
    Format,
    ModelNotFound,
    ContextOverflow,
    Cancelled,
}

impl FailureClass {
    /// The wire name: `rate_limit`, `timeout.first_byte`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Auth => "auth",
            FailureClass::Billing => "billing",
            FailureClass::RateLimit => "rate_limit",
            FailureClass::Overloaded => "overloaded",
            FailureClass::Server => "server",
            FailureClass::Timeout(TimeoutKind::Connect) => "timeout.connect",
            FailureClass::Timeout(TimeoutKind::FirstByte) => "timeout.first_byte",
            FailureClass::Timeout(TimeoutKind::Idle) => "timeout.idle",
            FailureClass::Timeout(TimeoutKind::Total) => "timeout.total",
            FailureClass::Network => "network",
            FailureClass::StreamInterrupted => "stream_interrupted",
            FailureClass::Format => "format",
            FailureClass::ModelNotFound => "model_not_found",
            FailureClass::ContextOverflow => "context_overflow",
            FailureClass::Cancelled => "cancelled",
        }
    }

    /// What a user can do about it, for error messages.
    pub fn advice(self) -> &'static str {
        match self {
            FailureClass::Auth => {
                "check the provider's api_key reference and that the key is valid"
            }
            FailureClass::Billing => "check the account's billing or quota with the provider",
            FailureClass::RateLimit => {
                "wait a little, or add another provider to self_heal.fallback"
            }
            FailureClass::Overloaded | FailureClass::Server => {
                "the provider is having trouble; try again later or add a fallback provider"
            }
            FailureClass::Timeout(_) => {
                "the provider is slow or unreachable; raise the timeouts in [self_heal] or add a fallback"
            }
            FailureClass::Network => "check the network and the provider's base_url",
            FailureClass::StreamInterrupted => "the reply broke off; send the message again",
            FailureClass::Format => "the request or reply was malformed; check base_url and kind",
            FailureClass::ModelNotFound => {
                "check the model name (`openclaw-rs providers list` shows the models)"
            }
            FailureClass::ContextOverflow => {
                "the conversation is too long for the model; start a new session (/new)"
            }
            FailureClass::Cancelled => "the turn was aborted",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure. The message never contains a key: request headers are not echoed
/// and response bodies are cut short.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct ProviderError {
    pub class: FailureClass,
    pub message: String,
    pub status: Option<u16>,
    /// What the server asked us to wait (`Retry-After`), uncapped.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    pub fn format(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Format, message)
    }
}

/// The events of one reply, pulled one at a time. `Ok(None)` is a clean end.
pub trait ChatStream: Send {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<StreamEvent>, ProviderError>>;
}

pub trait Provider: Send + Sync {
    fn id(&self) -> &str;
    fn kind(&self) -> ProviderKind;
    /// The model used when a request names none.
    fn default_model(&self) -> String;
    /// Send the request; resolves once the response has started (headers received).
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Box<dyn ChatStream>, ProviderError>>;
    /// Models the provider serves, as it reports them.
    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>>;
    /// A cheap request that proves the provider answers and accepts the key.
    fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move { self.models().await.map(|_| ()) })
    }
    /// The state of an in-process model (`local`); `None` for the others.
    fn local_status(&self) -> Option<local::LocalModelStatus> {
        None
    }
}

/// Timeouts of one attempt, after provider overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl Timeouts {
    pub fn for_provider(config: &Config, provider: Option<&ProviderConfig>) -> Self {
        let heal = &config.self_heal;
        let t = provider.map(|p| p.timeouts.clone()).unwrap_or_default();
        let ms = Duration::from_millis;
        Self {
            connect: ms(t.connect_ms.unwrap_or(heal.connect_timeout_ms)),
            first_byte: ms(t.first_byte_ms.unwrap_or(heal.first_byte_timeout_ms)),
            idle: ms(t.idle_ms.unwrap_or(heal.idle_timeout_ms)),
            total: ms(t.total_ms.unwrap_or(heal.request_timeout_ms)),
        }
    }
}

/// Shared HTTP plumbing of the three network providers.
#[derive(Clone)]
pub struct HttpTarget {
    pub id: String,
    pub base_url: String,
    pub key: Option<SecretRef>,
    pub client: reqwest::Client,
    pub model: String,
    pub streaming: bool,
}

impl HttpTarget {
    pub fn new(
        id: &str,
        base_url: &str,
        key: Option<SecretRef>,
        model: String,
        streaming: bool,
        connect_timeout: Duration,
    ) -> Result<Self, ProviderError> {
        let client = crate::net::client_builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| ProviderError::new(FailureClass::Network, format!("HTTP client: {e}")))?;
        Ok(Self {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            client,
            model,
            streaming,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The key, resolved now (never cached, never logged). `Ok(None)`: none configured.
    pub fn resolve_key(&self) -> Result<Option<String>, ProviderError> {
        match &self.key {
            None => Ok(None),
            Some(key) => key.resolve().map(Some).map_err(|e| {
                ProviderError::new(FailureClass::Auth, format!("provider {}: {e}", self.id))
            }),
        }
    }

    /// Send and turn a non-2xx answer into a classified error.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let response = request.send().await.map_err(|e| classify_reqwest(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = parse_retry_after(response.headers());
        // A short read: an error body is small, and an endless one must not hang us.
        let body = read_capped(response, 4096).await;
        let mut error = classify_http(status.as_u16(), &body);
        error.retry_after = retry_after;
        Err(error)
    }
}

/// How a successful chat response's body is framed, told by its content type rather than by
/// what was asked: gateways (LiteLLM's Anthropic route, for one) answer a streaming request
/// with one whole JSON message, and that reply is as good as a streamed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The provider's stream format (`stream_type`).
    Stream,
    /// One JSON document holding the whole reply.
    Whole,
}

/// The framing of `response`, or a `format` error naming the content type that is neither
/// `stream_type` nor JSON (an HTML login page from a proxy, say), with the start of the body.
/// No content type at all: the framing asked for.
pub(crate) async fn framing(
    provider: &str,
    response: reqwest::Response,
    stream_type: &str,
    asked_stream: bool,
) -> Result<(Framing, reqwest::Response), ProviderError> {
    let media = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let framing = if media.is_empty() {
        if asked_stream {
            Framing::Stream
        } else {
            Framing::Whole
        }
    } else if media == stream_type {
        Framing::Stream
    } else if media == "application/json" || media.ends_with("+json") {
        Framing::Whole
    } else {
        let body = read_capped(response, 200).await;
        let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(ProviderError::format(format!(
            "provider {provider} answered with content type {media}, not {stream_type} or              application/json; check base_url and kind (the body begins: {body:?})"
        )));
    };
    Ok((framing, response))
}

/// A whole reply is the model's output, not a document of any size: past this it is refused.
const MAX_WHOLE_REPLY: usize = 64 * 1024 * 1024;

/// The body of a `Framing::Whole` response as JSON.
pub(crate) async fn whole_json(mut response: reqwest::Response) -> Result<Value, ProviderError> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(ProviderError::new(
                    FailureClass::StreamInterrupted,
                    format!("the reply broke off: {}", classify::describe(&e)),
                ));
            }
        }
        if bytes.len() > MAX_WHOLE_REPLY {
            return Err(ProviderError::format(
                "a whole JSON reply is larger than 64 MiB",
            ));
        }
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ProviderError::format(format!("unparseable reply: {e}")))
}

/// Up to `cap` bytes of a body, as text.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < cap {
        match tokio::time::timeout(Duration::from_secs(2), response.chunk()).await {
            Ok(Ok(Some(chunk))) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(cap);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A one-shot answer (streaming off) replayed as a stream.
pub(crate) struct Replay(pub std::collections::VecDeque<StreamEvent>);

impl ChatStream for Replay {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<StreamEvent>, ProviderError>> {
        Box::pin(async move { Ok(self.0.pop_front()) })
    }
}

/// A reply stream decoded from a body already in memory, delivered in `chunks` as a server
/// might cut it: the same parsers the network path runs, without a network. `None` for the
/// offline and local providers, which have no wire format. For tests and fuzzing.
#[doc(hidden)]
pub fn stream_from_chunks(
    kind: ProviderKind,
    chunks: impl IntoIterator<Item = Vec<u8>>,
) -> Option<Box<dyn ChatStream>> {
    Some(match kind {
        ProviderKind::Openai => Box::new(openai::OpenAiStream::new(sse::SseReader::from_chunks(
            chunks,
        ))),
        ProviderKind::Anthropic => Box::new(anthropic::AnthropicStream::new(
            sse::SseReader::from_chunks(chunks),
        )),
        ProviderKind::Ollama => Box::new(ollama::OllamaStream::new(
            lines::LineReader::from_chunks(chunks, lines::LineEnds::Lf),
        )),
        ProviderKind::Offline | ProviderKind::Local => return None,
    })
}

/// Build a provider from its configuration. `Err`: it cannot run as configured (the
/// provider shows as unconfigured, with this reason).
pub fn build(
    id: &str,
    config: &Config,
    provider: Option<&ProviderConfig>,
    host: Option<Arc<dyn ProviderHost>>,
) -> Result<Arc<dyn Provider>, String> {
    let kind = provider
        .and_then(|p| p.kind)
        .or_else(|| ProviderKind::from_id(id))
        .ok_or_else(|| format!("providers.{id}.kind is missing"))?;
    let timeouts = Timeouts::for_provider(config, provider);
    let model = provider.and_then(|p| p.model.clone());
    let key = provider.and_then(|p| p.api_key.clone());
    let streaming = provider.is_none_or(|p| p.capabilities.streaming);
    let base = provider.and_then(|p| p.base_url.clone());
    let max_tokens = provider.and_then(|p| p.max_tokens);
    let http = |default_url: &str, default_model: &str| {
        HttpTarget::new(
            id,
            base.as_deref().unwrap_or(default_url),
            key.clone(),
            model.clone().unwrap_or_else(|| default_model.to_string()),
            streaming,
            timeouts.connect,
        )
        .map_err(|e| e.message)
    };
    Ok(match kind {
        ProviderKind::Openai => {
            if key.is_none() && base.is_none() {
                return Err(format!(
                    "providers.{id} has no api_key for api.openai.com: set api_key = \"env:OPENAI_API_KEY\" or a base_url"
                ));
            }
            Arc::new(openai::OpenAi::new(http(
                "https://api.openai.com/v1",
                "gpt-4o-mini",
            )?))
        }
        ProviderKind::Anthropic => {
            if key.is_none() {
                return Err(format!(
                    "providers.{id} has no api_key: set api_key = \"env:ANTHROPIC_API_KEY\""
                ));
            }
            Arc::new(anthropic::Anthropic::new(
                http("https://api.anthropic.com", "claude-3-5-haiku-latest")?,
                max_tokens.unwrap_or(4096),
            ))
        }
        ProviderKind::Ollama => Arc::new(ollama::Ollama::new(http(OLLAMA_DEFAULT_URL, "")?)),
        ProviderKind::Offline => Arc::new(offline::Offline::new(id, host)),
        ProviderKind::Local => return local::build(id, config, provider, host),
    })
}

/// A JSON value as text: strings bare (tool arguments arrive either as a JSON string or as
/// an object, depending on the server).
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
