//! `fs_read`: files under the workspace and nowhere else.
//!
//! The path must be relative, without `..` or empty components. It is then opened one
//! component at a time with `openat(O_NOFOLLOW)` from a descriptor of the workspace itself,
//! so no symlink is followed anywhere on the way (not even one pointing inside the
//! workspace) and a directory swapped for a link between a check and the open cannot lead
//! out: there is no check-then-open gap to race.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

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

fn open_at(dir: Option<&OwnedFd>, name: &Path, directory: bool) -> std::io::Result<OwnedFd> {
    let c = CString::new(name.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // O_NONBLOCK: opening a FIFO must not hang the tool; the type is checked after.
    let mut flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    if directory {
        flags |= libc::O_DIRECTORY;
    }
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c` is a valid NUL-terminated string and `dirfd` is an open descriptor (or
    // AT_FDCWD); the returned descriptor is owned by the OwnedFd below and nothing else.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `name` in `dir` is a symbolic link (without following it).
fn is_symlink_at(dir: &OwnedFd, name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `c` is NUL-terminated, `dir` is open, `stat` points to writable memory.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    // SAFETY: rc == 0, so fstatat filled the struct.
    rc == 0 && (unsafe { stat.assume_init() }.st_mode & libc::S_IFMT) == libc::S_IFLNK
}

fn denied_or(path: &str, dir: &OwnedFd, name: &str, e: std::io::Error) -> FsError {
    if is_symlink_at(dir, name) {
        return FsError::Denied(format!(
            "'{path}' goes through a symbolic link; fs_read does not follow links"
        ));
    }
    match e.raw_os_error() {
        // A symlink where a file or directory was expected (O_NOFOLLOW / O_DIRECTORY).
        Some(libc::ELOOP) | Some(libc::EMLINK) => FsError::Denied(format!(
            "'{path}' goes through a symbolic link; fs_read does not follow links"
        )),
        Some(libc::ENOTDIR) => FsError::NotFound,
        _ if e.kind() == std::io::ErrorKind::NotFound => FsError::NotFound,
        _ => FsError::Io(e),
    }
}

/// Read `path` (relative to `workspace`), at most `max` bytes.
pub fn read_in_workspace(workspace: &Path, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
    let parts = components(path)?;
    // The workspace itself may be reached through links (a user's choice); below it, none.
    let root = open_at(None, workspace, true).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            FsError::NotFound
        } else {
            FsError::Io(e)
        }
    });
    let root = match root {
        Ok(root) => root,
        // O_NOFOLLOW refuses a workspace that is itself a link; follow that one on purpose.
        Err(_) => {
            let canonical = workspace.canonicalize().map_err(|_| FsError::NotFound)?;
            open_at(None, &canonical, true).map_err(FsError::Io)?
        }
    };
    let (last, dirs) = parts.split_last().ok_or(FsError::NotFound)?;
    let mut dir = root;
    for name in dirs {
        dir = open_at(Some(&dir), Path::new(name), true)
            .map_err(|e| denied_or(path, &dir, name, e))?;
    }
    let fd =
        open_at(Some(&dir), Path::new(last), false).map_err(|e| denied_or(path, &dir, last, e))?;
    let file = File::from(fd);
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

#[cfg(test)]
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
        let fifo = CString::new(ws.join("pipe").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_in_workspace(&ws, "pipe", 100),
            Err(FsError::Denied(_))
        ));
    }
}
