//! Files the program writes for itself: whole or not at all, private whatever the umask, and
//! never through a symbolic link. One routine for the fix engine's config edits and undo
//! journal, `sessions export`, the sandbox's key-value files and code cache (unsynced: see
//! [`write_atomic_unsynced`]), and voice's preferences and audio cache. Appends (session
//! files, the log) and files created only when missing (the first `config.toml`) are not
//! replacements and are written where they are.
//!
//! It is ours rather than `tempfile`'s `persist` or `atomic-write-file`: both take paths,
//! and the fix engine must create, sync and rename relative to a directory descriptor it has
//! already checked ([`at::Dir`]), so a link swapped in afterwards is never followed.

// The same functions on both; Windows has no openat (see at_windows.rs).
#[cfg(unix)]
pub mod at;
#[cfg(windows)]
#[path = "at_windows.rs"]
pub mod at;

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use self::at::Dir;
use crate::platform;

/// The mode of every file the program keeps for itself.
pub const PRIVATE_FILE: u32 = 0o600;
/// The mode of every directory the program creates for itself.
pub const PRIVATE_DIR: u32 = 0o700;

/// Write `bytes` as `name` in `dir`, atomically: a new temporary file beside it (created with
/// `O_EXCL | O_NOFOLLOW`), given exactly `mode` through its descriptor (the umask cannot
/// change it), synced, then renamed over `name` (a rename replaces a link; it never writes
/// through one). A reader sees the old file or the whole new one; on failure only the
/// temporary file is removed.
pub fn write_atomic_at(dir: &Dir, name: &OsStr, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_at(dir, name, bytes, mode, true)
}

/// [`write_atomic_at`] for a path: its directory is opened as any path is (links on the
/// way followed), the file itself is handled as above.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = open_parent(path)?;
    write_at(&dir, name, bytes, mode, true)
}

/// [`write_atomic`] without the sync, for a cache whose reader checks every file (a digest)
/// and rebuilds one that fails: after a crash the file may be short or empty, never a mix
/// of two writes, and the sync (milliseconds) would cost more than the rebuild it saves.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = open_parent(path)?;
    write_at(&dir, name, bytes, mode, false)
}

fn open_parent(path: &Path) -> io::Result<(Dir, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dir = Dir::open_following(path.parent().unwrap_or(Path::new(".")))?;
    Ok((dir, name))
}

fn write_at(dir: &Dir, name: &OsStr, bytes: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut tmp = name.to_os_string();
    tmp.push(format!(".tmp-{}-{n}", std::process::id()));
    let written = (|| {
        let mut file = dir.create_new(&tmp, mode)?;
        file.write_all(bytes)?;
        platform::set_mode(&file, mode)?;
        if sync {
            file.sync_all()?;
        }
        dir.rename(&tmp, name)
    })();
    if written.is_err() {
        let _ = dir.unlink(&tmp);
    }
    written
}

/// Create `dir` and any missing parents owner-only (0700 whatever the umask); directories
/// that exist are left as they are.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    platform::dir_mode(std::fs::DirBuilder::new().recursive(true), PRIVATE_DIR).create(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_write_replaces_the_file_whole_with_exactly_its_mode() {
        for write in [write_atomic, write_atomic_unsynced] {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("a.json");
            std::fs::write(&path, "old").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            write(&path, b"new", PRIVATE_FILE).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
            assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
            // A mode the caller asks for is kept exactly, looser than the umask or not.
            write(&path, b"shared", 0o644).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
            // Nothing else is left beside it.
            assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn a_link_in_the_files_place_is_replaced_and_its_target_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new", PRIVATE_FILE).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(
            !std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        // A directory in the name's place: the rename fails after the temporary file exists.
        std::fs::create_dir(tmp.path().join("busy")).unwrap();
        std::fs::write(tmp.path().join("busy/inside"), "x").unwrap();
        assert!(write_atomic_at(&dir, OsStr::new("busy"), b"new", PRIVATE_FILE).is_err());
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("busy")]);
    }

    #[test]
    fn private_dirs_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir_all(&dir).unwrap();
        for d in [tmp.path().join("a"), dir] {
            assert_eq!(
                std::fs::metadata(&d).unwrap().mode() & 0o777,
                0o700,
                "{d:?}"
            );
        }
    }
}
