//! Unix: every name opened with `openat(O_NOFOLLOW)` from its directory's descriptor.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

pub type Dir = OwnedFd;

fn open_at(dir: Option<&OwnedFd>, name: &Path, directory: bool) -> io::Result<OwnedFd> {
    // O_NONBLOCK: opening a FIFO must not hang the tool; the type is checked after.
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    if directory {
        flags |= OFlags::DIRECTORY;
    }
    let dirfd = dir.map_or(rustix::fs::CWD, |d| d.as_fd());
    Ok(rustix::fs::openat(dirfd, name, flags, Mode::empty())?)
}

/// The workspace itself; a link there fails.
pub fn open_dir_path(path: &Path) -> io::Result<Dir> {
    open_at(None, path, true)
}

pub fn open_dir(dir: &Dir, name: &str) -> io::Result<Dir> {
    open_at(Some(dir), Path::new(name), true)
}

pub fn open_file(dir: &Dir, name: &str) -> io::Result<File> {
    open_at(Some(dir), Path::new(name), false).map(File::from)
}

/// Whether `name` in `dir` is a symbolic link (without following it).
pub fn is_symlink_at(dir: &Dir, name: &str) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
}

/// A symlink where a file or directory was expected (`O_NOFOLLOW`; FreeBSD says `EMLINK`).
pub fn is_link_error(e: &io::Error) -> bool {
    let errno = e.raw_os_error().map(Errno::from_raw_os_error);
    matches!(errno, Some(Errno::LOOP) | Some(Errno::MLINK))
}

/// A file where a directory was expected (`O_DIRECTORY`).
pub fn is_not_dir(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
}
