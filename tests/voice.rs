//! Voice against real programs (espeak-ng, sox, pocketsphinx from Debian; `.ci/run` installs
//! them), shell-script fixtures that hang or write garbage, and fake cloud endpoints on
//! 127.0.0.1.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use openclaw_rs::config::{LoadOptions, load};
use openclaw_rs::engine::{Engine, EngineError, ErrorCode};
use serde_json::{Value, json};

struct Setup {
    home: tempfile::TempDir,
    engine: Engine,
}

fn engine_with(config: &str, env: &[(&str, &str)]) -> Setup {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let loaded = load(&LoadOptions {
        state_dir: home.path().to_path_buf(),
        // The core profile whatever the build, so edge's voice defaults do not leak in.
        profile: Some("core".into()),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    });
    assert!(
        !loaded.has_errors(),
        "test config is broken: {:?}",
        loaded.diagnostics
    );
    let engine = Engine::start(loaded, Vec::new());
    Setup { home, engine }
}

async fn call(s: &Setup, method: &str, params: Value) -> Result<Value, EngineError> {
    s.engine.handle().call(method, params).await
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// RIFF/WAVE and the `fmt ` chunk's sample rate, read by hand (not by the code under test).
fn riff_sample_rate(path: &str) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF", "{path}");
    assert_eq!(&bytes[8..12], b"WAVE", "{path}");
    assert_eq!(&bytes[12..16], b"fmt ", "{path}");
    u32::from_le_bytes(bytes[24..28].try_into().unwrap())
}

