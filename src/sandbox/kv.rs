//! `kv_get` / `kv_set`: one small JSON file per tool under `<state>/tools/kv/`, written
//! whole to a temporary file, synced and renamed (`crate::files`), so a crash leaves the old
//! or the new map, never half of one. Sizes are capped: a tool cannot fill the disk through
//! its namespace.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::files;

pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_TOTAL_BYTES: usize = 1024 * 1024;

/// Writers in this process take turns; each write replaces the file atomically.
static LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the store is damaged: {0}")]
    Corrupt(String),
}

/// The map and the bytes read for it.
fn load(file: &Path) -> Result<(BTreeMap<String, String>, usize), KvError> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(|map| (map, bytes.len()))
            .map_err(|e| KvError::Corrupt(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((BTreeMap::new(), 0)),
        Err(e) => Err(e.into()),
    }
}

/// The value, and the bytes read to find it (the whole store: the caller charges for them).
pub fn get(file: &Path, key: &str) -> Result<(Option<String>, usize), KvError> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (mut map, read) = load(file)?;
    Ok((map.remove(key), read))
}

/// Store `value`; returns the bytes read and written to do it.
pub fn set(file: &Path, key: &str, value: &str) -> Result<usize, KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::TooLarge(format!(
            "keys are 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::TooLarge(format!(
            "values are at most {MAX_VALUE_BYTES} bytes"
        )));
    }
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (mut map, read) = load(file)?;
    map.insert(key.to_string(), value.to_string());
    let bytes = serde_json::to_vec(&map).map_err(|e| KvError::Corrupt(e.to_string()))?;
    if bytes.len() > MAX_TOTAL_BYTES {
        return Err(KvError::TooLarge(format!(
            "a tool's namespace holds at most {MAX_TOTAL_BYTES} bytes"
        )));
    }
    if let Some(dir) = file.parent() {
        files::create_private_dir_all(dir)?;
    }
    files::write_atomic(file, &bytes, files::PRIVATE_FILE)?;
    Ok(read + bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_persist_per_file_with_caps() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("kv/a.json");
        let b = tmp.path().join("kv/b.json");
        assert_eq!(get(&a, "k").unwrap(), (None, 0));
        set(&a, "k", "v1").unwrap();
        // Read {"k":"v1"} (10 bytes), wrote {"k":"v2"}.
        assert_eq!(set(&a, "k", "v2").unwrap(), 20);
        assert_eq!(get(&a, "k").unwrap(), (Some("v2".to_string()), 10));
        assert_eq!(get(&b, "k").unwrap().0, None, "namespaces are separate");
        assert!(matches!(
            set(&a, &"x".repeat(MAX_KEY_BYTES + 1), "v"),
            Err(KvError::TooLarge(_))
        ));
        assert!(matches!(
            set(&a, "big", &"x".repeat(MAX_VALUE_BYTES + 1)),
            Err(KvError::TooLarge(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
