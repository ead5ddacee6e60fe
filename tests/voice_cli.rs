//! `openclaw-rs tts ...` and `openclaw-rs stt FILE` through the binary, with the real
//! espeak-ng, sox and pocketsphinx.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::json;

fn cmd(home: &Path) -> Command {
    let mut c = common::bin(home);
    c.env("RUST_BACKTRACE", "0");
    // The core profile whatever the build: its voice defaults are what these tests expect.
    c.args(["--profile", "core"]);
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn say_writes_the_file_asked_for_and_stt_hears_it() {
    let home = tempfile::tempdir().unwrap();
    let out_wav = home.path().join("fox.wav");
    let out = run(cmd(home.path())
        .args(["tts", "say", "The quick brown fox jumped.", "--out"])
        .arg(&out_wav)
        .arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = json(&out);
    assert_eq!(r["provider"], "espeak-ng");
    assert_eq!(r["outputFormat"], "wav");
    let bytes = std::fs::read(&out_wav).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");

    // Speech to text is off in core until turned on, and says how.
    let out = run(cmd(home.path()).arg("stt").arg(&out_wav));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("voice.stt.enabled"),
        "{}",
        text(&out.stderr)
    );
    let out = run(cmd(home.path())
        .env("OPENCLAW_RS_VOICE__STT__ENABLED", "true")
        .arg("stt")
        .arg(&out_wav));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let heard = text(&out.stdout);
    assert!(heard.contains("quick brown fox"), "{heard}");

    // The extension picks the format.
    let out_flac = home.path().join("fox.flac");
    let out = run(cmd(home.path())
        .args(["tts", "say", "Compressed.", "-o"])
        .arg(&out_flac));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(&std::fs::read(&out_flac).unwrap()[0..4], b"fLaC");
    assert!(text(&out.stdout).contains("espeak-ng"));
}

#[test]
fn set_provider_status_and_the_kittentts_environment() {
    let home = tempfile::tempdir().unwrap();
    let out = run(cmd(home.path()).args(["tts", "set-provider", "sam"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown voice provider 'sam'"));

    let out = run(cmd(home.path()).args(["tts", "set-provider", "kittentts"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let kitten = |c: &mut Command| {
        c.env("OPENCLAW_RS_KITTENTTS_BIN", "/nonexistent/kitten")
            .env("OPENCLAW_RS_KITTENTTS_ARGS", "--out {out}");
    };
    let mut c = cmd(home.path());
    kitten(&mut c);
    let status = json(&run(c.args(["tts", "status", "--json"])));
    assert_eq!(status["provider"], "kittentts");
    assert_eq!(status["enabled"], false);
    assert_eq!(
        status["fallbackProviders"],
        serde_json::json!(["espeak-ng", "flite"]),
        "the configured provider stays in the chain after the chosen one"
    );

    let mut c = cmd(home.path());
    kitten(&mut c);
    let out = run(c.args(["tts", "say", "Still speaking."]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("espeak-ng"), "{said}");
    assert!(
        said.contains("kittentts unavailable") && said.contains("/nonexistent/kitten"),
        "{said}"
    );

    // Every provider failing: exit 1, and each attempt on stderr.
    let mut c = cmd(home.path());
    kitten(&mut c);
    let out = run(c
        .env("OPENCLAW_RS_VOICE__PROVIDER", "openai")
        .env("OPENCLAW_RS_VOICE__FALLBACK", "[]")
        .args(["tts", "say", "Nobody home.", "--json"]));
    assert_eq!(out.status.code(), Some(1));
    let err = json(&out);
    assert_eq!(err["error"]["code"], "UNAVAILABLE");
    let attempts = err["error"]["details"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{err}");
    assert_eq!(attempts[1]["provider"], "openai");
    assert!(text(&out.stderr).contains("openai unavailable"));

    let providers = text(&run(cmd(home.path()).args(["tts", "providers"])).stdout);
    assert!(providers.contains("* kittentts"), "{providers}");
    assert!(providers.contains("espeak-ng   available"), "{providers}");
}