fn statuses(result: &Value) -> Vec<(String, String)> {
    result["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn attempts_of(error: &EngineError) -> Vec<Value> {
    error
        .details
        .as_ref()
        .and_then(|d| d["attempts"].as_array())
        .cloned()
        .unwrap_or_default()
}

const ESPEAK_ONLY: &str = "[voice]\nprovider = \"espeak-ng\"\nfallback = []\n";

#[tokio::test]
async fn espeak_ng_writes_a_real_wav_whose_duration_grows_with_the_text() {
    let s = engine_with(ESPEAK_ONLY, &[]);
    let short = call(&s, "tts.convert", json!({ "text": "Hello there." }))
        .await
        .unwrap();
    let long = call(
        &s,
        "tts.convert",
        json!({ "text": "Hello there. This reply is a good deal longer than the first one, \
                     so speaking it takes several seconds more." }),
    )
    .await
    .unwrap();
    for r in [&short, &long] {
        assert_eq!(r["provider"], "espeak-ng");
        assert_eq!(r["outputFormat"], "wav");
        assert_eq!(statuses(r), [("espeak-ng".into(), "ok".into())]);
        let path = r["audioPath"].as_str().unwrap();
        assert!(path.starts_with(s.home.path().join("voice/cache").to_str().unwrap()));
        assert_eq!(riff_sample_rate(path), 22_050);
    }
    let (a, b) = (
        short["durationMs"].as_u64().unwrap(),
        long["durationMs"].as_u64().unwrap(),
    );
    assert!(a > 300, "short: {a} ms");
    assert!(b > a * 3, "long {b} ms vs short {a} ms");
    // The header's length agrees with what was reported.
    let bytes = std::fs::metadata(long["audioPath"].as_str().unwrap())
        .unwrap()
        .len();
    let expected = (b * 22_050 * 2 / 1000) as i64;
    assert!(
        (bytes as i64 - 44 - expected).abs() < 22_050 / 10,
        "{bytes} bytes for {b} ms"
    );

    // Asked again: the cache answers, with the same file.
    let again = call(&s, "tts.convert", json!({ "text": "Hello there." }))
        .await
        .unwrap();
    assert_eq!(again["audioPath"], short["audioPath"]);
    assert_eq!(statuses(&again), [("espeak-ng".into(), "cached".into())]);
}

#[tokio::test]
async fn long_text_is_spoken_in_sentence_pieces_and_bounded() {
    let s = engine_with(
        "[voice]\nprovider = \"espeak-ng\"\nfallback = []\nsegment_chars = 40\nmax_text_length = 300\n",
        &[],
    );
    let text = "The first sentence is here. The second one follows it. And a third ends it.";
    let pieces = call(&s, "tts.convert", json!({ "text": text }))
        .await
        .unwrap();
    let whole = engine_with(ESPEAK_ONLY, &[]);
    let one = call(&whole, "tts.convert", json!({ "text": text }))
        .await
        .unwrap();
    // Three pieces joined into one valid WAV about as long as the text spoken at once.
    riff_sample_rate(pieces["audioPath"].as_str().unwrap());
    let (p, o) = (
        pieces["durationMs"].as_u64().unwrap() as f64,
        one["durationMs"].as_u64().unwrap() as f64,
    );
    assert!((p / o - 1.0).abs() < 0.35, "pieces {p} ms, whole {o} ms");

    let err = call(&s, "tts.convert", json!({ "text": "x".repeat(301) }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("max_text_length"), "{}", err.message);
    let err = call(&s, "tts.convert", json!({ "text": "   " }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn speech_round_trips_through_pocketsphinx() {
    let s = engine_with(
        "[voice]\nprovider = \"espeak-ng\"\nfallback = []\n[voice.stt]\nenabled = true\n",
        &[],
    );
    let spoken = call(
        &s,
        "tts.convert",
        // A sentence pocketsphinx's default English model hears reliably from espeak-ng.
        json!({ "text": "The quick brown fox jumped." }),
    )
    .await
    .unwrap();
    // espeak-ng speaks at 22.05 kHz; the transcriber resamples to 16 kHz mono with sox.
    let heard = call(
        &s,
        "stt.transcribe",
        json!({ "audioPath": spoken["audioPath"] }),
    )
    .await
    .unwrap();
    assert_eq!(heard["provider"], "pocketsphinx");
    let text = heard["text"].as_str().unwrap().to_lowercase();
    for word in ["quick", "brown", "fox"] {
        assert!(text.contains(word), "{word:?} not in {text:?}");
    }
    assert_eq!(heard["durationMs"], spoken["durationMs"]);
}

#[tokio::test]
async fn stt_is_off_until_turned_on_and_says_how() {
    let s = engine_with(ESPEAK_ONLY, &[]);
    let status = call(&s, "stt.status", Value::Null).await.unwrap();
    assert_eq!(status["enabled"], false);
    assert_eq!(status["provider"], "pocketsphinx");
    let sphinx = &status["providerStates"][0];
    assert_eq!(sphinx["id"], "pocketsphinx");
    assert_eq!(sphinx["available"], true, "{status}");
    let err = call(
        &s,
        "stt.transcribe",
        json!({ "audioPath": "/nonexistent.wav" }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(err.message.contains("voice.stt.enabled"), "{}", err.message);
}

#[tokio::test]
async fn a_missing_kittentts_binary_falls_back_and_says_why() {
    let config = "[voice]\nprovider = \"kittentts\"\nfallback = [\"espeak-ng\"]\n\
                  [voice.kittentts]\npreset = \"piper\"\nvoice = \"/models/en.onnx\"\n";
    let s = engine_with(
        config,
        &[("OPENCLAW_RS_KITTENTTS_BIN", "/nonexistent/kitten-tts")],
    );
    let status = call(&s, "tts.status", Value::Null).await.unwrap();
    assert_eq!(status["provider"], "kittentts");
    assert_eq!(status["fallbackProviders"], json!(["espeak-ng"]));
    let kitten = status["providerStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "kittentts")
        .unwrap();
    assert_eq!(kitten["configured"], true);
    assert_eq!(kitten["available"], false);
    assert!(kitten.get("binaryPath").is_none());
    let espeak = status["providerStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "espeak-ng")
        .unwrap();
    assert_eq!(espeak["binaryPath"], "/usr/bin/espeak-ng");

    let r = call(&s, "tts.convert", json!({ "text": "Falling back." }))
        .await
        .unwrap();
    assert_eq!(r["provider"], "espeak-ng");
    assert_eq!(
        statuses(&r),
        [
            ("kittentts".into(), "unavailable".into()),
            ("espeak-ng".into(), "ok".into())
        ]
    );
    let reason = r["attempts"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("/nonexistent/kitten-tts") && reason.contains("not found"),
        "{reason}"
    );
}

#[tokio::test]
async fn kittentts_runs_a_configured_command_with_its_template() {
    let tools = tempfile::tempdir().unwrap();
    // A wrapper that records its arguments and stdin, then speaks with espeak-ng.
    let log = tools.path().join("args.txt");
    let wrapper = script(
        tools.path(),
        "kitten",
        &format!(
            "printf '%s\\n' \"$@\" > {log}\nexec espeak-ng -w \"$2\" --stdin",
            log = log.display()
        ),
    );
    let config = format!(
        "[voice]\nprovider = \"kittentts\"\nfallback = []\n[voice.kittentts]\nbin = \"{}\"\n\
         args = [\"-w\", \"{{out}}\", \"--voice\", \"{{voice}}\"]\n",
        wrapper.display()
    );
    let s = engine_with(&config, &[]);
    let r = call(&s, "tts.convert", json!({ "text": "From a template." }))
        .await
        .unwrap();
    assert_eq!(r["provider"], "kittentts");
    let args = std::fs::read_to_string(&log).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args.len(),
        2,
        "no voice set: `--voice {{voice}}` is left out: {args:?}"
    );
    assert_eq!(args[0], "-w");
    assert!(args[1].ends_with(".wav"));
}

#[tokio::test]
async fn a_hanging_provider_is_killed_at_its_timeout() {
    let tools = tempfile::tempdir().unwrap();
    let pid_file = tools.path().join("pid");
    // The script leaves a child behind; both must die.
    let hang = script(
        tools.path(),
        "hang",
        &format!("sleep 300 &\necho $! > {}\nwait", pid_file.display()),
    );
    let config = format!(
        "[voice]\nprovider = \"kittentts\"\nfallback = [\"espeak-ng\"]\ntimeout_ms = 700\n\
         [voice.kittentts]\nbin = \"{}\"\nargs = [\"{{out}}\"]\n",
        hang.display()
    );
    let s = engine_with(&config, &[]);
    let started = Instant::now();
    let r = call(&s, "tts.convert", json!({ "text": "Are you there?" }))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        statuses(&r),
        [
            ("kittentts".into(), "timeout".into()),
            ("espeak-ng".into(), "ok".into())
        ]
    );
    let latency = r["attempts"][0]["latencyMs"].as_u64().unwrap();
    assert!((700..5_000).contains(&latency), "{latency}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Gone, or a zombie waiting for init: either way no longer running.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim().chars().next();
        if stat.is_empty() || state == Some('Z') {
            break;
        }
        assert!(Instant::now() < deadline, "sleep {pid} still runs: {stat}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn garbage_output_is_rejected_and_never_returned_as_audio() {
    let tools = tempfile::tempdir().unwrap();
    let garbage = script(
        tools.path(),
        "garbage",
        "head -c 4000 /dev/urandom > \"$1\"\nexit 0",
    );
    let header_only = script(
        tools.path(),
        "header-only",
        // A valid 44-byte header promising audio, and no samples.
        "printf 'RIFF\\044\\000\\000\\000WAVEfmt \\020\\000\\000\\000\\001\\000\\001\\000\\042\\126\\000\\000\\104\\254\\000\\000\\002\\000\\020\\000data\\000\\000\\000\\000'",
    );
    for (bin, args) in [(&garbage, "[\"{out}\"]"), (&header_only, "[]")] {
        let config = format!(
            "[voice]\nprovider = \"kittentts\"\nfallback = []\n[voice.kittentts]\nbin = \"{}\"\n\
             args = {args}\n",
            bin.display()
        );
        let s = engine_with(&config, &[]);
        let err = call(&s, "tts.convert", json!({ "text": "Say something." }))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
        let attempts = attempts_of(&err);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["status"], "rejected", "{attempts:?}");
        // Nothing was cached or left behind.
        let cache = s.home.path().join("voice/cache");
        let left = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0);
    }
}

#[tokio::test]
async fn when_every_provider_fails_the_answer_is_unavailable_with_each_attempt() {
    let config = "[voice]\nprovider = \"kittentts\"\nfallback = [\"openai\", \"elevenlabs\"]\n\
                  [voice.kittentts]\nbin = \"/nonexistent/tts\"\n";
    let s = engine_with(config, &[]);
    let err = call(&s, "tts.convert", json!({ "text": "Anyone?" }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable);
    let attempts = attempts_of(&err);
    let providers: Vec<&str> = attempts
        .iter()
        .map(|a| a["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["kittentts", "openai", "elevenlabs"]);
    assert!(attempts.iter().all(|a| a["status"] == "unavailable"));
    assert!(
        attempts[1]["reason"]
            .as_str()
            .unwrap()
            .contains("voice.openai.api_key")
    );
}

#[tokio::test]
async fn set_provider_enable_and_disable_persist_and_unknown_ids_are_invalid() {
    let s = engine_with(ESPEAK_ONLY, &[]);
    let h = s.engine.handle();
    assert!(!h.voice_loaded(), "nothing for voice before it is used");
    let before = call(&s, "tts.status", Value::Null).await.unwrap();
    assert!(h.voice_loaded());
    assert_eq!(before["enabled"], false);
    assert_eq!(before["provider"], "espeak-ng");

    let err = call(&s, "tts.setProvider", json!({ "provider": "sam" }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("espeak-ng"), "{}", err.message);
    call(&s, "tts.setProvider", json!({ "provider": "flite" }))
        .await
        .unwrap();
    assert_eq!(
        call(&s, "tts.enable", Value::Null).await.unwrap(),
        json!({ "enabled": true })
    );
    // Another process (a new engine on the same state dir) sees the choices.
    let loaded = load(&LoadOptions {
        state_dir: s.home.path().to_path_buf(),
        profile: Some("core".into()),
        ..Default::default()
    });
    let other = Engine::start(loaded, Vec::new());
    let after = other
        .handle()
        .call("tts.status", Value::Null)
        .await
        .unwrap();
    assert_eq!(after["enabled"], true);
    assert_eq!(after["provider"], "flite");
    assert_eq!(after["fallbackProviders"], json!(["espeak-ng"]));
    call(&s, "tts.disable", Value::Null).await.unwrap();
    let off = call(&s, "tts.status", Value::Null).await.unwrap();
    assert_eq!(off["enabled"], false);

    let providers = call(&s, "tts.providers", Value::Null).await.unwrap();
    assert_eq!(providers["active"], "flite");
    let ids: Vec<&str> = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["kittentts", "espeak-ng", "flite", "openai", "elevenlabs"]
    );
    let espeak = &providers["providers"][1];
    assert_eq!(espeak["name"], "eSpeak NG");
    let voices: Vec<&str> = espeak["voices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(voices.contains(&"en-us"), "{voices:?}");
}

#[tokio::test]
async fn other_formats_go_through_sox() {
    let s = engine_with(ESPEAK_ONLY, &[]);
    let r = call(
        &s,
        "tts.convert",
        json!({ "text": "Compressed.", "format": "flac" }),
    )
    .await
    .unwrap();
    assert_eq!(r["outputFormat"], "flac");
    let path = r["audioPath"].as_str().unwrap();
    assert!(path.ends_with(".flac"));
    assert_eq!(&std::fs::read(path).unwrap()[0..4], b"fLaC");
    let err = call(
        &s,
        "tts.convert",
        json!({ "text": "x", "format": "../../etc/passwd" }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
}

// ---- cloud providers against a fake on 127.0.0.1 -------------------------------------------

const KEY: &str = "sk-test-voice-0123456789";

fn pcm(ms: u32, rate: u32) -> Vec<u8> {
    (0..rate * ms / 1000)
        .flat_map(|i| ((((i % 40) as i16) - 20) * 500).to_le_bytes())
        .collect()
}

async fn fake_server(
    speech_status: StatusCode,
    eleven_status: StatusCode,
) -> (String, tokio::task::JoinHandle<()>) {
    let authorized = |headers: &HeaderMap, name: &str, expect: String| {
        headers.get(name).and_then(|v| v.to_str().ok()) == Some(expect.as_str())
    };
    let app = Router::new()
        .route(
            "/v1/audio/speech",
            post(
                move |headers: HeaderMap, body: axum::Json<Value>| async move {
                    if !authorized(&headers, "authorization", format!("Bearer {KEY}")) {
                        return (StatusCode::UNAUTHORIZED, b"no key".to_vec());
                    }
                    if speech_status != StatusCode::OK {
                        return (speech_status, br#"{"error":{"message":"nope"}}"#.to_vec());
                    }
                    assert_eq!(body["response_format"], "wav");
                    assert!(body["input"].as_str().is_some_and(|t| !t.is_empty()));
                    let wav =
                        openclaw_rs::voice::wav::from_pcm16(&pcm(800, 24_000), 24_000).unwrap();
                    (StatusCode::OK, wav)
                },
            ),
        )
        .route(
            "/v1/text-to-speech/{voice}",
            post(move |headers: HeaderMap| async move {
                if !authorized(&headers, "xi-api-key", KEY.to_string()) {
                    return (StatusCode::UNAUTHORIZED, b"no key".to_vec());
                }
                if eleven_status != StatusCode::OK {
                    return (eleven_status, b"upstream exploded".to_vec());
                }
                (StatusCode::OK, pcm(600, 22_050))
            }),
        )
        .route(
            "/v1/audio/transcriptions",
            post(
                move |headers: HeaderMap, body: axum::body::Bytes| async move {
                    if !authorized(&headers, "authorization", format!("Bearer {KEY}")) {
                        return (StatusCode::UNAUTHORIZED, "{}".to_string());
                    }
                    let text = String::from_utf8_lossy(&body);
                    assert!(text.contains("name=\"file\""), "multipart upload");
                    assert!(text.contains("RIFF"));
                    (
                        StatusCode::OK,
                        r#"{"text":" a fake transcript "}"#.to_string(),
                    )
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

fn cloud_config(dir: &Path, base: &str, provider: &str, key_file_content: &str) -> String {
    let key = dir.join("key");
    std::fs::write(&key, key_file_content).unwrap();
    format!(
        "[voice]\nprovider = \"{provider}\"\nfallback = [\"espeak-ng\"]\n\
         [voice.openai]\nbase_url = \"{base}/v1\"\napi_key = \"file:{key}\"\n\
         [voice.elevenlabs]\nbase_url = \"{base}\"\napi_key = \"file:{key}\"\n\
         [voice.stt]\nenabled = true\nprovider = \"openai\"\n\
         [voice.stt.openai]\nbase_url = \"{base}/v1\"\napi_key = \"file:{key}\"\n",
        key = key.display()
    )
}

#[tokio::test]
async fn cloud_speech_endpoints_return_audio() {
    let (base, server) = fake_server(StatusCode::OK, StatusCode::OK).await;
    let keys = tempfile::tempdir().unwrap();
    for (provider, rate, ms) in [("openai", 24_000, 800), ("elevenlabs", 22_050, 600)] {
        let s = engine_with(&cloud_config(keys.path(), &base, provider, KEY), &[]);
        let r = call(&s, "tts.convert", json!({ "text": "From the cloud." }))
            .await
            .unwrap();
        assert_eq!(r["provider"], provider, "{r}");
        assert_eq!(statuses(&r), [(provider.to_string(), "ok".to_string())]);
        assert_eq!(riff_sample_rate(r["audioPath"].as_str().unwrap()), rate);
        assert_eq!(r["durationMs"], ms);
        let status = call(&s, "tts.status", Value::Null).await.unwrap();
        let state = status["providerStates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == provider)
            .unwrap()
            .clone();
        assert_eq!(state["configured"], true);
        assert_eq!(state["available"], true);
    }
    // Transcription goes up as multipart and comes back as text.
    let s = engine_with(&cloud_config(keys.path(), &base, "openai", KEY), &[]);
    let spoken = call(&s, "tts.convert", json!({ "text": "Up it goes." }))
        .await
        .unwrap();
    let heard = call(
        &s,
        "stt.transcribe",
        json!({ "audioPath": spoken["audioPath"] }),
    )
    .await
    .unwrap();
    assert_eq!(heard["provider"], "openai");
    assert_eq!(heard["text"], "a fake transcript");
    server.abort();
}

#[tokio::test]
async fn cloud_401_and_500_fall_back_without_leaking_the_key() {
    let (base, server) = fake_server(
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    let keys = tempfile::tempdir().unwrap();
    // A wrong key: 401 from both.
    for (provider, key, code) in [
        ("openai", "sk-wrong-key-abcdef", "401"),
        ("elevenlabs", "sk-wrong-key-abcdef", "401"),
        ("openai", KEY, "500"),
        ("elevenlabs", KEY, "500"),
    ] {
        let s = engine_with(&cloud_config(keys.path(), &base, provider, key), &[]);
        let r = call(&s, "tts.convert", json!({ "text": "Fall back please." }))
            .await
            .unwrap();
        assert_eq!(r["provider"], "espeak-ng");
        assert_eq!(
            statuses(&r),
            [
                (provider.to_string(), "failed".to_string()),
                ("espeak-ng".to_string(), "ok".to_string())
            ]
        );
        let reason = r["attempts"][0]["reason"].as_str().unwrap();
        assert!(reason.contains(code), "{reason}");
        let shown = r.to_string();
        assert!(!shown.contains(key) && !shown.contains(KEY), "{shown}");
    }
    server.abort();
}

#[tokio::test]
async fn a_whisper_style_command_transcribes_by_template() {
    let tools = tempfile::tempdir().unwrap();
    // Like openai-whisper: writes <name>.txt into the output directory it is given.
    let whisper = script(
        tools.path(),
        "whisper",
        "test -s \"$1\" || exit 3\nprintf '  heard   from\\n a file \\n' > \"$3/audio.txt\"",
    );
    let config = format!(
        "[voice]\nprovider = \"espeak-ng\"\nfallback = []\n[voice.stt]\nenabled = true\n\
         provider = \"pocketsphinx\"\nfallback = [\"whisper\"]\n[voice.stt.whisper]\n\
         bin = \"{}\"\nargs = [\"{{input}}\", \"--output_dir\", \"{{out_dir}}\"]\n",
        whisper.display()
    );
    let s = engine_with(
        &config.replace("provider = \"pocketsphinx\"", "provider = \"whisper\""),
        &[],
    );
    let spoken = call(&s, "tts.convert", json!({ "text": "Anything." }))
        .await
        .unwrap();
    let heard = call(
        &s,
        "stt.transcribe",
        json!({ "audioPath": spoken["audioPath"] }),
    )
    .await
    .unwrap();
    assert_eq!(heard["provider"], "whisper");
    assert_eq!(heard["text"], "heard from a file");

    // Not audio at all: refused before any provider runs.
    let junk = tools.path().join("junk.wav");
    std::fs::write(&junk, "not audio").unwrap();
    let err = call(&s, "stt.transcribe", json!({ "audioPath": junk }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest, "{err}");
}

#[test]
fn profiles_differ_on_voice_as_documented() {
    let home = tempfile::tempdir().unwrap();
    let core = openclaw_rs::config::load_profile(home.path(), "core")
        .config
        .voice;
    let edge = openclaw_rs::config::load_profile(home.path(), "edge")
        .config
        .voice;
    assert!(!core.enabled && !core.stt.enabled);
    assert_eq!(core.provider, "espeak-ng");
    assert_eq!(core.fallback, ["flite"]);
    assert!(edge.enabled && edge.stt.enabled);
    assert_eq!(edge.provider, "kittentts");
    assert_eq!(edge.kittentts.preset.as_deref(), Some("piper"));
    assert_eq!(edge.fallback, ["espeak-ng", "flite"]);
    assert!(edge.timeout_ms > core.timeout_ms);
    assert!(edge.cache_max_files > core.cache_max_files);
}

#[tokio::test]
async fn doctor_names_a_voice_program_that_is_missing() {
    let config = "[voice]\nenabled = true\nprovider = \"kittentts\"\nfallback = [\"espeak-ng\"]\n\
                  [voice.kittentts]\npreset = \"piper\"\nbin = \"/nonexistent/piper\"\n";
    let s = engine_with(config, &[]);
    let report = call(&s, "doctor.run", json!({ "only": ["voice"] }))
        .await
        .unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["checkId"], "voice.binary_missing");
    assert_eq!(findings[0]["path"], "voice.kittentts");
    assert!(
        findings[0]["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/piper")
    );
    // Off: nothing to say, and nothing probed.
    let s = engine_with(&config.replace("enabled = true", "enabled = false"), &[]);
    let report = call(&s, "doctor.run", json!({ "only": ["voice"] }))
        .await
        .unwrap();
    assert_eq!(report["findings"], json!([]));
}
