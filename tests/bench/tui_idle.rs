//! The TUI left alone: CPU time and wake-ups of the real binary, idle in a real terminal
//! (tmux), over a window of wall time. Target: at most 0.1% of one core.
//!
//! The app starts at 80x24 in a detached tmux session, is given time to draw its first data
//! frame and settle, and is then left alone. Over the window, per thread: CPU time from
//! `/proc/PID/task/TID/schedstat` (nanoseconds on a CPU; `utime+stime` from `/proc/PID/stat`
//! is printed too, in clock ticks) and voluntary context switches from
//! `/proc/PID/task/TID/status` (a thread switches voluntarily each time it goes back to sleep,
//! so the count is its wake-ups). Baseline in the same window: `less` on a small file in a
//! second tmux session, the usual floor for an idle full-screen program.
//!
//! Run: `cargo bench --bench tui_idle` (60 s, asserts the target). Options: `--seconds N`
//! for another window, `--bin PATH` to measure another build of the binary (a before/after
//! comparison). Under `cargo test` it runs a 2-second smoke pass without the assertion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

/// The target: 0.1% of one core.
const MAX_CPU_PERCENT: f64 = 0.1;

struct Session {
    socket: String,
}

impl Session {
    fn start(name: &str, command: &[&str]) -> Self {
        let session = Session {
            socket: format!("openclaw-idle-{}-{name}", std::process::id()),
        };
        let mut args = vec!["new-session", "-d", "-s", "b", "-x", "80", "-y", "24"];
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
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let out = self.tmux(&["capture-pane", "-p", "-t", "b"]);
            if String::from_utf8_lossy(&out.stdout).contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
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

/// One thread's counters at one moment.
#[derive(Clone, Copy, Default)]
struct ThreadSample {
    cpu_ns: u64,
    voluntary: u64,
    involuntary: u64,
}

/// A process's counters at one moment: per thread (by id, with its name), and the
/// process's own `utime + stime` in clock ticks.
struct Sample {
    threads: BTreeMap<u32, (String, ThreadSample)>,
    ticks: u64,
}

fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

fn sample(pid: u32) -> Sample {
    let mut threads = BTreeMap::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process is running");
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = task.path();
        // A thread may end between the listing and the reads: skip it.
        let (Ok(status), Ok(schedstat)) = (
            std::fs::read_to_string(dir.join("status")),
            std::fs::read_to_string(dir.join("schedstat")),
        ) else {
            continue;
        };
        let name = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .unwrap_or("?")
            .trim()
            .to_string();
        let counters = ThreadSample {
            cpu_ns: schedstat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            voluntary: status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0),
            involuntary: status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0),
        };
        threads.insert(tid, (name, counters));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at field 3; utime and
    // stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    Sample { threads, ticks }
}

/// What changed between two samples of one process.
struct Idle {
    cpu_ns: u64,
    ticks: u64,
    voluntary: u64,
    involuntary: u64,
    threads: usize,
    /// Per thread name: wake-ups and CPU nanoseconds in the window.
    by_name: BTreeMap<String, (u64, u64)>,
}

fn diff(before: &Sample, after: &Sample) -> Idle {
    let mut idle = Idle {
        cpu_ns: 0,
        ticks: after.ticks.saturating_sub(before.ticks),
        voluntary: 0,
        involuntary: 0,
        threads: after.threads.len(),
        by_name: BTreeMap::new(),
    };
    for (tid, (name, now)) in &after.threads {
        // A thread born in the window counts from zero.
        let then = before.threads.get(tid).map(|(_, s)| *s).unwrap_or_default();
        let (cpu, vol, invol) = (
            now.cpu_ns.saturating_sub(then.cpu_ns),
            now.voluntary.saturating_sub(then.voluntary),
            now.involuntary.saturating_sub(then.involuntary),
        );
        idle.cpu_ns += cpu;
        idle.voluntary += vol;
        idle.involuntary += invol;
        let entry = idle.by_name.entry(name.clone()).or_default();
        entry.0 += vol;
        entry.1 += cpu;
    }
    idle
}

fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// The app's log line that says every pane has engine data.
fn data_frame_logged(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains("first data frame drawn"))
}

fn main() {
    let tmux_ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tmux_ok {
        println!("tui_idle skipped: tmux is not installed");
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = value_of("--seconds")
        .map(|s| s.parse().expect("--seconds takes a whole number"))
        .unwrap_or(if full { 60 } else { 2 });
    let bin = value_of("--bin").map_or_else(|| PathBuf::from(BIN), PathBuf::from);
    let bin_arg = bin.to_str().expect("utf-8 path").to_string();

    let home = tempfile::tempdir().expect("tempdir");
    let state = home.path().join("state");
    let state_arg = state.to_str().expect("utf-8 path").to_string();
    let log = state.join("logs").join("openclaw-rs.log");

    let app = Session::start("app", &[&bin_arg, "--home", &state_arg, "-v"]);
    app.wait_for(" build ");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !data_frame_logged(&log) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(data_frame_logged(&log), "the app drew no data frame");
    let less = Session::start("less", &["less", "/etc/os-release"]);
    less.wait_for("NAME");
    // Start-up work (the doctor, the audit, first calls) ends within a second or two.
    std::thread::sleep(Duration::from_secs(if full { 5 } else { 1 }));

    let (app_pid, less_pid) = (app.pane_pid(), less.pane_pid());
    let (app_before, less_before) = (sample(app_pid), sample(less_pid));
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let (app_after, less_after) = (sample(app_pid), sample(less_pid));
    let window = started.elapsed().as_secs_f64();
    let (app_idle, less_idle) = (
        diff(&app_before, &app_after),
        diff(&less_before, &less_after),
    );
    drop(app);
    drop(less);

    let tick = clock_ticks_per_second() as f64;
    let percent = |ns: u64| ns as f64 / 1e9 / window * 100.0;
    let row = |what: &str, idle: &Idle| {
        println!(
            "| {what} | {:.4}% | {:.4}% | {} | {} | {} |",
            percent(idle.cpu_ns),
            idle.ticks as f64 / tick / window * 100.0,
            idle.voluntary,
            idle.involuntary,
            idle.threads,
        );
    };
    println!(
        "tui_idle: {} in tmux at 80x24, idle for {window:.1} s",
        bin.display()
    );
    println!(
        "| process | CPU (schedstat) | CPU (utime+stime) | wake-ups (voluntary switches) | involuntary switches | threads |"
    );
    println!("|---|---|---|---|---|---|");
    row("openclaw-rs", &app_idle);
    row("`less` (baseline)", &less_idle);
    println!("openclaw-rs per thread name (wake-ups, CPU µs):");
    for (name, (wakeups, ns)) in &app_idle.by_name {
        println!("  {name}: {wakeups}, {:.0}", *ns as f64 / 1e3);
    }
    if full {
        let cpu = percent(app_idle.cpu_ns);
        assert!(
            cpu <= MAX_CPU_PERCENT,
            "idle CPU {cpu:.4}% of a core is over the {MAX_CPU_PERCENT}% target"
        );
    }
}
