//! Tool calls from the model: repaired or refused with a reason, never run when cut short,
//! and the tool loop bounded.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_repaired_and_their_errors_go_back_to_the_model() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    // Unclosed JSON to a built-in tool: repaired, then run in the sandbox. An unknown tool:
    // the error goes back to the model.
    server.script([
        Fault::ToolCall("text_stats".into(), "{\"text\": \"hi there\"".into()),
        Fault::ToolCall("echo".into(), "{}".into()),
        Fault::Reply("done with the tools".into()),
    ]);
    let mut rx = s.h().subscribe();
    let r = send(&s.h(), "count the words").await.unwrap();
    assert_eq!(r["reply"], "done with the tools");
    let stats = &r["toolCalls"][0];
    assert_eq!(stats["name"], "text_stats");
    assert_eq!(stats["arguments"], "{\"text\":\"hi there\"}");
    assert!(stats["repaired"].as_str().unwrap().contains("unclosed"));
    assert_eq!(stats["ok"], true, "{stats}");
    assert!(
        stats["output"].as_str().unwrap().contains("\"words\":2"),
        "{stats}"
    );
    let unknown = &r["toolCalls"][1];
    assert_eq!(unknown["name"], "echo");
    assert_eq!(unknown["ok"], false);

    let requests = server.requests();
    let second = &requests[requests.len() - 2];
    let messages = second["messages"].as_array().unwrap();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool["tool_call_id"], "call_1");
    assert!(tool["content"].as_str().unwrap().contains("\"words\":2"));
    let assistant = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(
        assistant["tool_calls"][0]["function"]["arguments"],
        "{\"text\":\"hi there\"}"
    );
    let last = server.requests().pop().unwrap();
    let tool_results: Vec<&Value> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert!(
        tool_results[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("error:"),
        "{last}"
    );
    let streamed: String = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            EngineEvent::StreamDelta { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        !streamed.contains("text_stats") && !streamed.contains("echo"),
        "a tool call is never reply text"
    );
}

/// A reply that stops at the token limit may have cut a tool call's arguments short: closing
/// the braces would run the tool on shortened values. The call is never run, and the model
/// is told why, in every wire format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_cut_at_the_token_limit_never_runs() {
    for wire in ["openai", "anthropic", "ollama"] {
        let server = FakeProvider::start().await;
        let (providers, args) = match wire {
            "openai" => (openai("p", &server, 1), "{\"text\": \"hi th"),
            "anthropic" => (anthropic("p", &server, 1), "{\"text\": \"hi th"),
            // Ollama sends arguments parsed, so a cut call still arrives whole-looking.
            _ => (ollama("p", &server, 1), "{\"text\": \"hi th\"}"),
        };
        let s = setup("", &providers);
        server.script([
            Fault::CutToolCall("text_stats".into(), args.into()),
            Fault::Reply("said it shorter".into()),
        ]);
        let mut rx = s.h().subscribe();
        let r = send(&s.h(), "count the words").await.unwrap();
        assert_eq!(r["reply"], "said it shorter", "{wire}: {r}");
        let call = &r["toolCalls"][0];
        assert_eq!(call["name"], "text_stats", "{wire}: {call}");
        assert_eq!(call["ok"], false, "{wire}: {call}");
        assert!(call.get("repaired").is_none(), "{wire}: {call}");
        let output = call["output"].as_str().unwrap();
        assert!(output.contains("token limit"), "{wire}: {output}");
        assert!(!output.contains("words"), "{wire}: the tool ran: {output}");
        let ran = drain(&mut rx).into_iter().any(
            |e| matches!(e, EngineEvent::TurnToolCall { ref status, .. } if status == "running"),
        );
        assert!(!ran, "{wire}: the cut call was run");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{wire}");
        let told = requests[1].to_string();
        assert!(told.contains("token limit"), "{wire}: {told}");
        assert!(!told.contains("\\\"words\\\""), "{wire}: {told}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_loop_is_bounded() {
    let server = FakeProvider::start().await;
    let s = setup("", &format!("{}\n", openai("p", &server, 1)));
    let rounds = s.h().snapshot().config().chat.max_tool_rounds as usize;
    server.script((0..rounds + 5).map(|_| Fault::ToolCall("echo".into(), "{}".into())));
    let r = send(&s.h(), "loop forever").await.unwrap();
    assert_eq!(r["toolRoundsExhausted"], true);
    assert_eq!(r["toolCalls"].as_array().unwrap().len(), rounds);
    let last = server.requests().pop().unwrap();
    assert!(
        last.get("tools").is_none(),
        "the last round offers no tools"
    );
}
