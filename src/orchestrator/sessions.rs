//! Sessions, persisted as append-only JSONL under `<state>/sessions/`: one line per event,
//! written whole with `O_APPEND`, so a crash loses at most the line being written, and a
//! torn last line is skipped when the file is read back.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::providers::{ChatMessage, Role};

/// One line of a session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Line {
    #[serde(rename_all = "camelCase")]
    Session {
        id: String,
        title: String,
        created_at: u64,
    },
    #[serde(rename_all = "camelCase")]
    Message {
        at: u64,
        #[serde(flatten)]
        message: ChatMessage,
    },
    /// A finished (or failed) turn: who answered, usage, telemetry, citations.
    #[serde(rename_all = "camelCase")]
    Turn { at: u64, record: Value },
    #[serde(rename_all = "camelCase")]
    Title { title: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub title: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub messages: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Session {
    pub lines: Vec<Line>,
}

impl SessionInfo {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            title: String::new(),
            created_at: 0,
            updated_at: 0,
            messages: 0,
        }
    }

    /// Fold one more line of the session into its summary.
    fn apply(&mut self, line: &Line) {
        match line {
            Line::Session {
                title, created_at, ..
            } => {
                self.title = title.clone();
                self.created_at = *created_at;
                self.updated_at = self.updated_at.max(*created_at);
            }
            Line::Message { at, message } => {
                if matches!(message.role, Role::User | Role::Assistant) {
                    self.messages += 1;
                }
                self.updated_at = self.updated_at.max(*at);
            }
            Line::Turn { at, .. } => self.updated_at = self.updated_at.max(*at),
            Line::Title { title } => self.title = title.clone(),
        }
    }
}

impl Session {
    pub fn info(&self, id: &str) -> SessionInfo {
        let mut info = SessionInfo::new(id);
        for line in &self.lines {
            info.apply(line);
        }
        info
    }

    /// The conversation as the model sees it.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Message { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session id '{0}' is not valid: use letters, digits, '-' and '_' (at most 64)")]
    BadId(String),
    #[error("no session '{0}'; `sessions list` shows them")]
    NotFound(String),
    #[error("session '{0}' already exists")]
    Exists(String),
    #[error("session store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// How many sessions keep their lines in memory between calls (the most recently used).
pub const CACHED_SESSIONS: usize = 8;
/// At most this many bytes of session files are kept in memory as parsed lines; the session
/// in use stays cached even when it alone is larger.
pub const CACHED_BYTES: u64 = 8 * 1024 * 1024;

/// The sessions on disk. Only a summary per session (`SessionInfo`, for `sessions.list`)
/// stays in memory for all of them; a session's lines are read from its file when needed
/// and kept for a few recently used sessions, so a long-running engine does not grow with
/// every turn it has ever run.
pub struct SessionStore {
    dir: PathBuf,
    infos: BTreeMap<String, SessionInfo>,
    /// Most recently used first; bounded by `CACHED_SESSIONS` and `CACHED_BYTES`.
    cache: VecDeque<Cached>,
}

struct Cached {
    id: String,
    session: Session,
    /// The file's length these lines were read from (plus what this store appended since):
    /// a different length on disk means another process wrote to it, so it is read again.
    bytes: u64,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Ids become file names: nothing that could leave the directory.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parse a session file; a torn or unreadable line is skipped.
fn read_lines(path: &Path) -> std::io::Result<(Vec<Line>, u64)> {
    let text = fs::read_to_string(path)?;
    let lines = text
        .lines()
        .filter_map(|l| match serde_json::from_str::<Line>(l) {
            Ok(line) => Some(line),
            Err(e) => {
                tracing::warn!("{}: skipping an unreadable line: {e}", path.display());
                None
            }
        })
        .collect();
    Ok((lines, text.len() as u64))
}

impl SessionStore {
    /// Summarize every session file in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, SessionError> {
        let io = |source| SessionError::Io {
            path: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut infos = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(io)? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jsonl"))
            else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            let Ok((lines, _)) = read_lines(&path) else {
                continue;
            };
            infos.insert(id.to_string(), Session { lines }.info(id));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            infos,
            cache: VecDeque::new(),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jsonl"))
    }

    pub fn new_id() -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("s{:x}{:02x}", now_ms(), n % 256)
    }

    pub fn create(&mut self, id: Option<&str>, title: &str) -> Result<SessionInfo, SessionError> {
        let id = match id {
            Some(id) if !valid_id(id) => return Err(SessionError::BadId(id.to_string())),
            Some(id) if self.infos.contains_key(id) => {
                return Err(SessionError::Exists(id.to_string()));
            }
            Some(id) => id.to_string(),
            None => loop {
                let id = Self::new_id();
                if !self.infos.contains_key(&id) {
                    break id;
                }
            },
        };
        self.infos.insert(id.clone(), SessionInfo::new(&id));
        self.append(
            &id,
            Line::Session {
                id: id.clone(),
                title: title.to_string(),
                created_at: now_ms(),
            },
        )?;
        self.info(&id)
    }

