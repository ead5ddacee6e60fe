//! The provider with no model: it answers from memory search, with citations, and runs the
//! explicit `/tool NAME {json}` commands a user types. It never fails for want of a network,
//! which makes it the end of every fallback chain.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;

use super::{
    BoxFuture, ChatRequest, ChatStream, FinishReason, OFFLINE_LABEL, Provider, ProviderError,
    ProviderHost, Replay, Role, StreamEvent, Usage,
};
use crate::config::ProviderKind;
use crate::memory::types::SearchParams;

/// Memory hits quoted in one answer.
const HITS: usize = 3;

pub struct Offline {
    id: String,
    host: Option<Arc<dyn ProviderHost>>,
}

impl Offline {
    pub fn new(id: &str, host: Option<Arc<dyn ProviderHost>>) -> Self {
        Self {
            id: id.to_string(),
            host,
        }
    }

    async fn answer(&self, request: &ChatRequest) -> VecDeque<StreamEvent> {
        let mut events = VecDeque::new();
        let last = request.messages.last();
        if let Some(result) = last.filter(|m| m.role == Role::Tool) {
            let name = result.name.as_deref().unwrap_or("tool");
            events.push_back(StreamEvent::Text(format!(
                "{OFFLINE_LABEL}: {name} returned:\n{}",
                result.content
            )));
            events.push_back(StreamEvent::Finish(FinishReason::Stop));
            return events;
        }
        let question = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.trim().to_string())
            .unwrap_or_default();
        if let Some(command) = question.strip_prefix("/tool") {
            match parse_tool_command(command) {
                Ok((name, arguments)) => {
                    events.push_back(StreamEvent::ToolCall {
                        index: 0,
                        id: Some("offline-tool-1".into()),
                        name: Some(name),
                        arguments,
                    });
                    events.push_back(StreamEvent::Finish(FinishReason::ToolCalls));
                }
                Err(why) => {
                    events.push_back(StreamEvent::Text(format!("{OFFLINE_LABEL}: {why}")));
                    events.push_back(StreamEvent::Finish(FinishReason::Stop));
                }
            }
            return events;
        }
        events.push_back(StreamEvent::Text(self.answer_from_memory(&question).await));
        events.push_back(StreamEvent::Usage(Usage::default()));
        events.push_back(StreamEvent::Finish(FinishReason::Stop));
        events
    }

    async fn answer_from_memory(&self, question: &str) -> String {
        let advice = "Configure a model provider (see `openclaw-rs providers list`) for real \
                      answers, or add notes with `openclaw-rs memory add`.";
        if question.is_empty() {
            return format!("{OFFLINE_LABEL}: ask a question and I will search memory. {advice}");
        }
        let Some(host) = &self.host else {
            return format!("{OFFLINE_LABEL}: memory is not available here. {advice}");
        };
        let search = SearchParams {
            query: question.to_string(),
            limit: Some(HITS),
            ..SearchParams::default()
        };
        let hits = match host.search_memory(search).await {
            Ok(found) => found.hits,
            Err(why) => {
                return format!("{OFFLINE_LABEL}: memory search failed: {why}. {advice}");
            }
        };
        if hits.is_empty() {
            return format!("{OFFLINE_LABEL}: nothing in memory matches \"{question}\". {advice}");
        }
        let mut text = format!("{OFFLINE_LABEL}: from memory —");
        for (i, hit) in hits.iter().enumerate() {
            let snippet = hit
                .snippet
                .replace(['«', '»'], "")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            text.push_str(&format!(
                "\n[{}] {} ({}:{}-{})",
                i + 1,
                snippet,
                hit.source,
                hit.line_start,
                hit.line_end,
            ));
        }
        text
    }
}

/// `NAME {json}` or `NAME` alone. The JSON is passed on as typed; the turn loop checks it.
pub(crate) fn parse_tool_command(rest: &str) -> Result<(String, String), String> {
    let rest = rest.trim();
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (rest, ""),
    };
    if name.is_empty() {
        return Err("usage: /tool NAME {\"param\": \"value\"}".into());
    }
    let args = if args.is_empty() { "{}" } else { args };
    if serde_json::from_str::<Value>(args).is_err() {
        return Err(format!(
            "the arguments of /tool {name} are not JSON: write them as {{\"param\": \"value\"}}"
        ));
    }
    Ok((name.to_string(), args.to_string()))
}

impl Provider for Offline {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Offline
    }

    fn default_model(&self) -> String {
        OFFLINE_LABEL.to_string()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Box<dyn ChatStream>, ProviderError>> {
        Box::pin(
            async move { Ok(Box::new(Replay(self.answer(request).await)) as Box<dyn ChatStream>) },
        )
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async move { Ok(vec![OFFLINE_LABEL.to_string()]) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ChatMessage;

    async fn run(offline: &Offline, messages: Vec<ChatMessage>) -> Vec<StreamEvent> {
        let request = ChatRequest {
            messages,
            ..Default::default()
        };
        let mut stream = offline.chat(&request).await.unwrap();
        let mut out = Vec::new();
        while let Some(e) = stream.next_event().await.unwrap() {
            out.push(e);
        }
        out
    }

    #[tokio::test]
    async fn tool_command_becomes_a_tool_call_and_bad_json_is_explained() {
        let offline = Offline::new("offline", None);
        let events = run(
            &offline,
            vec![ChatMessage::new(
                Role::User,
                "/tool echo {\"text\": \"hi\"}",
            )],
        )
        .await;
        assert_eq!(
            events[0],
            StreamEvent::ToolCall {
                index: 0,
                id: Some("offline-tool-1".into()),
                name: Some("echo".into()),
                arguments: "{\"text\": \"hi\"}".into()
            }
        );
        let events = run(
            &offline,
            vec![ChatMessage::new(Role::User, "/tool echo {nope")],
        )
        .await;
        let StreamEvent::Text(text) = &events[0] else {
            panic!("{events:?}")
        };
        assert!(
            text.starts_with(OFFLINE_LABEL) && text.contains("not JSON"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn without_memory_it_says_so_and_what_to_do() {
        let offline = Offline::new("offline", None);
        let events = run(&offline, vec![ChatMessage::new(Role::User, "hello")]).await;
        let StreamEvent::Text(text) = &events[0] else {
            panic!("{events:?}")
        };
        assert!(text.contains("offline (no model)") && text.contains("providers list"));
    }
}
