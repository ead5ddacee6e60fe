//! wasmtime's compiled code on disk, so a module compiled once is not compiled again by the
//! next process (`sandbox.disk_cache`, on in the edge profile).
//!
//! Files live in `<state>/cache/wasmtime/` as `<wasm sha256>-<engine fingerprint>.cwasm`. The
//! fingerprint hashes [`Engine::precompile_compatibility_hash`] (wasmtime's version, target,
//! compiler flags, tunables and wasm features), so an engine configured differently, or
//! another wasmtime, looks for other names and never even reads a foreign file.
//!
//! Loading compiled code is `unsafe` in wasmtime: the bytes become machine code as they are.
//! This is sound here because every file loaded is one this program wrote from
//! [`Module::serialize`], unmodified:
//! - the directory is created owner-only (0700) inside the user's private state dir, and a
//!   file is loaded only when the directory and the file belong to this user, neither is
//!   writable by group or others, the file is a regular file with one link (no symlink, no
//!   hard link planted by someone else);
//! - files are written whole to a temporary name created exclusively with mode 0600, then
//!   renamed into place (`crate::files`), so no reader ever sees half of one write;
//! - each file starts with a sha256 of the serialized bytes, checked before they reach
//!   wasmtime, so a truncated or corrupted file (a crash, a full disk, a flipped bit) is
//!   recompiled and replaced instead of executed. wasmtime's own header check then rejects
//!   anything from another version or configuration.
//!
//! The checks and the load use one open file descriptor, so the file cannot be swapped
//! between them. Anything that fails a check is counted, logged and compiled afresh.

use std::fs::{File, OpenOptions};
use std::hash::Hasher;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::OFlags;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::DiskCacheStats;
use crate::files;

/// `O_NOFOLLOW | O_CLOEXEC` as `custom_flags` takes them (an `int`): a link in the file's
/// place fails the open.
const NO_FOLLOW: i32 = (OFlags::NOFOLLOW.bits() | OFlags::CLOEXEC.bits()) as i32;

/// Identifies the file format (and this wrapper's version) before the digest.
const MAGIC: &[u8; 8] = b"OCRSCW01";
/// Serialized modules larger than this are not read back (a sane bound on what is loaded).
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Feeds a `Hash` into sha256, so the fingerprint is the same in every process.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Unused: the fingerprint takes the whole digest.
        0
    }
}

/// What compiled code from `engine` is compatible with, as 16 hex digits.
pub fn fingerprint(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    hex::encode(&digest[..8])
}

#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Files not loaded because of their owner, mode, type or links.
    refused: AtomicU64,
    /// Files that failed the digest or wasmtime's own check.
    invalid: AtomicU64,
    writes: AtomicU64,
}

/// Why a file on disk was not used.
enum Skip {
    Absent,
    Refused(String),
    Invalid(String),
}

