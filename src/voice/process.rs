//! Running a local voice program: bounded in time and in output, and killed whole (with any
//! children it started) when it overruns, so a hung synthesizer never outlives its call.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::VoiceError;
use crate::platform;

/// stderr kept for error messages; the rest is discarded.
const STDERR_LIMIT: u64 = 16 * 1024;

pub struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub success: bool,
    pub code: Option<i32>,
}

impl Finished {
    /// The last non-empty stderr line: what a failing program usually says about why.
    pub fn reason(&self) -> String {
        let line = self
            .stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let code = self.code.map_or_else(
            || "was killed by a signal".to_string(),
            |c| format!("exited with status {c}"),
        );
        if line.is_empty() {
            code
        } else {
            format!("{code}: {}", truncate(line, 200))
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Find `bin` as a path or on PATH; only an executable regular file counts.
pub fn which(bin: &str) -> Option<PathBuf> {
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| platform::is_executable(&m));
    if bin.is_empty() {
        return None;
    }
    if platform::names_a_path(bin) {
        let path = PathBuf::from(bin);
        return executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    let names = platform::program_names(bin);
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|p| executable(p))
}

/// Run `bin` with `args`, feeding `stdin`, and wait at most `timeout`. stdout beyond
/// `max_stdout` bytes is refused (a runaway program is not audio).
pub async fn run(
    bin: &Path,
    args: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
    max_stdout: u64,
) -> Result<Finished, VoiceError> {
    let mut command = tokio::process::Command::new(bin);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its own process group, so a timeout kills the shell script and what it started.
    platform::own_process_group(&mut command);
    let mut tries = 0;
    let mut child = loop {
        match command.spawn() {
            Ok(child) => break child,
            // A program written a moment ago may still be open for writing in a process
            // that is being forked elsewhere; that passes within milliseconds.
            Err(e) if platform::is_busy_program(&e) && tries < 10 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(VoiceError::Unavailable(format!(
                    "cannot start {}: {e}",
                    bin.display()
                )));
            }
        }
    };
    let pid = child.id();
    let input = child.stdin.take();
    let output = child.stdout.take();
    let errors = child.stderr.take();

    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(bytes)) = (input, stdin) {
                // A program that exits without reading its input is judged by its output.
                let _ = pipe.write_all(bytes).await;
                let _ = pipe.shutdown().await;
            }
        };
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(pipe) = output {
                let _ = pipe.take(max_stdout + 1).read_to_end(&mut buf).await;
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(pipe) = errors {
                let _ = pipe.take(STDERR_LIMIT).read_to_end(&mut buf).await;
            }
            buf
        };
        let ((), out, err) = tokio::join!(feed, read_out, read_err);
        if out.len() as u64 > max_stdout {
            return Err(VoiceError::Rejected(format!(
                "{} wrote more than {} MiB",
                bin.display(),
                max_stdout / (1024 * 1024)
            )));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| VoiceError::Failed(format!("waiting for {}: {e}", bin.display())))?;
        Ok(Finished {
            stdout: out,
            stderr: String::from_utf8_lossy(&err).into_owned(),
            success: status.success(),
            code: status.code(),
        })
    };
    let result = tokio::time::timeout(timeout, work).await;
    let outcome = match result {
        Ok(Ok(finished)) => return Ok(finished),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(VoiceError::Timeout(
            u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        )),
    };
    platform::kill_tree(pid);
    // Reap it, so no zombie is left behind.
    let _ = child.kill().await;
    outcome
}