    /// Whether the session exists (as far as this store knows).
    pub fn exists(&self, id: &str) -> bool {
        self.infos.contains_key(id)
    }

    fn known(&self, id: &str) -> Result<(), SessionError> {
        if !valid_id(id) {
            return Err(SessionError::BadId(id.to_string()));
        }
        if !self.infos.contains_key(id) {
            return Err(SessionError::NotFound(id.to_string()));
        }
        Ok(())
    }

    /// The session's lines: from the cache when its file has not changed since, else read
    /// from disk (and cached, evicting the least recently used beyond the bounds).
    pub fn get(&mut self, id: &str) -> Result<&Session, SessionError> {
        self.known(id)?;
        let path = self.path(id);
        let on_disk = fs::metadata(&path).map(|m| m.len()).ok();
        let hit = self.cache.iter().position(|c| c.id == id);
        let entry = match hit {
            Some(i) if on_disk == Some(self.cache[i].bytes) => self.cache.remove(i),
            _ => {
                if let Some(i) = hit {
                    self.cache.remove(i);
                }
                let (lines, bytes) = match read_lines(&path) {
                    Ok(read) => read,
                    // Deleted behind our back: an empty session, as a new one would be.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0),
                    Err(source) => {
                        return Err(SessionError::Io {
                            path: path.display().to_string(),
                            source,
                        });
                    }
                };
                let session = Session { lines };
                // Another process may have added lines: the summary follows the file.
                self.infos.insert(id.to_string(), session.info(id));
                Some(Cached {
                    id: id.to_string(),
                    session,
                    bytes,
                })
            }
        };
        if let Some(entry) = entry {
            self.cache.push_front(entry);
        }
        self.trim_cache();
        match self.cache.front() {
            Some(c) => Ok(&c.session),
            None => Err(SessionError::NotFound(id.to_string())),
        }
    }

    /// Drop the least recently used sessions beyond the bounds, never the newest one.
    fn trim_cache(&mut self) {
        while self.cache.len() > 1
            && (self.cache.len() > CACHED_SESSIONS || self.cached_bytes() > CACHED_BYTES)
        {
            self.cache.pop_back();
        }
    }

    fn cached_bytes(&self) -> u64 {
        self.cache.iter().map(|c| c.bytes).sum()
    }

    /// How many sessions and file bytes the cache holds now.
    pub fn cached(&self) -> (usize, u64) {
        (self.cache.len(), self.cached_bytes())
    }

    pub fn info(&self, id: &str) -> Result<SessionInfo, SessionError> {
        self.known(id)?;
        self.infos
            .get(id)
            .cloned()
            .ok_or_else(|| SessionError::NotFound(id.to_string()))
    }

    /// Newest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self.infos.values().cloned().collect();
        all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
        all
    }

    /// Append one line to the file, then to the summary and any cached copy: what is in
    /// memory is on disk.
    pub fn append(&mut self, id: &str, line: Line) -> Result<(), SessionError> {
        self.known(id)?;
        let path = self.path(id);
        let io = |source| SessionError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut text = serde_json::to_string(&line).map_err(|e| io(std::io::Error::other(e)))?;
        text.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        // One write call per line: with O_APPEND, lines from two writers never interleave.
        file.write_all(text.as_bytes()).map_err(io)?;
        if let Some(info) = self.infos.get_mut(id) {
            info.apply(&line);
        }
        if let Some(cached) = self.cache.iter_mut().find(|c| c.id == id) {
            cached.session.lines.push(line);
            cached.bytes += text.len() as u64;
        }
        self.trim_cache();
        Ok(())
    }

    pub fn delete(&mut self, id: &str) -> Result<(), SessionError> {
        self.known(id)?;
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SessionError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        self.infos.remove(id);
        self.cache.retain(|c| c.id != id);
        Ok(())
    }

