//! The undo journal: its trusted directory and lock, entries read and appended, undo.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{FixError, JournalEntry, Plan, UndoStep, io_error, open_error, revert, write_at};
use crate::files::at::{self, Dir};
use crate::platform;

const JOURNAL: &str = "journal.jsonl";

fn journal_file(dir: &Path) -> PathBuf {
    dir.join(JOURNAL)
}

/// A journal path is trusted only when it is not a link (it was opened with `O_NOFOLLOW`),
/// belongs to this user and no one else can write it: undo acts on whatever paths the
/// journal names. `meta` comes from the open descriptor, so what is checked is what is read.
fn check_trusted(path: &Path, meta: &fs::Metadata) -> Result<(), FixError> {
    if !platform::owned_by_me_and_private(meta) {
        return Err(FixError::UnsafeJournal(path.display().to_string()));
    }
    Ok(())
}

/// The journal dir, opened without following a link and trusted; created (0700, with its
/// parents) when `create`, else None when it does not exist.
fn open_journal_dir(dir: &Path, create: bool) -> Result<Option<Dir>, FixError> {
    if create {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::files::create_private_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        let (parent, name) = Dir::parent_of(dir).map_err(|e| io_error(dir, e))?;
        match parent.create_dir(&name, 0o700) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(dir, e)),
        }
    }
    let opened = match Dir::open(dir) {
        Ok(opened) => opened,
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if at::is_link_error(&e) => {
            return Err(FixError::UnsafeJournal(dir.display().to_string()));
        }
        Err(e) => return Err(io_error(dir, e)),
    };
    check_trusted(dir, &opened.metadata().map_err(|e| io_error(dir, e))?)?;
    Ok(Some(opened))
}

/// Held while a fix or an undo runs, so two runs never interleave their writes. Holds the
/// journal dir's descriptor, through which the journal is read and written.
pub(super) struct JournalLock {
    pub(super) dir: Dir,
    _file: fs::File,
}

impl JournalLock {
    pub(super) fn acquire(dir: &Path) -> Result<Self, FixError> {
        let opened = open_journal_dir(dir, true)?
            .ok_or_else(|| io_error(dir, std::io::ErrorKind::NotFound.into()))?;
        let path = dir.join(".lock");
        let file = opened
            .open_or_create(OsStr::new(".lock"), 0o600)
            .map_err(|e| open_error(&path, e))?;
        // Held for the life of `file`, which the lock keeps (flock on Unix, LockFileEx on
        // Windows).
        file.lock().map_err(|e| io_error(&path, e))?;
        Ok(Self {
            dir: opened,
            _file: file,
        })
    }
}

/// Every entry in the journal, oldest first.
pub fn journal(dir: &Path) -> Result<Vec<JournalEntry>, FixError> {
    match open_journal_dir(dir, false)? {
        Some(opened) => read_journal(&opened),
        None => Ok(Vec::new()),
    }
}

fn read_journal(dir: &Dir) -> Result<Vec<JournalEntry>, FixError> {
    let path = journal_file(dir.path());
    let mut file = match dir.open_read(OsStr::new(JOURNAL)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if at::is_link_error(&e) => {
            return Err(FixError::UnsafeJournal(path.display().to_string()));
        }
        Err(e) => return Err(io_error(&path, e)),
    };
    let meta = file.metadata().map_err(|e| io_error(&path, e))?;
    check_trusted(&path, &meta)?;
    if !meta.is_file() {
        return Err(FixError::UnsafeJournal(path.display().to_string()));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| io_error(&path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).map_err(|e| FixError::Io {
                path: path.display().to_string(),
                reason: format!("journal entry unreadable: {e}"),
            })
        })
        .collect()
}

fn journal_write(dir: &Dir, entries: &[JournalEntry]) -> Result<(), FixError> {
    let path = journal_file(dir.path());
    let mut text = String::new();
    for entry in entries {
        let line = serde_json::to_string(entry).map_err(|e| FixError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    write_at(dir, OsStr::new(JOURNAL), &path, text.as_bytes(), 0o600)
}

pub(super) fn journal_append(dir: &Dir, plan: &Plan, undo: Vec<UndoStep>) -> Result<u64, FixError> {
    let mut entries = read_journal(dir)?;
    let seq = entries.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
    let applied_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    entries.push(JournalEntry {
        seq,
        fix_id: plan.id.clone(),
        check_id: plan.check_id.clone(),
        description: plan.description.clone(),
        applied_at_ms,
        undo,
        undone: false,
    });
    journal_write(dir, &entries)?;
    Ok(seq)
}

/// Undo the newest applied fix, or the one with journal number `seq`.
pub fn undo(dir: &Path, seq: Option<u64>) -> Result<JournalEntry, FixError> {
    let lock = JournalLock::acquire(dir)?;
    let mut entries = read_journal(&lock.dir)?;
    let index = match seq {
        Some(seq) => entries
            .iter()
            .position(|e| e.seq == seq && !e.undone)
            .ok_or_else(|| FixError::NotInJournal(seq.to_string()))?,
        None => entries
            .iter()
            .rposition(|e| !e.undone)
            .ok_or(FixError::NothingToUndo)?,
    };
    for step in entries[index].undo.iter().rev() {
        revert(step)?;
    }
    entries[index].undone = true;
    journal_write(&lock.dir, &entries)?;
    Ok(entries[index].clone())
}
