//! Windows: there is no `openat` in std, so each directory on the way is held open without
//! `FILE_SHARE_DELETE` (it cannot be renamed, removed or replaced by a link while held), and
//! the name below it is opened by path with `FILE_FLAG_OPEN_REPARSE_POINT`, which opens a
//! symbolic link or junction itself instead of its target; the handle's metadata then tells
//! a link apart and it is refused.

use std::fs::File;
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const FILE_SHARE_READ: u32 = 0x1;
const FILE_SHARE_WRITE: u32 = 0x2;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

/// A directory held open, with every directory above it up to the workspace.
pub struct Dir(Rc<Held>);

struct Held {
    path: PathBuf,
    _handle: File,
    _up: Option<Rc<Held>>,
}

/// Our own marker error for "this is a link", since no open fails for it by itself.
#[derive(Debug)]
struct IsLink;

impl std::fmt::Display for IsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a symbolic link or junction")
    }
}

impl std::error::Error for IsLink {}

#[derive(Debug)]
struct NotDir;

impl std::fmt::Display for NotDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a directory")
    }
}

impl std::error::Error for NotDir {}

/// Open `path` itself (never a link's target); `directory` says which kind it must be.
fn open_no_follow(path: &Path, directory: bool) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other(IsLink));
    }
    if directory && !meta.is_dir() {
        return Err(io::Error::other(NotDir));
    }
    Ok(file)
}

/// The workspace itself; a link there fails.
pub fn open_dir_path(path: &Path) -> io::Result<Dir> {
    let handle = open_no_follow(path, true)?;
    Ok(Dir(Rc::new(Held {
        path: path.to_path_buf(),
        _handle: handle,
        _up: None,
    })))
}

pub fn open_dir(dir: &Dir, name: &str) -> io::Result<Dir> {
    let path = dir.0.path.join(name);
    let handle = open_no_follow(&path, true)?;
    Ok(Dir(Rc::new(Held {
        path,
        _handle: handle,
        _up: Some(Rc::clone(&dir.0)),
    })))
}

pub fn open_file(dir: &Dir, name: &str) -> io::Result<File> {
    open_no_follow(&dir.0.path.join(name), false)
}

/// Whether `name` in `dir` is a symbolic link or junction (without following it).
pub fn is_symlink_at(dir: &Dir, name: &str) -> bool {
    std::fs::symlink_metadata(dir.0.path.join(name)).is_ok_and(|m| m.file_type().is_symlink())
}

pub fn is_link_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<IsLink>())
}

pub fn is_not_dir(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotDir>())
}
