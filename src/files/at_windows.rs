//! Windows: std has no `openat`, so a [`Dir`] is the directory held open without
//! `FILE_SHARE_DELETE` (while held it cannot be renamed, removed or replaced by a link), and
//! names in it are opened by path with `FILE_FLAG_OPEN_REPARSE_POINT`, which opens a
//! symbolic link or junction itself rather than its target; such a handle is then refused.
//! Modes are not set (files inherit their directory's ACL), and a rename that must not
//! replace checks first, then renames.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FILE_SHARE_READ: u32 = 0x1;
const FILE_SHARE_WRITE: u32 = 0x2;
const FILE_SHARE_DELETE: u32 = 0x4;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

/// An open directory; every name below it is opened without following links.
pub struct Dir {
    handle: File,
    path: PathBuf,
}

/// The error for a name that is a link: no open fails for that by itself here.
#[derive(Debug)]
struct IsLink;

impl std::fmt::Display for IsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("is a symbolic link or junction; not followed")
    }
}

impl std::error::Error for IsLink {}

/// Whether an open failed because the name is a link.
pub fn is_link_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<IsLink>())
}

/// `options` opening the name itself, never a link's target; a link is then refused.
fn open_no_follow(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let file = options
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    if file.metadata()?.file_type().is_symlink() {
        return Err(io::Error::other(IsLink));
    }
    Ok(file)
}

fn not_a_dir() -> io::Error {
    io::Error::new(io::ErrorKind::NotADirectory, "not a directory")
}

fn dot(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

impl Dir {
    /// Open `path` as a directory, held so it cannot be moved; a link there is refused.
    pub fn open(path: &Path) -> io::Result<Self> {
        let path = dot(path);
        let handle = open_no_follow(
            OpenOptions::new()
                .read(true)
                .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE),
            path,
        )?;
        if !handle.metadata()?.is_dir() {
            return Err(not_a_dir());
        }
        Ok(Self {
            handle,
            path: path.to_path_buf(),
        })
    }

    /// Open `path` as a directory, following links on the way as any path does; the names
    /// below it are still opened without following links.
    pub fn open_following(path: &Path) -> io::Result<Self> {
        let path = dot(path);
        let handle = OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)?;
        if !handle.metadata()?.is_dir() {
            return Err(not_a_dir());
        }
        Ok(Self {
            handle,
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

    /// The directory's own metadata, through its handle.
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.handle.metadata()
    }

    /// Open `name` to read it; never a link.
    pub fn open_read(&self, name: &OsStr) -> io::Result<File> {
        open_no_follow(
            OpenOptions::new()
                .read(true)
                .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE),
            &self.path.join(name),
        )
    }

    /// Create `name` for writing; fails when anything (a link too) has that name.
    pub fn create_new(&self, name: &OsStr, _mode: u32) -> io::Result<File> {
        open_no_follow(
            OpenOptions::new().write(true).create_new(true),
            &self.path.join(name),
        )
    }

    /// Open `name` for writing, creating it when missing; never a link.
    pub fn open_or_create(&self, name: &OsStr, _mode: u32) -> io::Result<File> {
        open_no_follow(
            OpenOptions::new().write(true).create(true).truncate(false),
            &self.path.join(name),
        )
    }

    /// Whether `name` exists (a link counts; it is not followed).
    pub fn exists(&self, name: &OsStr) -> io::Result<bool> {
        match std::fs::symlink_metadata(self.path.join(name)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Rename within this directory: a link is moved as a name, never its target.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        self.rename_to(from, self, to)
    }

    pub fn rename_to(&self, from: &OsStr, dir: &Dir, to: &OsStr) -> io::Result<()> {
        std::fs::rename(self.path.join(from), dir.path.join(to))
    }

    /// Rename, failing with `AlreadyExists` when `to` exists: checked, then renamed (std's
    /// rename always replaces).
    pub fn rename_no_replace(&self, from: &OsStr, dir: &Dir, to: &OsStr) -> io::Result<()> {
        if dir.exists(to)? {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.rename_to(from, dir, to)
    }

    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        std::fs::remove_dir(self.path.join(name))
    }

    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }

    /// Create the directory `name` (it inherits this directory's ACL; there is no mode).
    pub fn create_dir(&self, name: &OsStr, _mode: u32) -> io::Result<()> {
        std::fs::create_dir(self.path.join(name))
    }
}
