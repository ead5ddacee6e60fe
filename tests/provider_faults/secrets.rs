//! Secrets on either side: the provider key never shows in results, events or errors, and a
//! secret in a model's reply is redacted before it is stored or returned.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_results_events_or_errors() {
    let server = FakeProvider::start().await;
    server.require_key(KEY);
    let s = setup("", &openai("p", &server, 1));
    let mut rx = s.h().subscribe();
    let ok = send(&s.h(), "hi").await.unwrap();
    server.script([Fault::AuthFailure]);
    let fallback = send(&s.h(), "hi").await.unwrap();
    let listed = s.h().call("providers.list", Value::Null).await.unwrap();
    let history = s
        .h()
        .call("sessions.export", json!({"id": "t"}))
        .await
        .unwrap();
    let events: Vec<String> = drain(&mut rx)
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    for text in [
        ok.to_string(),
        fallback.to_string(),
        listed.to_string(),
        history.to_string(),
        events.join("\n"),
    ] {
        assert!(!text.contains("SECRET"), "{text}");
    }
    assert!(
        listed.to_string().contains("file:"),
        "the reference is shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_model_reply_is_redacted_before_it_is_stored_or_returned() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    let token = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
    server.script([Fault::Reply(format!("here is the token: {token} enjoy"))]);
    let mut rx = s.h().subscribe();
    let r = send(&s.h(), "what is my token?").await.unwrap();
    let reply = r["reply"].as_str().unwrap();
    assert!(!reply.contains(&token), "{reply}");
    assert!(reply.contains("here is the token"), "{reply}");
    let rules: Vec<String> = serde_json::from_value(r["safety"]["rules"].clone()).unwrap();
    assert!(rules.iter().any(|id| id.contains("github")), "{rules:?}");
    let decision = drain(&mut rx).into_iter().find_map(|e| match e {
        EngineEvent::SafetyDecision {
            direction, rules, ..
        } => Some((direction, rules)),
        _ => None,
    });
    let (direction, event_rules) = decision.expect("a safety decision event");
    assert_eq!(direction, "modelReply");
    assert_eq!(event_rules, rules);
    // What the session keeps is the redacted reply, too.
    let history = s
        .h()
        .call("sessions.history", serde_json::json!({"id": r["session"]}))
        .await
        .unwrap();
    assert!(!history.to_string().contains(&token));
}
