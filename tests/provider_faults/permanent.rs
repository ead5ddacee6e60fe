//! Errors a retry cannot fix (bad format, unknown model, auth, context overflow): no blind
//! retry, the provider parked, and the offline answer marked degraded.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_missing_model_providers_are_parked_until_a_probe_or_reset() {
    let bad = FakeProvider::start().await;
    let missing = FakeProvider::start().await;
    let good = FakeProvider::start().await;
    let s = setup(
        "park_after = 3\nfallback = []\n",
        &format!(
            "{}{}{}",
            openai("bad", &bad, 1),
            openai("missing", &missing, 2),
            openai("good", &good, 3)
        ),
    );
    bad.script((0..10).map(|_| Fault::Malformed));
    missing.script((0..10).map(|_| Fault::WrongModel));
    let mut rx = s.h().subscribe();
    for _ in 0..3 {
        let r = send(&s.h(), "hi").await.unwrap();
        assert_eq!(
            attempts(&r),
            vec!["bad:format", "missing:model_not_found", "good:ok"]
        );
    }
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(
        attempts(&r),
        vec!["bad:parked", "missing:parked", "good:ok"]
    );
    assert_eq!((bad.chat_calls(), missing.chat_calls()), (3, 3));
    assert!(
        drain(&mut rx).iter().any(|e| matches!(e,
            EngineEvent::ProviderState { provider, state, .. } if provider == "bad" && state == "parked")),
        "parking is an event"
    );
    let listed = s.h().call("providers.list", Value::Null).await.unwrap();
    for (i, class) in [(0, "format"), (1, "model_not_found")] {
        let p = &listed["providers"][i];
        assert_eq!(p["state"], "parked", "{p}");
        let reason = p["reason"].as_str().unwrap();
        assert!(
            reason.contains(class) && reason.contains("3 times in a row"),
            "{reason}"
        );
        assert!(p["parked"]["fake-model"].is_string(), "{p}");
    }
    // A successful probe unparks; so does a reset.
    s.h()
        .call("providers.probe", json!({"id": "bad"}))
        .await
        .unwrap();
    s.h()
        .call("providers.reset", json!({"id": "missing"}))
        .await
        .unwrap();
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(
        attempts(&r),
        vec!["bad:format", "missing:model_not_found", "good:ok"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_wrong_model_and_auth_fall_back_without_retry() {
    for (fault, class) in [
        (Fault::Malformed, "format"),
        (Fault::WrongModel, "model_not_found"),
        (Fault::AuthFailure, "auth"),
    ] {
        let primary = FakeProvider::start().await;
        let backup = FakeProvider::start().await;
        let s = setup(
            "",
            &format!(
                "{}{}",
                openai("primary", &primary, 1),
                ollama("backup", &backup, 2)
            ),
        );
        primary.script([fault]);
        let r = send(&s.h(), "hi").await.unwrap();
        assert_eq!(
            attempts(&r),
            vec![format!("primary:{class}"), "backup:ok".into()]
        );
        assert_eq!(
            primary.chat_calls(),
            1,
            "{class}: never retried on the same provider"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_overflow_is_not_retried_blindly() {
    let primary = FakeProvider::start().await;
    let backup = FakeProvider::start().await;
    let s = setup(
        "",
        &format!(
            "{}{}",
            openai("primary", &primary, 1),
            openai("backup", &backup, 2)
        ),
    );
    // A fresh session has nothing to drop: the turn stops and says why.
    primary.script([Fault::ContextOverflow]);
    let e = send(&s.h(), "hi").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.message.contains("/new"), "{}", e.message);
    assert_eq!((primary.chat_calls(), backup.chat_calls()), (1, 0));
    // With history, the older half is dropped and the shorter request tried once.
    for i in 0..3 {
        send(&s.h(), &format!("filler {i}")).await.unwrap();
    }
    primary.script([Fault::ContextOverflow]);
    let before = primary.chat_calls();
    let r = send(&s.h(), "after overflow").await.unwrap();
    assert_eq!(attempts(&r), vec!["primary:context_overflow", "primary:ok"]);
    let reqs = primary.requests();
    let (first, second) = (&reqs[before], &reqs[before + 1]);
    assert!(
        second["messages"].as_array().unwrap().len() < first["messages"].as_array().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_answer_is_marked_degraded_and_require_model_refuses_it() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    server.script([Fault::AuthFailure]);
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(attempts(&r), vec!["p:auth", "offline:ok"]);
    let heal = &r["runtime"]["selfHealing"];
    assert_eq!(heal["degraded"], true, "{heal}");
    assert_eq!(heal["degradedReason"], "no model answered (p auth)");
    // A model's answer is not degraded.
    s.h().call("providers.reset", Value::Null).await.unwrap();
    let r = send(&s.h(), "hi").await.unwrap();
    assert_eq!(r["runtime"]["selfHealing"]["degraded"], false);

    server.script([Fault::AuthFailure]);
    s.h().call("providers.reset", Value::Null).await.unwrap();
    let e = s
        .h()
        .call(
            "chat.send",
            json!({"session": "t", "message": "hi", "requireModel": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
    assert_eq!(error_attempts(&e), vec!["p:auth"], "offline not asked");
    assert!(e.message.contains("requireModel"), "{}", e.message);
}
