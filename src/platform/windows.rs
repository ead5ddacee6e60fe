//! Windows: no modes, no umask and no owner ids in the metadata (ACLs decide access, and
//! files under the user's profile inherit one that admits that user only); console control
//! events in place of signals.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io;

/// None: Windows files have no mode bits.
pub fn mode(_meta: &Metadata) -> Option<u32> {
    None
}

/// Nothing to set: the file keeps the ACL it inherited from its directory.
pub fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Nothing to set (see [`set_mode`]).
pub fn set_path_mode(_path: &std::path::Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Unchanged: the new file inherits its directory's ACL.
pub fn create_mode(options: &mut OpenOptions, _mode: u32) -> &mut OpenOptions {
    options
}

/// Unchanged: the new directory inherits its parent's ACL.
pub fn dir_mode(builder: &mut DirBuilder, _mode: u32) -> &mut DirBuilder {
    builder
}

/// Nothing: there is no umask.
pub fn private_umask() {}

/// None: std reads it only on nightly.
pub fn link_count(_meta: &Metadata) -> Option<u64> {
    None
}

/// None: the file index is read only on nightly; callers compare size and time instead.
pub fn file_id(_meta: &Metadata) -> Option<u64> {
    None
}

/// True: there is no owner id or group-write bit to look at (see the module's note).
pub fn owned_by_me_and_private(_meta: &Metadata) -> bool {
    true
}

/// A regular file: Windows runs a file by its name's extension, not by a bit.
pub fn is_executable(meta: &Metadata) -> bool {
    meta.is_file()
}

/// `bin` as it is when it has an extension, else with each of `PATHEXT` (`.COM;.EXE;.BAT;
/// .CMD` when unset), as the command interpreter looks programs up.
pub fn program_names(bin: &str) -> Vec<String> {
    if std::path::Path::new(bin).extension().is_some() {
        return vec![bin.to_string()];
    }
    let exts = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".into());
    exts.split(';')
        .filter(|e| !e.is_empty())
        .map(|e| format!("{bin}{}", e.to_ascii_lowercase()))
        .collect()
}

/// Whether `bin` names a path rather than a program to look up on PATH.
pub fn names_a_path(bin: &str) -> bool {
    bin.contains(['/', '\\', ':'])
}

/// Whether a spawn failed because the program file is still open for writing
/// (`ERROR_SHARING_VIOLATION`); that passes within milliseconds.
pub fn is_busy_program(e: &io::Error) -> bool {
    e.raw_os_error() == Some(32)
}

/// `CREATE_NEW_PROCESS_GROUP`: a Ctrl-C meant for the TUI's console does not reach it.
pub fn own_process_group(command: &mut tokio::process::Command) {
    command.creation_flags(0x0000_0200);
}

/// Nothing more than the caller's own kill of the child: Windows has no process-group
/// kill without a job object, so programs the child started itself may outlive it.
pub fn kill_tree(_pid: Option<u32>) {}

/// None: not asked on Windows; callers go by how fresh the process's last report is.
pub fn process_alive(_pid: u32) -> Option<bool> {
    None
}

/// None: not read on Windows (the local model's load report leaves it out).
pub fn resident_bytes() -> Option<u64> {
    None
}

/// Requests to end the process: the console window closed, the user logging off, the
/// system shutting down, and Ctrl-Break (Ctrl-C is a key in the TUI's raw mode).
pub struct Terminations {
    close: tokio::signal::windows::CtrlClose,
    shutdown: tokio::signal::windows::CtrlShutdown,
    logoff: tokio::signal::windows::CtrlLogoff,
    brk: tokio::signal::windows::CtrlBreak,
}

impl Terminations {
    /// Start listening (inside a tokio runtime).
    pub fn new() -> io::Result<Self> {
        use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_logoff, ctrl_shutdown};
        Ok(Self {
            close: ctrl_close()?,
            shutdown: ctrl_shutdown()?,
            logoff: ctrl_logoff()?,
            brk: ctrl_break()?,
        })
    }

    /// The next request.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.close.recv() => {}
            _ = self.shutdown.recv() => {}
            _ = self.logoff.recv() => {}
            _ = self.brk.recv() => {}
        }
    }
}
