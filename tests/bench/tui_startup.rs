//! TUI startup to first frame, and idle memory, of the real binary in a real terminal (tmux).
//!
//! Run: `cargo bench --bench tui_startup`. Baselines measured in the same run: `sh -c 'echo
//! READY'` for the time (tmux's own start-up and polling cost), and `less` for the memory of
//! a minimal full-screen terminal program.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

struct Session {
    socket: String,
}

impl Session {
    fn start(name: &str, width: u16, height: u16, command: &[&str]) -> Self {
        let session = Session {
            socket: format!("openclaw-bench-{}-{name}", std::process::id()),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let mut args = vec!["new-session", "-d", "-s", "b", "-x", &w, "-y", &h];
        args.extend_from_slice(command);
        let out = session.tmux(&args);
        assert!(out.status.success(), "{out:?}");
        session
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux")
    }

    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let out = self.tmux(&["capture-pane", "-p", "-t", "b"]);
            if String::from_utf8_lossy(&out.stdout).contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("timed out waiting for {text:?}");
    }

    fn pane_pid(&self) -> u32 {
        let out = self.tmux(&["display-message", "-p", "-t", "b", "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pid")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The app's own measure, logged at info level: process start to a frame flushed.
/// `what` is `first frame drawn` (the layout) or `first data frame drawn` (engine data in).
fn logged_micros(log: &Path, what: &str) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    // "first frame drawn micros=" is not part of "first data frame drawn micros=".
    let needle = format!("{what} micros=");
    let line = text.lines().rev().find(|l| l.contains(&needle))?;
    let start = line.find("micros=")? + "micros=".len();
    line[start..].split_whitespace().next()?.parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let tmux_ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tmux_ok {
        println!("tui_startup skipped: tmux is not installed");
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 9 } else { 1 };
    let home = tempfile::tempdir().expect("tempdir");
    let state = home.path().join("state");
    let state_arg = state.to_str().expect("utf-8 path").to_string();
    let log = state.join("logs").join("openclaw-rs.log");

    let mut app_wall = Vec::new();
    let mut app_internal = Vec::new();
    let mut app_data = Vec::new();
    let mut baseline_wall = Vec::new();
    let mut app_rss = 0;
    for round in 0..rounds {
        let started = Instant::now();
        let session = Session::start(
            &format!("app{round}"),
            80,
            24,
            &[BIN, "--home", &state_arg, "-v", "--keymap", "default"],
        );
        session.wait_for(" build ");
        app_wall.push(started.elapsed().as_secs_f64() * 1e3);
        let deadline = Instant::now() + Duration::from_secs(20);
        while logged_micros(&log, "first data frame drawn").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(micros) = logged_micros(&log, "first frame drawn") {
            app_internal.push(micros as f64 / 1e3);
        }
        if let Some(micros) = logged_micros(&log, "first data frame drawn") {
            app_data.push(micros as f64 / 1e3);
        }
        if round == 0 {
            // Idle: nothing to do, nothing drawn; measure after it settles.
            std::thread::sleep(Duration::from_millis(if full { 2000 } else { 300 }));
            app_rss = rss_kib(session.pane_pid());
        }
        drop(session);

        let started = Instant::now();
        let session = Session::start(
            &format!("base{round}"),
            80,
            24,
            &["sh", "-c", "echo READY; sleep 30"],
        );
        session.wait_for("READY");
        baseline_wall.push(started.elapsed().as_secs_f64() * 1e3);
    }

    let less = Session::start("less", 80, 24, &["less", "/etc/os-release"]);
    less.wait_for("NAME");
    std::thread::sleep(Duration::from_millis(300));
    let less_rss = rss_kib(less.pane_pid());
    drop(less);

    assert!(!app_internal.is_empty(), "the app logged no first frame");
    assert!(!app_data.is_empty(), "the app logged no data frame");
    let data = median(app_data);
    let (wall, base, internal) = (
        median(app_wall),
        median(baseline_wall),
        median(app_internal),
    );
    println!("tui_startup (80x24 in tmux, median of {rounds})");
    println!("| measure | value | ratio |");
    println!("|---|---|---|");
    println!("| first frame, in-process (main() to first draw) | {internal:.2} ms | |");
    println!("| first frame with engine data, in-process | {data:.2} ms | |");
    println!(
        "| first frame seen on screen (tmux spawn + draw + capture) | {wall:.1} ms | {:.2} |",
        wall / base
    );
    println!("| baseline: `echo READY` seen on screen | {base:.1} ms | 1.00 |");
    println!(
        "| idle RSS, openclaw-rs | {:.1} MiB | {:.2} |",
        app_rss as f64 / 1024.0,
        app_rss as f64 / less_rss as f64
    );
    println!(
        "| idle RSS, `less` (baseline) | {:.1} MiB | 1.00 |",
        less_rss as f64 / 1024.0
    );
}
