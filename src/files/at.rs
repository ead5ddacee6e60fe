//! File operations relative to a directory descriptor (`openat`, `renameat`, …) that never
//! follow a symbolic link: neither in the directory itself (opened with `O_NOFOLLOW`) nor in
//! the name inside it. The fix engine reads, writes and renames through these, so a link
//! swapped in between a check and the act makes the act fail instead of reaching the link's
//! target: there is no check followed by an open that follows links.
//!
//! This is the Unix implementation; `at_windows.rs` has the same functions for Windows.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

/// An open directory; every name below is looked up in it, without following links.
pub struct Dir {
    /// The directory's descriptor (a File, for `metadata` and `set_permissions`).
    fd: File,
    path: PathBuf,
}

/// Whether an open with `O_NOFOLLOW` failed because the name is a link (`ELOOP`; FreeBSD
/// answers `EMLINK`).
pub fn is_link_error(e: &io::Error) -> bool {
    let errno = e.raw_os_error().map(Errno::from_raw_os_error);
    matches!(errno, Some(Errno::LOOP) | Some(Errno::MLINK))
}

impl Dir {
    /// Open `path` as a directory; a link there fails with `ELOOP`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => Ok(Self {
                fd: File::from(fd),
                path: path.to_path_buf(),
            }),
            // Some systems answer ENOTDIR for a link opened with O_DIRECTORY | O_NOFOLLOW.
            Err(Errno::NOTDIR)
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
            {
                Err(Errno::LOOP.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Open `path` as a directory, following links on the way as any path does; the names
    /// below it are still looked up without following links.
    pub fn open_following(path: &Path) -> io::Result<Self> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            fd: File::from(fd),
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
    fn open_file(&self, name: &OsStr, flags: OFlags, mode: u32) -> io::Result<File> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Open `name` to read it or change its mode: never a link, and `O_NONBLOCK` so a FIFO
    /// put in place of a file cannot block the open.
    pub fn open_read(&self, name: &OsStr) -> io::Result<File> {
        self.open_file(name, OFlags::RDONLY | OFlags::NONBLOCK, 0)
    }

    /// Create `name` for writing with `mode` (before the umask); fails when anything, a link
    /// too, has that name (`O_EXCL`).
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        self.open_file(name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, mode)
    }

    /// Open `name` for writing, created with `mode` when missing; never a link.
    pub fn open_or_create(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        self.open_file(name, OFlags::WRONLY | OFlags::CREATE, mode)
    }

    /// Whether `name` exists (a link counts; it is not followed).
    pub fn exists(&self, name: &OsStr) -> io::Result<bool> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `renameat` within this directory: moves the name, never a link's target.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        self.rename_to(from, self, to)
    }

    pub fn rename_to(&self, from: &OsStr, dir: &Dir, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &dir.fd, to)?)
    }

    /// Rename, failing with `EEXIST` when `to` exists instead of replacing it.
    pub fn rename_no_replace(&self, from: &OsStr, dir: &Dir, to: &OsStr) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::RenameFlags;
            match rustix::fs::renameat_with(&self.fd, from, &dir.fd, to, RenameFlags::NOREPLACE) {
                // A filesystem without RENAME_NOREPLACE: check, then rename, as elsewhere.
                Err(Errno::INVAL) => {}
                other => return Ok(other?),
            }
        }
        if dir.exists(to)? {
            return Err(Errno::EXIST.into());
        }
        self.rename_to(from, dir, to)
    }

    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// `mkdirat`, then the mode set exactly through the new directory's descriptor (the
    /// umask cannot change it).
    pub fn create_dir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode))?;
        let created = self.open_file(name, OFlags::RDONLY | OFlags::DIRECTORY, 0)?;
        created.set_permissions(std::fs::Permissions::from_mode(mode))
    }
}