impl DiskCache {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, wasm_sha256: &str, fingerprint: &str) -> PathBuf {
        self.dir.join(format!("{wasm_sha256}-{fingerprint}.cwasm"))
    }

    /// The module compiled earlier for `engine`, or `None` (counted as a miss) when there is
    /// no usable file. Never fails: anything wrong means compiling again.
    pub fn load(&self, engine: &Engine, fingerprint: &str, wasm_sha256: &str) -> Option<Module> {
        let path = self.path(wasm_sha256, fingerprint);
        match self.try_load(engine, &path) {
            Ok(module) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Some(module);
            }
            // No file yet (or no directory yet, before the first write): an ordinary miss.
            Err(Skip::Absent) => {
                tracing::debug!("no compiled code at {}; compiling", path.display());
            }
            Err(Skip::Refused(why)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "not loading compiled code from {}: {why}; compiling instead",
                    path.display()
                );
            }
            Err(Skip::Invalid(why)) => {
                self.invalid.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "compiled code in {} is unusable ({why}); compiling again",
                    path.display()
                );
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    fn try_load(&self, engine: &Engine, path: &Path) -> Result<Module, Skip> {
        if std::fs::symlink_metadata(&self.dir)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            return Err(Skip::Absent);
        }
        check_dir(&self.dir).map_err(Skip::Refused)?;
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(NO_FOLLOW)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Skip::Absent),
            Err(e) => return Err(Skip::Refused(format!("cannot open it: {e}"))),
        };
        check_file(&file).map_err(Skip::Refused)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Skip::Invalid(format!("cannot read it: {e}")))?;
        let payload = bytes
            .strip_prefix(MAGIC.as_slice())
            .filter(|rest| rest.len() >= 32)
            .ok_or_else(|| Skip::Invalid("it is not a cache file of this program".into()))?;
        let (digest, code) = payload.split_at(32);
        if Sha256::digest(code).as_slice() != digest {
            return Err(Skip::Invalid(
                "its digest does not match (truncated or damaged)".into(),
            ));
        }
        // SAFETY: `code` is exactly what `Module::serialize` produced in this program (see
        // the module docs): the file is this user's, in an owner-only directory, not
        // writable by others, written atomically, and its digest matches. wasmtime checks
        // its own header and refuses code from another version or configuration.
        unsafe { Module::deserialize(engine, code) }
            .map_err(|e| Skip::Invalid(format!("wasmtime refused it: {e}")))
    }

    /// Write `module` for the next process. Failures are logged, never returned: the cache
    /// only saves time.
    pub fn store(&self, fingerprint: &str, wasm_sha256: &str, module: &Module) {
        if let Err(e) = self.try_store(fingerprint, wasm_sha256, module) {
            tracing::warn!("cannot write compiled code to {}: {e}", self.dir.display());
        }
    }

    fn try_store(
        &self,
        fingerprint: &str,
        wasm_sha256: &str,
        module: &Module,
    ) -> Result<(), String> {
        let code = module.serialize().map_err(|e| format!("{e:#}"))?;
        files::create_private_dir_all(&self.dir).map_err(|e| e.to_string())?;
        // A directory someone else can write is not a place to leave code for later.
        check_dir(&self.dir)?;
        let path = self.path(wasm_sha256, fingerprint);
        let mut file = Vec::with_capacity(MAGIC.len() + 32 + code.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&Sha256::digest(&code));
        file.extend_from_slice(&code);
        // No sync: it costs more than the compile it saves for small modules, and a file a
        // crash left short or empty fails the digest and is simply compiled again.
        files::write_atomic_unsynced(&path, &file, files::PRIVATE_FILE)
            .map_err(|e| e.to_string())?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn stats(&self) -> DiskCacheStats {
        let (files, bytes) = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
            })
            .unwrap_or((0, 0));
        DiskCacheStats {
            dir: self.dir.display().to_string(),
            files,
            bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// This user's, a real directory, and nobody else may write in it.
fn check_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    owned_and_private(&meta, dir)
}

fn check_file(file: &File) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.nlink() != 1 {
        return Err(format!("it has {} names (hard links)", meta.nlink()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("it is {} bytes", meta.len()));
    }
    owned_and_private(&meta, Path::new("the file"))
}

