//! The real binary in a real terminal (tmux): visit every pane, open help, resize, quit, and
//! check the terminal was given back in cooked mode on the main screen.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_openclaw-rs");

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// Paste `text` as a terminal does: bracketed when the program asked for it (`-p`).
    fn paste(&self, text: &str) {
        let set = self.cmd(&["set-buffer", "-b", "e2e", "--", text]);
        assert!(set.status.success(), "{set:?}");
        let pasted = self.cmd(&["paste-buffer", "-p", "-d", "-b", "e2e", "-t", "e2e"]);
        assert!(pasted.status.success(), "{pasted:?}");
    }

    /// Wait until the screen shows `text`; fail with the screen when it does not.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// Start the app under a shell that, once the app is gone, prints its exit status and
/// whether the tty is back in cooked mode.
fn start_app(name: &str, home: &Path) -> Tmux {
    let tmux = Tmux {
        socket: format!("openclaw-e2e-{}-{name}", std::process::id()),
    };
    // The shell reports the exit status and the tty mode once the app is gone.
    let script = format!(
        "{} --home {}; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -e '-*icanon' -e '-*echo' | tr '\\n' ' '; echo; sleep 60",
        shell_quote(Path::new(BIN)),
        shell_quote(&home.join("state")),
    );
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        &script,
    ]);
    assert!(started.status.success(), "{started:?}");
    tmux
}

/// After the app is gone: it exited 0, the tty is cooked, the main screen is back.
fn assert_restored(tmux: &Tmux) {
    let screen = tmux.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    // `stty` prints `-icanon`/`-echo` while the terminal is still raw.
    let screen = tmux.wait_for("icanon");
    let modes = screen
        .lines()
        .skip_while(|l| !l.starts_with("EXIT="))
        .nth(1)
        .unwrap_or_default();
    assert_eq!(
        modes.trim(),
        "icanon echo",
        "terminal left in raw mode:\n{screen}"
    );
    let alternate = tmux.cmd(&["display-message", "-p", "-t", "e2e", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alternate.stdout).trim(),
        "0",
        "left the alternate screen"
    );
    // Bracketed paste is off again: a paste into the shell arrives bare, not wrapped in
    // ESC [200~ ... ESC [201~ (which the cooked tty would echo as ^[[200~).
    tmux.paste("PASTED-AFTER-EXIT");
    let screen = tmux.wait_for("PASTED-AFTER-EXIT");
    assert!(
        !screen.contains("200~"),
        "bracketed paste left on:\n{screen}"
    );
}

#[test]
fn visit_every_pane_and_quit_restores_the_terminal() {
    if !tmux_available() {
        println!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let tmux = start_app("keys", home.path());

    let screen = tmux.wait_for("No conversations yet");
    assert!(screen.contains("1 conversations"), "{screen}");
    assert!(tmux.wait_for("build").contains("wasmi") || cfg!(feature = "edge"));

    tmux.keys(&["2"]);
    tmux.wait_for("memory · search");
    tmux.keys(&["3"]);
    tmux.wait_for("self-heal on");
    tmux.keys(&["4"]);
    tmux.wait_for("Attack surface");
    tmux.keys(&["Tab"]);
    tmux.wait_for("No conversations yet");
    tmux.keys(&["?"]);
    tmux.wait_for("keys — keymap default");
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("No conversations yet");
    assert!(!screen.contains("keymap default"), "help closed:\n{screen}");
    tmux.keys(&[":"]);
    tmux.wait_for("command palette");
    tmux.keys(&["focus-memory", "Enter"]);
    tmux.wait_for("memory · search");

    tmux.cmd(&["resize-window", "-t", "e2e", "-x", "40", "-y", "10"]);
    tmux.wait_for("Terminal too small");
    tmux.cmd(&["resize-window", "-t", "e2e", "-x", "100", "-y", "30"]);
    tmux.wait_for("memory · search");

    tmux.keys(&["q"]);
    assert_restored(&tmux);
}

/// A multi-line paste goes into the message box as typed text: every line shows, nothing is
/// sent at the first newline, and escape sequences in it do not reach the terminal.
#[test]
fn a_multi_line_paste_is_typed_not_sent() {
    if !tmux_available() {
        println!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let tmux = start_app("paste", home.path());
    tmux.wait_for("No conversations yet");
    tmux.keys(&["1", "Enter"]);
    // A title change and a screen clear ride along; the field keeps the words only.
    tmux.paste("first pasted line\nsecond \x1b]2;HIJACKED\x07line\x1b[2J\nthird line");
    let screen = tmux.wait_for("third line");
    assert!(
        screen.contains("first pasted line") && screen.contains("second line"),
        "every line in the box:\n{screen}"
    );
    // Nothing was sent: the transcript is still empty and no turn runs.
    assert!(screen.contains("No conversations yet"), "{screen}");
    let title = tmux.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_title}"]);
    assert!(
        !String::from_utf8_lossy(&title.stdout).contains("HIJACKED"),
        "the pasted escape reached the terminal"
    );
    // Apart: ESC and q in one write would read as Alt+q.
    tmux.keys(&["C-u", "Escape"]);
    tmux.wait_for("new · ");
    tmux.keys(&["q"]);
    assert_restored(&tmux);
}

/// SIGTERM (kill) and SIGHUP (a dropped SSH connection) end the app cleanly too.
#[test]
fn signals_end_the_app_and_restore_the_terminal() {
    if !tmux_available() {
        println!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    for signal in ["TERM", "HUP"] {
        let home = tempfile::tempdir().unwrap();
        let tmux = start_app(signal, home.path());
        tmux.wait_for("No conversations yet");
        let shell = tmux.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&shell.stdout).trim().to_string();
        let app = Command::new("pgrep").args(["-P", &shell]).output().unwrap();
        let app = String::from_utf8_lossy(&app.stdout).trim().to_string();
        assert!(!app.is_empty(), "found the app's pid");
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(&app)
            .status()
            .unwrap();
        assert!(killed.success());
        assert_restored(&tmux);
    }
}

/// The findings pane end to end: a world-readable config is one key from a previewed fix,
/// and one key from undoing it.
#[test]
fn fix_and_undo_from_the_findings_pane() {
    use std::os::unix::fs::PermissionsExt;
    if !tmux_available() {
        println!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let first = Command::new(BIN)
        .arg("--home")
        .arg(&state)
        .arg("status")
        .output()
        .unwrap();
    assert!(first.status.success());
    let config = state.join("config.toml");
    let mode = || std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();

    let tmux = start_app("fix", home.path());
    tmux.wait_for("No conversations yet");
    tmux.keys(&["4"]);
    tmux.wait_for("A config file is readable by everyone");
    tmux.keys(&["f"]);
    let screen = tmux.wait_for("y apply");
    assert!(screen.contains("chmod 0600"), "{screen}");
    tmux.keys(&["y"]);
    tmux.wait_for("applied fs.config.perms_world_readable");
    assert_eq!(mode(), 0o600);
    let screen = tmux.wait_for("0 critical");
    assert!(!screen.contains("readable by everyone"), "{screen}");
    tmux.keys(&["u"]);
    tmux.wait_for("undo fix #1");
    tmux.keys(&["y"]);
    tmux.wait_for("undid #1");
    assert_eq!(mode(), 0o644);
    tmux.wait_for("A config file is readable by everyone");
    tmux.keys(&["q"]);
    assert_restored(&tmux);
}