    /// The session as JSONL, the lines kept with any secret in their strings redacted
    /// (files written before redaction existed may hold some).
    pub fn export(&mut self, id: &str) -> Result<String, SessionError> {
        let session = self.get(id)?;
        let mut out = String::new();
        for line in &session.lines {
            let Ok(mut value) = serde_json::to_value(line) else {
                continue;
            };
            crate::secrets::redact::redact_json(&mut value);
            if let Ok(text) = serde_json::to_string(&value) {
                out.push_str(&text);
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// Flush the session file to disk (end of a turn).
    pub fn sync(&self, id: &str) {
        if let Ok(file) = OpenOptions::new().append(true).open(self.path(id)) {
            let _ = file.sync_data();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_survive_a_restart_and_a_torn_last_line() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = SessionStore::open(tmp.path()).unwrap();
        let info = store.create(Some("work"), "work").unwrap();
        store
            .append(
                &info.id,
                Line::Message {
                    at: 1,
                    message: ChatMessage::new(Role::User, "hello"),
                },
            )
            .unwrap();
        // A crash mid-write leaves half a line.
        let path = tmp.path().join("work.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"type\":\"message\",\"at\":2,\"ro").unwrap();
        let mut store = SessionStore::open(tmp.path()).unwrap();
        let session = store.get("work").unwrap();
        assert_eq!(session.messages().len(), 1);
        assert_eq!(session.messages()[0].content, "hello");
        assert_eq!(store.list()[0].messages, 1);
    }

    #[test]
    fn ids_cannot_leave_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = SessionStore::open(&tmp.path().join("s")).unwrap();
        for bad in ["../x", "a/b", "", "..", "a b", &"x".repeat(65), "a\0b"] {
            assert!(matches!(
                store.create(Some(bad), "t"),
                Err(SessionError::BadId(_))
            ));
            assert!(store.delete(bad).is_err());
        }
        assert!(!tmp.path().join("x.jsonl").exists());
    }

    #[test]
    fn delete_and_export() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = SessionStore::open(tmp.path()).unwrap();
        let a = store.create(None, "a").unwrap();
        let jsonl = store.export(&a.id).unwrap();
        assert_eq!(jsonl.lines().count(), 1);
        assert!(jsonl.contains("\"type\":\"session\""));
        store.delete(&a.id).unwrap();
        assert!(store.list().is_empty());
        assert!(SessionStore::open(tmp.path()).unwrap().list().is_empty());
        assert!(matches!(
            store.export(&a.id),
            Err(SessionError::NotFound(_))
        ));
    }

    fn say(store: &mut SessionStore, id: &str, text: &str) {
        store
            .append(
                id,
                Line::Message {
                    at: now_ms(),
                    message: ChatMessage::new(Role::User, text),
                },
            )
            .unwrap();
    }

    #[test]
    fn only_a_few_recent_sessions_stay_in_memory_however_many_ran() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = SessionStore::open(tmp.path()).unwrap();
        for s in 0..40 {
            let id = format!("s{s}");
            store.create(Some(&id), &id).unwrap();
            for t in 0..10 {
                say(&mut store, &id, &format!("turn {t} of {id}"));
            }
            assert_eq!(store.get(&id).unwrap().messages().len(), 10);
            assert!(store.cached().0 <= CACHED_SESSIONS, "{:?}", store.cached());
        }
        assert_eq!(store.cached().0, CACHED_SESSIONS);
        // An evicted session is read back from its file, whole.
        let first = store.get("s0").unwrap().messages();
        assert_eq!(first.len(), 10);
        assert_eq!(first[9].content, "turn 9 of s0");
        assert_eq!(store.list().len(), 40);
        assert_eq!(store.info("s0").unwrap().messages, 10);

        // The byte bound: three sessions of about 3 MiB each do not all stay.
        let big = "x".repeat(1024 * 1024);
        for s in 0..3 {
            let id = format!("big{s}");
            store.create(Some(&id), &id).unwrap();
            for _ in 0..3 {
                say(&mut store, &id, &big);
            }
            store.get(&id).unwrap();
        }
        let (sessions, bytes) = store.cached();
        assert!(
            bytes <= CACHED_BYTES,
            "{bytes} bytes in {sessions} sessions"
        );
        assert_eq!(store.get("big0").unwrap().messages().len(), 3);
    }

    #[test]
    fn lines_another_process_appended_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let mut ours = SessionStore::open(tmp.path()).unwrap();
        ours.create(Some("work"), "work").unwrap();
        say(&mut ours, "work", "first");
        assert_eq!(ours.get("work").unwrap().messages().len(), 1);
        // Another process (the TUI beside a script) adds a turn to the same file.
        let mut theirs = SessionStore::open(tmp.path()).unwrap();
        say(&mut theirs, "work", "second");
        let texts: Vec<String> = ours
            .get("work")
            .unwrap()
            .messages()
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(texts, ["first", "second"]);
        assert_eq!(ours.info("work").unwrap().messages, 2);
        // And our next line lands after theirs, in the file and in what we read.
        say(&mut ours, "work", "third");
        assert_eq!(ours.get("work").unwrap().messages().len(), 3);
        assert_eq!(
            SessionStore::open(tmp.path())
                .unwrap()
                .get("work")
                .unwrap()
                .messages()
                .len(),
            3
        );
    }
}
