//! Unix: modes, owners and signals as the system has them.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

/// The permission bits (`0o7777`) of a file or directory.
pub fn mode(meta: &Metadata) -> Option<u32> {
    Some(meta.permissions().mode() & 0o7777)
}

/// Set the mode of an open file or directory exactly, through its descriptor.
pub fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Set the mode of the file at `path` (links followed).
pub fn set_path_mode(path: &std::path::Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The mode a file gets when `options` creates it (before the umask).
pub fn create_mode(options: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    options.mode(mode)
}

/// The mode directories get when `builder` creates them (before the umask).
pub fn dir_mode(builder: &mut DirBuilder, mode: u32) -> &mut DirBuilder {
    builder.mode(mode)
}

/// Mask group and other bits off everything this process creates (call it first in main,
/// while there is one thread).
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// How many names the file has.
pub fn link_count(meta: &Metadata) -> Option<u64> {
    Some(meta.nlink())
}

/// An identity of the file that a replacement (a new file renamed over it) changes.
pub fn file_id(meta: &Metadata) -> Option<u64> {
    Some(meta.ino())
}

/// Whether a file that decides what the program does (the fix journal, cached code) can be
/// trusted: it belongs to this user and neither its group nor others can write it.
pub fn owned_by_me_and_private(meta: &Metadata) -> bool {
    meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

/// Whether a program file can be run: a regular file with an execute bit.
pub fn is_executable(meta: &Metadata) -> bool {
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

/// The file names `bin` may have on disk (Windows adds `.exe` and the like).
pub fn program_names(bin: &str) -> Vec<String> {
    vec![bin.to_string()]
}

/// Whether `bin` names a path rather than a program to look up on PATH.
pub fn names_a_path(bin: &str) -> bool {
    bin.contains('/')
}

/// Whether a spawn failed because the program file is still open for writing somewhere
/// (`ETXTBSY`); that passes within milliseconds.
pub fn is_busy_program(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error())
}

/// Start the command in a process group of its own, so [`kill_tree`] reaches what it starts.
pub fn own_process_group(command: &mut tokio::process::Command) {
    command.process_group(0);
}

/// Kill the process group that `pid` leads (see [`own_process_group`]).
pub fn kill_tree(pid: Option<u32>) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// Whether process `pid` still runs: a signal 0 reaches it (or it exists and is another
/// user's). `None` when the id cannot be a process.
pub fn process_alive(pid: u32) -> Option<bool> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    match rustix::process::test_kill_process(pid) {
        Ok(()) | Err(rustix::io::Errno::PERM) => Some(true),
        Err(_) => Some(false),
    }
}

/// Resident set size of this process, from /proc (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = rustix::param::page_size();
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096))
}

/// Requests to end the process: SIGTERM and SIGHUP (the terminal went away).
pub struct Terminations {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Terminations {
    /// Start listening (inside a tokio runtime).
    pub fn new() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next request.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}
