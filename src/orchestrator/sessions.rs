//! Sessions, persisted as append-only JSONL under `<state>/sessions/`: one line per event,
//! written whole with `O_APPEND`, so a crash loses at most the line being written, and a
//! torn last line is skipped when the file is read back.

use std::collections::BTreeMap;
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

impl Session {
    pub fn info(&self, id: &str) -> SessionInfo {
        let mut info = SessionInfo {
            id: id.to_string(),
            title: String::new(),
            created_at: 0,
            updated_at: 0,
            messages: 0,
        };
        for line in &self.lines {
            match line {
                Line::Session {
                    title, created_at, ..
                } => {
                    info.title = title.clone();
                    info.created_at = *created_at;
                    info.updated_at = info.updated_at.max(*created_at);
                }
                Line::Message { at, message } => {
                    if matches!(message.role, Role::User | Role::Assistant) {
                        info.messages += 1;
                    }
                    info.updated_at = info.updated_at.max(*at);
                }
                Line::Turn { at, .. } => info.updated_at = info.updated_at.max(*at),
                Line::Title { title } => info.title = title.clone(),
            }
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

pub struct SessionStore {
    dir: PathBuf,
    sessions: BTreeMap<String, Session>,
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

impl SessionStore {
    /// Read every session file in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, SessionError> {
        let io = |source| SessionError::Io {
            path: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut sessions = BTreeMap::new();
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
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
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
            sessions.insert(id.to_string(), Session { lines });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            sessions,
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
            Some(id) if self.sessions.contains_key(id) => {
                return Err(SessionError::Exists(id.to_string()));
            }
            Some(id) => id.to_string(),
            None => loop {
                let id = Self::new_id();
                if !self.sessions.contains_key(&id) {
                    break id;
                }
            },
        };
        self.sessions.insert(id.clone(), Session::default());
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

    pub fn get(&self, id: &str) -> Result<&Session, SessionError> {
        if !valid_id(id) {
            return Err(SessionError::BadId(id.to_string()));
        }
        self.sessions
            .get(id)
            .ok_or_else(|| SessionError::NotFound(id.to_string()))
    }

    pub fn info(&self, id: &str) -> Result<SessionInfo, SessionError> {
        Ok(self.get(id)?.info(id))
    }

    /// Newest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self.sessions.iter().map(|(id, s)| s.info(id)).collect();
        all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
        all
    }

    /// Append one line to the file, then to memory: what is in memory is on disk.
    pub fn append(&mut self, id: &str, line: Line) -> Result<(), SessionError> {
        self.get(id)?;
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
        if let Some(s) = self.sessions.get_mut(id) {
            s.lines.push(line);
        }
        Ok(())
    }

    pub fn delete(&mut self, id: &str) -> Result<(), SessionError> {
        self.get(id)?;
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
        self.sessions.remove(id);
        Ok(())
    }

    /// The session as JSONL, the lines kept with any secret in their strings redacted
    /// (files written before redaction existed may hold some).
    pub fn export(&self, id: &str) -> Result<String, SessionError> {
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
        let store = SessionStore::open(tmp.path()).unwrap();
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
}
