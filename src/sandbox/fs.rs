//! `fs_read`: files under the workspace and nowhere else.
//!
//! The path must be relative, without `..` or empty components. It is then opened one
//! component at a time from a handle of the workspace itself, never following a symlink
//! anywhere on the way (not even one pointing inside the workspace), and a directory swapped
//! for a link between a check and the open cannot lead out: there is no check-then-open gap
//! to race. On Unix each name is opened with `openat(O_NOFOLLOW)` from its directory's
//! descriptor (`fs/unix.rs`); on Windows each directory on the way is held open without
//! delete sharing, so it cannot be renamed or replaced while the names below it are opened
//! without following reparse points (`fs/windows.rs`).

use std::io::Read;
use std::path::{Component, Path};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as sys;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{0}")]
    Denied(String),
    #[error("not found")]
    NotFound,
    #[error("too large")]
    TooLarge,
    #[error("{0}")]
    Io(std::io::Error),
}

/// The components of a workspace-relative path, or why it is refused.
fn components(path: &str) -> Result<Vec<&str>, FsError> {
    if path.is_empty() {
        return Err(FsError::Denied("an empty path".into()));
    }
    if path.contains('\0') {
        return Err(FsError::Denied("a path with a NUL byte".into()));
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(FsError::Denied(format!(
            "'{path}' is absolute; fs_read takes paths relative to the workspace"
        )));
    }
    let mut out = Vec::new();
    for component in p.components() {
        match component {
            Component::Normal(name) => match name.to_str() {
                Some(name) => out.push(name),
                None => return Err(FsError::Denied("a path that is not UTF-8".into())),
            },
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(FsError::Denied(format!(
                    "'{path}' contains '..'; fs_read stays inside the workspace"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(FsError::Denied(format!("'{path}' is absolute")));
            }
        }
    }
    if out.is_empty() {
        return Err(FsError::Denied(format!(
            "'{path}' names the workspace itself"
        )));
    }
    Ok(out)
}

fn denied_or(path: &str, dir: &sys::Dir, name: &str, e: std::io::Error) -> FsError {
    if sys::is_symlink_at(dir, name) || sys::is_link_error(&e) {
        // A symlink where a file or directory was expected.
        return FsError::Denied(format!(
            "'{path}' goes through a symbolic link; fs_read does not follow links"
        ));
    }
    if sys::is_not_dir(&e) || e.kind() == std::io::ErrorKind::NotFound {
        FsError::NotFound
    } else {
        FsError::Io(e)
    }
}

/// Read `path` (relative to `workspace`), at most `max` bytes.
pub fn read_in_workspace(workspace: &Path, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
    let parts = components(path)?;
    // The workspace itself may be reached through links (a user's choice); below it, none.
    let root = sys::open_dir_path(workspace).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            FsError::NotFound
        } else {
            FsError::Io(e)
        }
    });
    let root = match root {
        Ok(root) => root,
        // The no-follow open refuses a workspace that is itself a link; follow that one on
        // purpose.
        Err(_) => {
            let canonical = workspace.canonicalize().map_err(|_| FsError::NotFound)?;
            sys::open_dir_path(&canonical).map_err(FsError::Io)?
        }
    };
    let (last, dirs) = parts.split_last().ok_or(FsError::NotFound)?;
    let mut dir = root;
    for name in dirs {
        dir = sys::open_dir(&dir, name).map_err(|e| denied_or(path, &dir, name, e))?;
    }
    let file = sys::open_file(&dir, last).map_err(|e| denied_or(path, &dir, last, e))?;
    let meta = file.metadata().map_err(FsError::Io)?;
    if !meta.is_file() {
        return Err(FsError::Denied(format!("'{path}' is not a regular file")));
    }
    if meta.len() > max {
        return Err(FsError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(FsError::Io)?;
    if bytes.len() as u64 > max {
        return Err(FsError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn workspace() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("ws/notes")).unwrap();
        std::fs::write(tmp.path().join("ws/notes/a.md"), "hello").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "outside").unwrap();
        tmp
    }

    #[test]
    fn reads_inside_and_refuses_every_escape() {
        let tmp = workspace();
        let ws = tmp.path().join("ws");
        assert_eq!(read_in_workspace(&ws, "notes/a.md", 100).unwrap(), b"hello");
        assert_eq!(
            read_in_workspace(&ws, "./notes//a.md", 100).unwrap(),
            b"hello"
        );
        for bad in [
            "../secret.txt",
            "notes/../../secret.txt",
            "/etc/passwd",
            "",
            "notes/..",
        ] {
            assert!(
                matches!(read_in_workspace(&ws, bad, 100), Err(FsError::Denied(_))),
                "{bad}"
            );
        }
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), ws.join("link")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), ws.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(ws.join("notes/a.md"), ws.join("inner")).unwrap();
        for link in ["link", "dirlink/secret.txt", "inner"] {
            assert!(
                matches!(read_in_workspace(&ws, link, 100), Err(FsError::Denied(_))),
                "{link}"
            );
        }
        assert!(matches!(
            read_in_workspace(&ws, "missing.md", 100),
            Err(FsError::NotFound)
        ));
        assert!(matches!(
            read_in_workspace(&ws, "notes/a.md", 3),
            Err(FsError::TooLarge)
        ));
        assert!(matches!(
            read_in_workspace(&ws, "notes", 100),
            Err(FsError::Denied(_))
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_hanging() {
        let tmp = workspace();
        let ws = tmp.path().join("ws");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            ws.join("pipe"),
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            read_in_workspace(&ws, "pipe", 100),
            Err(FsError::Denied(_))
        ));
    }
}
