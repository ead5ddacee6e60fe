//! File operations relative to a directory descriptor (`openat`, `renameat`, …) that never
//! follow a symbolic link: neither in the directory itself (opened with `O_NOFOLLOW`) nor in
//! the name inside it. The fix engine reads, writes and renames through these, so a link
//! swapped in between a check and the act makes the act fail instead of reaching the link's
//! target: there is no check followed by an open that follows links.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// An open directory; every name below is looked up in it, without following links.
pub struct Dir {
    /// The directory's descriptor (a File, for `metadata` and `set_permissions`).
    fd: File,
    path: PathBuf,
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether an open with `O_NOFOLLOW` failed because the name is a link (`ELOOP`; FreeBSD
/// answers `EMLINK`).
pub fn is_link_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::EMLINK))
}

impl Dir {
    /// Open `path` as a directory; a link there fails with `ELOOP`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let c = c_name(path.as_os_str())?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // Some systems answer ENOTDIR for a link opened with O_DIRECTORY | O_NOFOLLOW.
            if e.raw_os_error() == Some(libc::ENOTDIR)
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            return Err(e);
        }
        Ok(Self {
            // SAFETY: `fd` was just opened and is owned by nothing else.
            fd: unsafe { File::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// The directory holding `path` (opened without following a link there), and the name
    /// of `path` in it.
    pub fn parent_of(path: &Path) -> io::Result<(Self, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?
            .to_os_string();
        let parent = path.parent().unwrap_or(Path::new("."));
        Ok((Self::open(parent)?, name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own metadata, through its descriptor.
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.fd.metadata()
    }

    /// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`.
    pub fn open_file(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let c = c_name(name)?;
        // SAFETY: a valid directory descriptor and NUL-terminated name; the mode is passed as
        // the variadic argument openat expects.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Open `name` to read it or change its mode: never a link, and `O_NONBLOCK` so a FIFO
    /// put in place of a file cannot block the open.
    pub fn open_read(&self, name: &OsStr) -> io::Result<File> {
        self.open_file(name, libc::O_RDONLY | libc::O_NONBLOCK, 0)
    }

    /// Whether `name` exists (a link counts; it is not followed).
    pub fn exists(&self, name: &OsStr) -> io::Result<bool> {
        let c = c_name(name)?;
        // SAFETY: an all-zero stat is a valid value for fstatat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor, name and out-pointer.
        let rc = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match check(rc) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `renameat` within this directory: moves the name, never a link's target.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        self.rename_to(from, self, to)
    }

    pub fn rename_to(&self, from: &OsStr, dir: &Dir, to: &OsStr) -> io::Result<()> {
        let (f, t) = (c_name(from)?, c_name(to)?);
        // SAFETY: valid descriptors and NUL-terminated names.
        check(unsafe {
            libc::renameat(
                self.fd.as_raw_fd(),
                f.as_ptr(),
                dir.fd.as_raw_fd(),
                t.as_ptr(),
            )
        })
    }

    /// Rename, failing with `EEXIST` when `to` exists instead of replacing it.
    pub fn rename_no_replace(&self, from: &OsStr, dir: &Dir, to: &OsStr) -> io::Result<()> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let (f, t) = (c_name(from)?, c_name(to)?);
            // SAFETY: valid descriptors and NUL-terminated names.
            let rc = unsafe {
                libc::renameat2(
                    self.fd.as_raw_fd(),
                    f.as_ptr(),
                    dir.fd.as_raw_fd(),
                    t.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            match check(rc) {
                // A filesystem without RENAME_NOREPLACE: check, then rename, as elsewhere.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                other => return other,
            }
        }
        if dir.exists(to)? {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.rename_to(from, dir, to)
    }

    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: valid descriptor and NUL-terminated name.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
    }

    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: valid descriptor and NUL-terminated name.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) })
    }

    /// `mkdirat`, then the mode set exactly through the new directory's descriptor (the
    /// umask cannot change it).
    pub fn create_dir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: valid descriptor and NUL-terminated name.
        check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })?;
        let created = self.open_file(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        created.set_permissions(std::fs::Permissions::from_mode(mode))
    }
}
