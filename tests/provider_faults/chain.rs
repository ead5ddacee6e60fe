//! The provider chain across runs: the keyless default, offline answers from memory, a
//! reordered chain saved (or not), and sessions restored on start.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_default_chain_is_ollama_then_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine_in(tmp.path());
    let listed = engine
        .handle()
        .call("providers.list", Value::Null)
        .await
        .unwrap();
    let ids: Vec<&str> = listed["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["ollama", "offline"]);
    assert_eq!(listed["providers"][1]["model"], "offline (no model)");

    // Ollama not running (a closed port here): the offline provider answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        tmp.path().join("config.toml"),
        format!(
            "[providers.ollama]\nbase_url = \"http://127.0.0.1:{port}\"\n[chat]\nrecall_hits = 0\n"
        ),
    )
    .unwrap();
    let engine = engine_in(tmp.path());
    let r = engine
        .handle()
        .call("chat.send", json!({"message": "what is up"}))
        .await
        .unwrap();
    assert!(
        r["reply"]
            .as_str()
            .unwrap()
            .starts_with("offline (no model)"),
        "{r}"
    );
    assert_eq!(r["model"], "offline (no model)");
    // A refused connection is a network failure: retried once, then the next provider.
    assert_eq!(
        attempts(&r),
        vec!["ollama:network", "ollama:network", "offline:ok"]
    );

    // Ollama running: it answers, with the first model it has pulled.
    let server = FakeProvider::start().await;
    std::fs::write(
        tmp.path().join("config.toml"),
        format!(
            "[providers.ollama]\nbase_url = \"{}\"\n[chat]\nrecall_hits = 0\n",
            server.root_url()
        ),
    )
    .unwrap();
    let engine = engine_in(tmp.path());
    let r = engine
        .handle()
        .call("chat.send", json!({"message": "hi"}))
        .await
        .unwrap();
    assert_eq!(r["provider"], "ollama");
    assert_eq!(server.requests()[0]["model"], "fake-model");
    let models = engine
        .handle()
        .call("models.list", json!({"provider": "ollama"}))
        .await
        .unwrap();
    assert_eq!(
        models["providers"][0]["models"],
        json!(["fake-model", "fake-large"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_answers_from_memory_with_citations() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "[self_heal]\nfallback = [\"offline\"]\n",
    )
    .unwrap();
    let engine = engine_in(tmp.path());
    let h = engine.handle();
    h.call(
        "memory.add",
        json!({"text": "The quartermaster keeps the spare lanterns in hold three."}),
    )
    .await
    .unwrap();
    let r = h
        .call(
            "chat.send",
            json!({"message": "where are the spare lanterns"}),
        )
        .await
        .unwrap();
    let reply = r["reply"].as_str().unwrap();
    assert!(reply.starts_with("offline (no model)"), "{reply}");
    assert!(
        reply.contains("[1]") && reply.contains("hold three"),
        "{reply}"
    );
    assert!(
        !r["citations"].as_array().unwrap().is_empty(),
        "recall adds citations"
    );
    assert!(
        r["citations"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("lanterns")
    );
}

fn chain(h: &EngineHandle) -> Vec<String> {
    openclaw_rs::engine::chat::list_providers(h)
        .providers
        .into_iter()
        .map(|p| p.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reordered_chain_is_saved_and_a_restart_keeps_it_with_the_comments() {
    let first = FakeProvider::start().await;
    let second = FakeProvider::start().await;
    let s = setup(
        "",
        &format!(
            "# my providers, hand-written\n{}\n# the backup one\n{}",
            openai("first", &first, 1),
            ollama("second", &second, 2)
        ),
    );
    let file = s._tmp.path().join("config.toml");
    let before = std::fs::read_to_string(&file).unwrap();
    assert_eq!(chain(&s.h()), vec!["first", "second", "offline"]);

    let r = s
        .h()
        .call("providers.reorder", json!({"order": ["second", "offline"]}))
        .await
        .unwrap();
    assert_eq!(r["savedTo"], file.display().to_string(), "{r}");
    assert!(r.get("note").is_none(), "{r}");
    let ids: Vec<&str> = r["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["second", "offline", "first"]);

    // Only the one key changed: comments, keys and layout of the rest are as they were.
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.contains("# my providers, hand-written\n"), "{after}");
    assert!(after.contains("# the backup one\n"), "{after}");
    assert!(
        after.contains("chain_order = [\"second\", \"offline\"]"),
        "{after}"
    );
    let removed: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    assert!(removed.is_empty(), "lines lost: {removed:?}");
    assert_eq!(
        std::fs::read_to_string(openclaw_rs::findings::fix::backup_path(&file, 1)).unwrap(),
        before,
        "the file before the change is in the backup ring"
    );

    // A fresh engine on the same home: the saved order, and turns follow it.
    let fresh = engine_in(s._tmp.path());
    assert!(fresh.handle().snapshot().diagnostics.is_empty());
    assert_eq!(chain(&fresh.handle()), vec!["second", "offline", "first"]);
    second.script([Fault::Reply("from second".into())]);
    let r = send(&fresh.handle(), "who answers?").await.unwrap();
    assert_eq!(r["provider"], "second");
    assert_eq!(first.chat_calls(), 0);

    // An empty order goes back to priority order, saved too.
    fresh
        .handle()
        .call("providers.reorder", json!({"order": []}))
        .await
        .unwrap();
    assert_eq!(
        chain(&engine_in(s._tmp.path()).handle()),
        vec!["first", "second", "offline"]
    );
    assert_eq!(
        std::fs::read_to_string(openclaw_rs::findings::fix::backup_path(&file, 1)).unwrap(),
        before,
        "moving providers again does not push older backups out of the ring"
    );
    // Unknown ids change nothing, on disk or in memory.
    let text = std::fs::read_to_string(&file).unwrap();
    let e = fresh
        .handle()
        .call("providers.reorder", json!({"order": ["nope"]}))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorder_that_cannot_be_saved_holds_for_the_run_and_says_why() {
    let first = FakeProvider::start().await;
    let s = setup("", &openai("first", &first, 1));
    // A config file that is a link: the fix engine's rules refuse to write through it.
    let file = s._tmp.path().join("config.toml");
    let real = s._tmp.path().join("real.toml");
    std::fs::rename(&file, &real).unwrap();
    std::os::unix::fs::symlink(&real, &file).unwrap();
    let before = std::fs::read_to_string(&real).unwrap();
    let r = s
        .h()
        .call("providers.reorder", json!({"order": ["offline"]}))
        .await
        .unwrap();
    assert!(r.get("savedTo").is_none(), "{r}");
    let note = r["note"].as_str().unwrap();
    assert!(
        note.contains("this run only") && note.contains("symbolic link"),
        "{note}"
    );
    assert!(note.contains("chain_order = [\"offline\"]"), "{note}");
    assert_eq!(chain(&s.h()), vec!["offline", "first"]);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), before);
    // `persist: false` is this run only by request, and leaves the file alone.
    let r = s
        .h()
        .call(
            "providers.reorder",
            json!({"order": ["first"], "persist": false}),
        )
        .await
        .unwrap();
    assert!(r.get("savedTo").is_none(), "{r}");
    assert_eq!(chain(&s.h()), vec!["first", "offline"]);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_persist_and_are_restored_on_start() {
    let server = FakeProvider::start().await;
    let s = setup("", &openai("p", &server, 1));
    send(&s.h(), "remember me").await.unwrap();
    let dir = s.h().snapshot().loaded.paths.state_dir.clone();
    let again = engine_in(&dir);
    let listed = again
        .handle()
        .call("sessions.list", Value::Null)
        .await
        .unwrap();
    assert_eq!(listed["sessions"][0]["id"], "t");
    assert_eq!(listed["sessions"][0]["messages"], 2);
    // The next turn carries the restored history to the model.
    again
        .handle()
        .call("chat.send", json!({"session": "t", "message": "and now?"}))
        .await
        .unwrap();
    let last = server.requests().pop().unwrap();
    assert!(last.to_string().contains("remember me"));
    let history = again
        .handle()
        .call("sessions.history", json!({"id": "t"}))
        .await
        .unwrap();
    let turns: Vec<&Value> = history["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == "turn")
        .collect();
    assert_eq!(turns.len(), 2);
    assert_eq!(
        turns[0]["record"]["selfHealing"]["attempts"][0]["provider"],
        "p"
    );
    let recent = again
        .handle()
        .call("telemetry.recent", Value::Null)
        .await
        .unwrap();
    assert_eq!(
        recent["turns"].as_array().unwrap().len(),
        1,
        "history is per run"
    );
}
