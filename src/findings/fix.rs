//! The fix engine: plans of small steps, shown as a dry-run diff, applied with backups,
//! recorded in an undo journal, and reverted exactly.
//!
//! Safety rules: symlinks are never followed (refused and reported instead): every read,
//! write, rename and chmod goes through a descriptor opened with `O_NOFOLLOW` in a directory
//! opened with `O_NOFOLLOW` (see `at.rs`), never a check followed by an open; config edits go
//! through `toml_edit`, so comments, order and keys the fix does not own survive; every
//! config write leaves a backup ring (`config.toml.bak.1` .. `.5`); writes are atomic
//! (temporary file and rename); a step that is already done is a no-op, so fixing twice
//! changes nothing.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::files::at::{self, Dir};
use crate::platform;

mod journal;

use journal::{JournalLock, journal_append};
pub use journal::{journal, undo};

/// How many config backups are kept.
pub const BACKUPS: usize = 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FixError {
    #[error(
        "{0} is a symbolic link; fixes never follow links. Check where it points and fix it by hand"
    )]
    Symlink(String),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path} is not valid TOML, so it cannot be edited safely: {reason}")]
    BadConfig { path: String, reason: String },
    #[error(
        "{path} changed since the fix was applied, and undo would overwrite that change; restore it by hand from {path}.bak.1 to .bak.5"
    )]
    Conflict { path: String },
    #[error("{0}")]
    Refused(String),
    #[error("no applied fix {0} in the journal")]
    NotInJournal(String),
    #[error("no applied fix to undo")]
    NothingToUndo,
    #[error(
        "the fix journal {0} is not safe to act on (a link, not yours, or writable by others); inspect and remove it"
    )]
    UnsafeJournal(String),
    /// A fix failed part-way and putting back its earlier steps failed too: the fix is half
    /// applied, and the user must know which steps to put back by hand.
    #[error(
        "{cause}; putting back the steps already done failed too, so the fix is half applied: {}. Restore these by hand (config backups are FILE.bak.1 to .bak.5)",
        .failures.join("; ")
    )]
    RevertFailed {
        cause: Box<FixError>,
        failures: Vec<String>,
    },
}

fn io_error(path: &Path, e: std::io::Error) -> FixError {
    FixError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// One change. Steps are data so they can be shown before they run and undone after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Step {
    /// chmod, without following symlinks.
    #[serde(rename_all = "camelCase")]
    SetMode { path: PathBuf, mode: u32 },
    /// Set `key` (dotted path) in a TOML file, creating tables as needed.
    #[serde(rename_all = "camelCase")]
    SetConfig {
        file: PathBuf,
        key: Vec<String>,
        #[schemars(with = "serde_json::Value")]
        value: toml::Value,
    },
    /// Append a table to the array of tables at `key` (e.g. a suppression).
    #[serde(rename_all = "camelCase")]
    AppendConfig {
        file: PathBuf,
        key: Vec<String>,
        #[schemars(with = "serde_json::Value")]
        table: toml::Table,
    },
    /// Comment out lines `first..=last` (1-based) of a TOML file, every secret in them
    /// replaced by `<redacted>` and `note` appended. Refused when those lines no longer hash
    /// to `sha256` (the file changed since the audit). Keeps the number of lines, so other
    /// plans made from the same audit still find their lines.
    #[serde(rename_all = "camelCase")]
    CommentOut {
        file: PathBuf,
        first: usize,
        last: usize,
        sha256: String,
        note: String,
    },
    #[serde(rename_all = "camelCase")]
    CreateDir { path: PathBuf, mode: u32 },
    #[serde(rename_all = "camelCase")]
    MoveFile { from: PathBuf, to: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: String,
    pub check_id: String,
    pub description: String,
    pub steps: Vec<Step>,
}

/// What undo needs to put one step back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum UndoStep {
    #[serde(rename_all = "camelCase")]
    RestoreMode {
        path: PathBuf,
        mode: u32,
        /// The mode the fix set; undo refuses if it changed since.
        #[serde(default)]
        applied: Option<u32>,
    },
    /// Put `before` back, provided the file still holds `after`.
    #[serde(rename_all = "camelCase")]
    RestoreFile {
        path: PathBuf,
        before: String,
        after: String,
    },
    #[serde(rename_all = "camelCase")]
    RemoveDir { path: PathBuf },
    #[serde(rename_all = "camelCase")]
    MoveBack { from: PathBuf, to: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Increasing number, unique within the journal.
    pub seq: u64,
    pub fix_id: String,
    pub check_id: String,
    pub description: String,
    pub applied_at_ms: u64,
    pub undo: Vec<UndoStep>,
    #[serde(default)]
    pub undone: bool,
}

/// The result of applying a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub fix_id: String,
    /// False when everything was already as the plan wants it.
    pub changed: bool,
    /// The journal entry to name for `undo`, when something changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_seq: Option<u64>,
    pub diff: String,
}

