//! Two processes, one memory store: a `--batch` session searching in a loop while a
//! `memory index` in another process writes tens of MB, growing the LMDB map past the size
//! the first process mapped. No search may fail, and the new text must be found within a
//! second of the index run ending.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn cmd(home: &Path) -> Command {
    let mut c = common::bin(home);
    // The hash embedder: this is about storage, and MiniLM would take many minutes here.
    c.env("RUST_BACKTRACE", "0")
        .env("OPENCLAW_RS_MEMORY__EMBEDDER", "hash");
    c
}

/// `files` files of about `mib_each` MiB of varied prose; the marker word is in the last.
fn write_corpus(home: &Path, files: usize, mib_each: usize, marker: &str) {
    let dir = home.join("workspace/memory");
    std::fs::create_dir_all(&dir).unwrap();
    for f in 0..files {
        let mut text = String::new();
        let mut n = 0;
        while text.len() < mib_each << 20 {
            // A heading now and then: sections of several full-size chunks, as in real notes.
            if n % 100 == 0 {
                text.push_str(&format!("## Ledger {f}-{n}\n"));
            }
            text.push_str(&format!(
                "Entry {n} of file {f}: the harbour master logged cargo {a} from berth {b}, \
                 weighed {c} stone, and sent the manifest to clerk {d}.\n",
                a = n * 7 % 1013,
                b = n % 97,
                c = n * 13 % 509,
                d = (n + f) % 61,
            ));
            n += 1;
        }
        if f + 1 == files {
            text.push_str(&format!("## Found\nThe {marker} was in the last crate.\n"));
        }
        std::fs::write(dir.join(format!("ledger{f:03}.md")), text).unwrap();
    }
}

struct Batch {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    next_id: u64,
}

impl Batch {
    fn start(home: &Path) -> Self {
        let mut child = cmd(home)
            .arg("--batch")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            next_id: 0,
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let line = json!({"id": self.next_id, "method": method, "params": params});
        writeln!(self.stdin, "{line}").unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        let v: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
        assert_eq!(v["id"], self.next_id, "{v}");
        v
    }
}

#[test]
fn a_batch_session_keeps_searching_while_another_process_grows_the_store() {
    let home = tempfile::tempdir().unwrap();
    let marker = "zephyrquartz";
    let mut batch = Batch::start(home.path());
    // The session opens the store first, at the initial map size.
    let added = batch.call(
        "memory.add",
        json!({"text": "the first note of the voyage"}),
    );
    assert_eq!(added["ok"], true, "{added}");
    let status = batch.call("memory.status", json!({}));
    let map_before = status["payload"]["mapSizeBytes"].as_u64().unwrap();

    // About 20 MiB of text: the store outgrows the 64 MiB map the session opened it with.
    write_corpus(home.path(), 20, 1, marker);
    let started = Instant::now();
    let mut index = cmd(home.path())
        .args(["memory", "index", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut searches = 0u32;
    let mut failures = Vec::new();
    let mut found_at = None;
    let mut ended_at = None;
    loop {
        let answer = batch.call("memory.search", json!({"query": marker, "limit": 3}));
        searches += 1;
        if answer["ok"] != true {
            failures.push(answer);
        } else if found_at.is_none()
            && answer["payload"]["hits"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        {
            found_at = Some(Instant::now());
        }
        if ended_at.is_none() && index.try_wait().unwrap().is_some() {
            ended_at = Some(Instant::now());
        }
        match ended_at {
            Some(end) if found_at.is_some() || end.elapsed() > Duration::from_secs(1) => break,
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the index run took more than 10 minutes"
        );
    }
    let out = index.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = batch.call("memory.status", json!({}));
    let map_after = status["payload"]["mapSizeBytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("{status}"));
    drop(batch.stdin);
    let _ = batch.child.wait();

    eprintln!(
        "{searches} searches during a {:.1} s index run; map {} -> {} MiB",
        ended_at.unwrap().duration_since(started).as_secs_f64(),
        map_before >> 20,
        map_after >> 20
    );
    // The other process grew the map past this one's, which is what made LMDB refuse.
    assert!(map_after > map_before, "{map_before} -> {map_after}");
    assert!(searches > 20, "only {searches} searches");
    assert!(
        failures.is_empty(),
        "{} of {searches} searches failed, first: {}",
        failures.len(),
        failures[0]
    );
    let found = found_at.expect("the new text was not found within a second");
    assert!(
        found <= ended_at.unwrap() + Duration::from_secs(1),
        "found {:?} after the index run ended",
        found.duration_since(ended_at.unwrap())
    );
}