fn owned_and_private(meta: &std::fs::Metadata, what: &Path) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{} belongs to uid {}, not to this user ({me})",
            what.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{} has mode {mode:04o}: others may change it",
            what.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;
    use crate::sandbox::wasmtime_backend::{self, WasmtimeBackend};
    use crate::sandbox::{BackendKind, Grants, HostEnv, Limits, Sandbox, SandboxBackend};

    const ECHO: &str = include_str!("../../tests/fixtures/wasm/echo.wat");

    fn cache_dir(tmp: &tempfile::TempDir) -> PathBuf {
        tmp.path().join("cache").join("wasmtime")
    }

    /// A fresh engine (as a new process would have) over the same cache dir: prepare and
    /// run echo; the module must work whichever way it was obtained.
    fn fresh_run(dir: &Path) -> DiskCacheStats {
        let sandbox = Sandbox::with_disk_cache(Some(dir.to_path_buf()));
        let prepared = sandbox
            .prepare(BackendKind::Wasmtime, ECHO.as_bytes(), None)
            .unwrap();
        let limits = Limits {
            fuel: 10_000_000,
            memory_bytes: 16 << 20,
            table_elements: 100,
            instances: 1,
            timeout_ms: 5_000,
            max_output_bytes: 64 << 10,
        };
        let input = serde_json::json!({ "hello": "disk" });
        let outcome = sandbox
            .run(
                &prepared,
                &input,
                &limits,
                &Grants::default(),
                &HostEnv::default(),
            )
            .unwrap();
        assert_eq!(outcome.output, input);
        sandbox.stats().disk.unwrap()
    }

    fn the_file(dir: &Path) -> PathBuf {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.into_iter().next().unwrap()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_second_engine_loads_the_compiled_module_from_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(&tmp);
        let first = fresh_run(&dir);
        // The directory does not exist before the first write: a plain miss, not a refusal
        // (a refusal is logged at warn; a miss only at debug).
        assert_eq!(
            (
                first.hits,
                first.misses,
                first.writes,
                first.files,
                first.refused
            ),
            (0, 1, 1, 1, 0)
        );
        let file = the_file(&dir);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let wasm = crate::sandbox::assemble(ECHO.as_bytes()).unwrap();
        assert!(
            name.starts_with(&crate::sandbox::sha256_hex(&wasm)) && name.ends_with(".cwasm"),
            "{name}"
        );

        let second = fresh_run(&dir);
        assert_eq!(
            (second.hits, second.misses, second.writes),
            (1, 0, 0),
            "loaded, not compiled"
        );
        assert!(second.bytes > 0);
    }

    #[test]
    fn a_truncated_or_damaged_file_is_compiled_again_and_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(&tmp);
        fresh_run(&dir);
        let file = the_file(&dir);
        let good = std::fs::read(&file).unwrap();
        let mut flipped = good.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        for damaged in [
            good[..good.len() / 2].to_vec(),
            flipped,
            Vec::new(),
            b"OCRSCW01".to_vec(),
        ] {
            std::fs::write(&file, &damaged).unwrap();
            let stats = fresh_run(&dir);
            assert_eq!(
                (stats.invalid, stats.hits, stats.misses, stats.writes),
                (1, 0, 1, 1),
                "{} damaged bytes",
                damaged.len()
            );
            assert_eq!(std::fs::read(&file).unwrap(), good, "replaced");
            assert_eq!(fresh_run(&dir).hits, 1);
        }
    }

    #[test]
    fn a_file_or_dir_others_can_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(&tmp);
        fresh_run(&dir);
        let file = the_file(&dir);
        for loose in [0o620, 0o602, 0o666] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(loose)).unwrap();
            let stats = fresh_run(&dir);
            assert_eq!(
                (stats.refused, stats.hits, stats.misses),
                (1, 0, 1),
                "mode {loose:o}"
            );
            assert_eq!(mode(&file), 0o600, "rewritten owner-only");
        }

        // A directory others can write: nothing is loaded from it, nor written to it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let before = std::fs::metadata(&file).unwrap().modified().unwrap();
        let stats = fresh_run(&dir);
        assert_eq!((stats.refused, stats.hits, stats.writes), (1, 0, 0));
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn links_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(&tmp);
        fresh_run(&dir);
        let file = the_file(&dir);
        let elsewhere = tmp.path().join("elsewhere.cwasm");
        std::fs::rename(&file, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        assert_eq!(fresh_run(&dir).refused, 1, "a symlink");
        std::fs::remove_file(&file).unwrap();
        std::fs::hard_link(&elsewhere, &file).unwrap();
        assert_eq!(fresh_run(&dir).refused, 1, "a second name");
    }

    #[test]
    fn another_engine_configuration_never_loads_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = cache_dir(&tmp);
        fresh_run(&dir);
        let standard = the_file(&dir);
        let wasm = crate::sandbox::assemble(ECHO.as_bytes()).unwrap();

        // Code compiled without fuel checks must never run where fuel bounds a call.
        let mut other = wasmtime_backend::config();
        other.consume_fuel(false);
        let disk = Arc::new(DiskCache::new(dir.clone()));
        let backend = WasmtimeBackend::with_config(&other, Some(disk.clone())).unwrap();
        backend.compile(&wasm).unwrap();
        let stats = disk.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.files),
            (0, 1, 2),
            "its own name, its own file"
        );

        // Even the standard engine's file under the other engine's name is not loaded:
        // wasmtime refuses code compiled with incompatible settings.
        let theirs = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| *p != standard)
            .unwrap();
        std::fs::copy(&standard, &theirs).unwrap();
        let disk = Arc::new(DiskCache::new(dir.clone()));
        let backend = WasmtimeBackend::with_config(&other, Some(disk.clone())).unwrap();
        backend.compile(&wasm).unwrap();
        let stats = disk.stats();
        assert_eq!((stats.invalid, stats.hits, stats.writes), (1, 0, 1));
    }
}