/// The error for a no-follow open: a link there is refused by name.
fn open_error(path: &Path, e: std::io::Error) -> FixError {
    if at::is_link_error(&e) {
        FixError::Symlink(path.display().to_string())
    } else {
        io_error(path, e)
    }
}

/// A file named through its parent directory's descriptor: every read, backup, write and
/// chmod of it happens in that one directory, and no link is followed on the way (a linked
/// parent directory, say `state -> /etc`, is refused too).
struct Target {
    dir: Dir,
    name: OsString,
    path: PathBuf,
}

impl Target {
    fn open(path: &Path) -> Result<Self, FixError> {
        let (dir, name) = Dir::parent_of(path)
            .map_err(|e| open_error(path.parent().unwrap_or(Path::new(".")), e))?;
        Ok(Self {
            dir,
            name,
            path: path.to_path_buf(),
        })
    }

    fn sibling(&self, suffix: &str) -> OsString {
        let mut name = self.name.clone();
        name.push(suffix);
        name
    }

    /// The file, opened without following a link, and its metadata; None when missing.
    fn open_existing(&self) -> Result<Option<(fs::File, fs::Metadata)>, FixError> {
        match self.dir.open_read(&self.name) {
            Ok(file) => {
                let meta = file.metadata().map_err(|e| io_error(&self.path, e))?;
                Ok(Some((file, meta)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(open_error(&self.path, e)),
        }
    }

    /// The text and mode of a config file a step edits ("" and None when it is missing).
    fn read(&self) -> Result<(String, Option<u32>), FixError> {
        let Some((mut file, meta)) = self.open_existing()? else {
            return Ok((String::new(), None));
        };
        if !meta.is_file() {
            return Err(FixError::Refused(format!(
                "{} is not a regular file",
                self.path.display()
            )));
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| io_error(&self.path, e))?;
        // Windows has no mode: the file is rewritten with the private one, which there
        // changes nothing (the file keeps its directory's ACL).
        let mode = platform::mode(&meta).unwrap_or(0o600);
        Ok((text, Some(mode)))
    }

    /// A backup beside the file, when it can be read (links are not).
    fn read_sibling(&self, suffix: &str) -> Option<String> {
        let mut file = self.dir.open_read(&self.sibling(suffix)).ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        Some(text)
    }

    fn write(&self, text: &str, mode: u32) -> Result<(), FixError> {
        write_at(&self.dir, &self.name, &self.path, text.as_bytes(), mode)
    }

    /// Shift `.bak.1..4` to `.bak.2..5` (dropping the oldest) and write `text`, the file as
    /// just read through the same descriptor, to `.bak.1`.
    fn rotate_backups(&self, text: &str) -> Result<(), FixError> {
        for n in (1..BACKUPS).rev() {
            let from = self.sibling(&format!(".bak.{n}"));
            match self
                .dir
                .rename(&from, &self.sibling(&format!(".bak.{}", n + 1)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&backup_path(&self.path, n), e)),
            }
        }
        write_at(
            &self.dir,
            &self.sibling(".bak.1"),
            &backup_path(&self.path, 1),
            text.as_bytes(),
            0o600,
        )
    }
}

/// Display only (the dry run): the mode of `path`, and whether it is a link.
fn mode_of(path: &Path) -> Result<Option<(u32, bool)>, FixError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some((
            platform::mode(&meta).unwrap_or(0),
            meta.file_type().is_symlink(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Read a config file that a step will edit; refuses links.
fn read_config(path: &Path) -> Result<String, FixError> {
    Target::open(path)?.read().map(|(text, _)| text)
}

fn edit_config(text: &str, path: &Path, step: &Step) -> Result<String, FixError> {
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| FixError::BadConfig {
                path: path.display().to_string(),
                reason: e.message().to_string(),
            })?;
    let bad = |reason: String| FixError::BadConfig {
        path: path.display().to_string(),
        reason,
    };
    match step {
        Step::SetConfig { key, value, .. } => {
            let (last, parents) = key.split_last().ok_or_else(|| bad("empty key".into()))?;
            let table = table_at(doc.as_table_mut(), parents).map_err(bad)?;
            let new_value = to_edit_value(value).map_err(bad)?;
            match table.get_mut(last) {
                // Keep the key's decor (comments, spacing) and swap only the value.
                Some(toml_edit::Item::Value(existing)) => {
                    let decor = existing.decor().clone();
                    *existing = new_value;
                    *existing.decor_mut() = decor;
                }
                _ => {
                    table.insert(last, toml_edit::Item::Value(new_value));
                }
            }
        }
        Step::AppendConfig { key, table, .. } => {
            // Appended as text at the end: every byte before it stays as it was, and no
            // empty parent headers appear. The result is parsed again to prove it valid.
            let mut entry = String::new();
            let header = key
                .iter()
                .map(|k| toml_edit::Key::new(k.as_str()).display_repr().into_owned())
                .collect::<Vec<_>>()
                .join(".");
            entry.push_str(&format!("[[{header}]]\n"));
            for (k, v) in table {
                let k = toml_edit::Key::new(k.as_str()).display_repr().into_owned();
                entry.push_str(&format!("{k} = {}\n", to_edit_value(v).map_err(bad)?));
            }
            let mut result = text.to_string();
            if !result.is_empty() && !result.ends_with('\n') {
                result.push('\n');
            }
            if !result.is_empty() {
                result.push('\n');
            }
            result.push_str(&entry);
            result.parse::<toml_edit::DocumentMut>().map_err(|e| {
                bad(format!(
                    "{} cannot take another entry: {}",
                    key.join("."),
                    e.message()
                ))
            })?;
            return Ok(result);
        }
        Step::CommentOut {
            first,
            last,
            sha256,
            note,
            ..
        } => return comment_out(text, *first, *last, sha256, note).map_err(bad),
        _ => return Ok(text.to_string()),
    }
    Ok(doc.to_string())
}

/// The sha256, in hex, of lines `first..=last` (1-based, with their line ends) of `text`.
pub fn lines_sha256(text: &str, first: usize, last: usize) -> Option<String> {
    use sha2::{Digest, Sha256};
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if first == 0 || last < first || last > lines.len() {
        return None;
    }
    let digest = Sha256::digest(lines[first - 1..last].concat().as_bytes());
    Some(hex::encode(digest))
}

fn comment_out(
    text: &str,
    first: usize,
    last: usize,
    sha256: &str,
    note: &str,
) -> Result<String, String> {
    if lines_sha256(text, first, last).as_deref() != Some(sha256) {
        return Err(format!(
            "line {first} changed since the audit; run the audit again"
        ));
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut block = lines[first - 1..last].concat();
    // Newest range first so earlier ranges stay valid; a secret spanning lines (a PEM
    // block) keeps its line ends, so the file keeps its number of lines.
    for m in crate::secrets::find(&block).into_iter().rev() {
        let ends = "\n".repeat(block[m.range.clone()].matches('\n').count());
        block.replace_range(m.range, &format!("{}{ends}", crate::config::REDACTED));
    }
    let mut out = lines[..first - 1].concat();
    let count = block.split_inclusive('\n').count();
    for (n, line) in block.split_inclusive('\n').enumerate() {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let trimmed = body.trim_start();
        let indent = &body[..body.len() - trimmed.len()];
        if trimmed.starts_with('#') || trimmed.is_empty() {
            out.push_str(body);
        } else {
            out.push_str(&format!("{indent}# {trimmed}"));
        }
        if n + 1 == count {
            out.push_str(&format!("  # {note}"));
        }
        out.push_str(end);
    }
    out.push_str(&lines[last..].concat());
    out.parse::<toml_edit::DocumentMut>().map_err(|e| {
        format!(
            "commenting out line {first} would break the file: {}",
            e.message()
        )
    })?;
    Ok(out)
}

/// The table at `path`, created (as a standard table) where missing.
fn table_at<'a>(
    mut table: &'a mut toml_edit::Table,
    path: &[String],
) -> Result<&'a mut toml_edit::Table, String> {
    for segment in path {
        let item = table
            .entry(segment)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        if let toml_edit::Item::Value(toml_edit::Value::InlineTable(_)) = item {
            // Inline tables become standard ones so a new key can be added to them.
            let inline = std::mem::take(item).into_value().ok();
            if let Some(toml_edit::Value::InlineTable(inline)) = inline {
                *item = toml_edit::Item::Table(inline.into_table());
            }
        }
        table = item
            .as_table_mut()
            .ok_or_else(|| format!("{segment} is not a table"))?;
    }
    Ok(table)
}

fn to_edit_value(value: &toml::Value) -> Result<toml_edit::Value, String> {
    value
        .to_string()
        .parse::<toml_edit::Value>()
        .map_err(|e| format!("cannot write {value}: {e}"))
}

impl Plan {
    /// The change as a reader sees it. Never contains secret values: lines that assign a
    /// literal to a secret-looking key are shown redacted.
    pub fn dry_run(&self) -> String {
        let mut out = String::new();
        // Config steps on one file are shown as one diff of their combined effect.
        let mut files: Vec<&PathBuf> = Vec::new();
        for step in &self.steps {
            match step {
                Step::SetMode { path, mode } => {
                    let current = match mode_of(path) {
                        Ok(Some((_, true))) => "symlink (will be refused)".to_string(),
                        Ok(Some((m, false))) => format!("{m:04o}"),
                        Ok(None) => "missing".to_string(),
                        Err(e) => e.to_string(),
                    };
                    out.push_str(&format!(
                        "chmod {mode:04o} {} (now {current})\n",
                        path.display()
                    ));
                }
                Step::SetConfig { file, .. }
                | Step::AppendConfig { file, .. }
                | Step::CommentOut { file, .. } => {
                    if !files.contains(&file) {
                        files.push(file);
                    }
                }
                Step::CreateDir { path, mode } => {
                    out.push_str(&format!("mkdir -m {mode:04o} {}\n", path.display()));
                }
                Step::MoveFile { from, to } => {
                    out.push_str(&format!("mv {} {}\n", from.display(), to.display()));
                }
            }
        }
        for file in files {
            let diff = read_config(file).and_then(|before| {
                let after = self.config_result(file, &before)?;
                Ok(unified_diff(file, &before, &after))
            });
            match diff {
                Ok(diff) => out.push_str(&diff),
                Err(e) => out.push_str(&format!("cannot preview {}: {e}\n", file.display())),
            }
        }
        out
    }

    /// The text `file` will hold after every config step of this plan on it.
    fn config_result(&self, file: &Path, before: &str) -> Result<String, FixError> {
        let mut text = before.to_string();
        for step in &self.steps {
            if let Step::SetConfig { file: f, .. }
            | Step::AppendConfig { file: f, .. }
            | Step::CommentOut { file: f, .. } = step
                && f == file
            {
                text = edit_config(&text, file, step)?;
            }
        }
        Ok(text)
    }

    /// Apply every step and record how to undo them. Steps already done are skipped; when
    /// nothing changes, no journal entry is written. Fixes run one at a time (a lock in the
    /// journal dir), and a fix that cannot be journaled is reverted: no change without undo.
    pub fn apply(&self, journal_dir: &Path) -> Result<Applied, FixError> {
        let lock = JournalLock::acquire(journal_dir)?;
        let diff = self.dry_run();
        let mut undo = Vec::new();
        let result = self.apply_steps(&mut undo).and_then(|()| {
            if undo.is_empty() {
                Ok(None)
            } else {
                journal_append(&lock.dir, self, undo.clone()).map(Some)
            }
        });
        let seq = match result {
            Ok(seq) => seq,
            Err(e) => {
                // Put back what this plan already changed, newest first, then report; a
                // step that cannot be put back is part of the report, never dropped.
                let failures: Vec<String> = undo
                    .iter()
                    .rev()
                    .filter_map(|step| revert(step).err().map(|f| f.to_string()))
                    .collect();
                if failures.is_empty() {
                    return Err(e);
                }
                return Err(FixError::RevertFailed {
                    cause: Box::new(e),
                    failures,
                });
            }
        };
        Ok(Applied {
            fix_id: self.id.clone(),
            changed: seq.is_some(),
            journal_seq: seq,
            diff,
        })
    }

    fn apply_steps(&self, undo: &mut Vec<UndoStep>) -> Result<(), FixError> {
        let mut edited: Vec<&PathBuf> = Vec::new();
        for step in &self.steps {
            match step {
                Step::SetMode { path, mode } => {
                    // The mode is read and changed through one descriptor: what is changed is
                    // what was checked.
                    let Some((file, meta)) = Target::open(path)?.open_existing()? else {
                        return Err(FixError::Refused(format!(
                            "{} does not exist",
                            path.display()
                        )));
                    };
                    let current = current_mode(path, &meta)?;
                    if current != *mode {
                        platform::set_mode(&file, *mode).map_err(|e| io_error(path, e))?;
                        undo.push(UndoStep::RestoreMode {
                            path: path.clone(),
                            mode: current,
                            applied: Some(*mode),
                        });
                    }
                }
                Step::SetConfig { file, .. }
                | Step::AppendConfig { file, .. }
                | Step::CommentOut { file, .. } => {
                    if edited.contains(&file) {
                        continue;
                    }
                    edited.push(file);
                    let target = Target::open(file)?;
                    let (before, mode) = target.read()?;
                    let after = self.config_result(file, &before)?;
                    if after == before {
                        continue;
                    }
                    if mode.is_some() {
                        target.rotate_backups(&before)?;
                    }
                    target.write(&after, mode.unwrap_or(0o600))?;
                    undo.push(UndoStep::RestoreFile {
                        path: file.clone(),
                        before,
                        after,
                    });
                }
                Step::CreateDir { path, mode } => {
                    let target = Target::open(path)?;
                    match target.dir.create_dir(&target.name, *mode) {
                        Ok(()) => undo.push(UndoStep::RemoveDir { path: path.clone() }),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io_error(path, e)),
                    }
                }
                Step::MoveFile { from, to } => {
                    let (source, dest) = (Target::open(from)?, Target::open(to)?);
                    let exists =
                        |t: &Target| t.dir.exists(&t.name).map_err(|e| io_error(&t.path, e));
                    if !exists(&source)? && exists(&dest)? {
                        continue;
                    }
                    move_no_replace(&source, &dest)?;
                    undo.push(UndoStep::MoveBack {
                        from: to.clone(),
                        to: from.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The mode a mode step reads; refused where files have none (Windows), so a journal written
/// on Unix is never replayed as if it applied.
fn current_mode(path: &Path, meta: &fs::Metadata) -> Result<u32, FixError> {
    platform::mode(meta).ok_or_else(|| {
        FixError::Refused(format!(
            "{} has no mode bits on this system; a mode change does not apply",
            path.display()
        ))
    })
}

/// Rename `from` to `to` within their directories' descriptors, never replacing `to`.
fn move_no_replace(from: &Target, to: &Target) -> Result<(), FixError> {
    match from.dir.rename_no_replace(&from.name, &to.dir, &to.name) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(FixError::Refused(format!(
            "{} already exists; not overwriting it",
            to.path.display()
        ))),
        Err(e) => Err(io_error(&from.path, e)),
    }
}

fn revert(step: &UndoStep) -> Result<(), FixError> {
    match step {
        UndoStep::RestoreMode {
            path,
            mode,
            applied,
        } => {
            let Some((file, meta)) = Target::open(path)?.open_existing()? else {
                return Err(FixError::Refused(format!(
                    "{} no longer exists",
                    path.display()
                )));
            };
            let current = current_mode(path, &meta)?;
            if applied.is_some_and(|set| set != current) {
                return Err(FixError::Refused(format!(
                    "{} changed mode since the fix (now {current:04o}); not changing it back",
                    path.display()
                )));
            }
            platform::set_mode(&file, *mode).map_err(|e| io_error(path, e))
        }
        UndoStep::RestoreFile {
            path,
            before,
            after,
        } => {
            let target = Target::open(path)?;
            let (current, mode) = target.read()?;
            if current != *after {
                return Err(FixError::Conflict {
                    path: path.display().to_string(),
                });
            }
            target.write(before, mode.unwrap_or(0o600))
        }
        UndoStep::RemoveDir { path } => {
            let target = Target::open(path)?;
            target
                .dir
                .remove_dir(&target.name)
                .map_err(|e| io_error(path, e))
        }
        UndoStep::MoveBack { from, to } => {
            move_no_replace(&Target::open(from)?, &Target::open(to)?).map_err(|e| match e {
                FixError::Refused(_) => {
                    FixError::Refused(format!("{} exists again; not overwriting it", to.display()))
                }
                other => other,
            })
        }
    }
}

/// Set one key in a config file the way fixes edit it (comments, layout and other keys
/// kept; the backup ring rotated; an atomic write; links refused), under the fix lock, but
/// without a journal entry: for settings a face changes on purpose, such as the provider
/// chain's order. Returns whether the file changed.
pub fn set_config_key(
    lock_dir: &Path,
    file: &Path,
    key: &[&str],
    value: toml::Value,
) -> Result<bool, FixError> {
    let _lock = JournalLock::acquire(lock_dir)?;
    let step = Step::SetConfig {
        file: file.to_path_buf(),
        key: key.iter().map(|k| k.to_string()).collect(),
        value,
    };
    let target = Target::open(file)?;
    let (before, mode) = target.read()?;
    let after = edit_config(&before, file, &step)?;
    if after == before {
        return Ok(false);
    }
    // When the newest backup differs from the file in this key alone, it already keeps
    // everything else: repeated edits of one key (a user pressing K/J) must not push the
    // older backups out of the ring.
    let newest = target.read_sibling(".bak.1");
    let same_but_key = newest
        .and_then(|text| edit_config(&text, file, &step).ok())
        .is_some_and(|text| text == after);
    if !same_but_key && mode.is_some() {
        target.rotate_backups(&before)?;
    }
    target.write(&after, mode.unwrap_or(0o600))?;
    Ok(true)
}

/// `config.toml.bak.N` beside `file`.
pub fn backup_path(file: &Path, n: usize) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bak.{n}"));
    file.with_file_name(name)
}

/// Write `bytes` to `name` in `dir` atomically, with exactly `mode`
/// ([`crate::files::write_atomic_at`]).
fn write_at(
    dir: &Dir,
    name: &OsStr,
    shown: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<(), FixError> {
    crate::files::write_atomic_at(dir, name, bytes, mode).map_err(|e| io_error(shown, e))
}

/// A unified diff, with literal secret values hidden.
pub fn unified_diff(file: &Path, before: &str, after: &str) -> String {
    // Quoted values of secret-named keys, then anything else the shared patterns find (an
    // unquoted key in a comment, say).
    let before = crate::secrets::redact::redact(&crate::secrets::redact_assignments(before));
    let after = crate::secrets::redact::redact(&crate::secrets::redact_assignments(after));
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{} (now)", file.display()),
            &format!("{} (after fix)", file.display()),
        )
        .to_string()
}

#[cfg(all(test, unix))]
mod tests;
