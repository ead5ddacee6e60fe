//! What differs between Unix and Windows, behind one set of functions so the rest of the
//! code has no `#[cfg]`: file modes and owners, the umask, hard-link counts, free disk space,
//! the file lock, finding and stopping local programs, and the signals that end the TUI.
//!
//! Windows has no mode bits, no umask and no owner id in a file's metadata: access is
//! decided by ACLs, and files created under the user's profile inherit an ACL that admits
//! that user (and administrators) only. So on Windows the functions that set a mode do
//! nothing, and those that read one answer `None`; the checks built on them say so through
//! [`NOT_APPLICABLE`] instead of staying silent.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

use std::path::Path;

/// Bytes available to this user on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    fs4::available_space(path).ok()
}

/// A check of the doctor or the audit that cannot look at anything on this platform: the
/// ids it would report and why not. Reported as one `summary.not_applicable` finding, so a user reading the report knows what was not checked.
pub struct NotApplicable {
    pub ids: &'static str,
    pub why: &'static str,
}

/// The audit's checks that look at what Windows does not have (defined on every platform so
/// that its finding is tested everywhere).
pub const WINDOWS_NOT_APPLICABLE: &[NotApplicable] = &[
    NotApplicable {
        ids: "fs.*.perms_*",
        why: "files have no Unix mode bits on Windows; access is decided by ACLs, which \
              openclaw-rs does not read or change (files under your profile inherit one that \
              admits you and administrators only)",
    },
    NotApplicable {
        ids: "fs.*.hardlinked",
        why: "the number of names of a file is not read on Windows",
    },
    NotApplicable {
        ids: "the undo journal's owner",
        why: "the fix journal is not checked for its owner and mode on Windows (no owner id \
              or mode bits); it is still refused when it is a link",
    },
];

/// The checks that do not apply on this platform (none on Unix).
pub const NOT_APPLICABLE: &[NotApplicable] = if cfg!(windows) {
    WINDOWS_NOT_APPLICABLE
} else {
    &[]
};
