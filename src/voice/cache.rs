//! The converted-audio cache under `<state>/voice/cache`: entries named by a digest of the
//! provider, its identity, the voice and the text; a damaged entry is dropped on read, a
//! used one is touched, and pruning keeps the newest within the configured bounds.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::wav;

pub(super) fn cache_key(provider: &str, identity: &str, voice: Option<&str>, text: &str) -> String {
    let mut hash = Sha256::new();
    for part in [provider, identity, voice.unwrap_or(""), text] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hex::encode(&hash.finalize()[..16])
}

/// A cached WAV that still validates (a damaged one is removed).
pub(super) async fn cached(path: &Path) -> Option<wav::WavInfo> {
    let bytes = tokio::fs::read(path).await.ok()?;
    match wav::validate(&bytes) {
        Ok(info) => Some(info),
        Err(_) => {
            let _ = tokio::fs::remove_file(path).await;
            None
        }
    }
}

/// Mark a cache entry as just used, so pruning drops older ones first.
pub(super) fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Keep the newest entries within `max_files` and `max_bytes`; `keep` always stays.
pub(super) fn prune_cache(dir: &Path, max_files: usize, max_bytes: u64, keep: &[&Path]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| {
                (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                    e.path(),
                )
            })
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let is_kept = |path: &Path| keep.contains(&path);
    // What this conversion returns counts first; the rest fill what is left, newest first.
    let (mut count, mut bytes) = files
        .iter()
        .filter(|(_, _, p)| is_kept(p))
        .fold((0usize, 0u64), |(c, b), (_, len, _)| (c + 1, b + len));
    for (_, len, path) in files.iter().filter(|(_, _, p)| !is_kept(p)) {
        if count < max_files && bytes + len <= max_bytes {
            count += 1;
            bytes += len;
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
}
