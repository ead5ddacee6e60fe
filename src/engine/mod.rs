//! The in-process engine: it owns every store and service, and answers method calls.
//!
//! The TUI, `--batch` and the CLI subcommands are thin faces over [`EngineHandle::call`]; the
//! engine knows nothing of terminals (a test enforces that it never imports ratatui or
//! crossterm).

pub mod allocator;
pub mod chat;
mod error;
mod event;
pub mod findings;
mod host;
pub mod memory;
pub mod methods;
pub mod sandbox;
pub mod voice;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::broadcast;

pub use error::{EngineError, ErrorCode};
pub use event::EngineEvent;
pub use methods::{METHODS, Method, MethodEntry};

use crate::config::Loaded;
pub use crate::config::{FileCheck, Snapshot};

/// Events buffered per subscriber; a slow pane skips ahead rather than blocking the engine.
pub const EVENT_CAPACITY: usize = 256;

/// Owns the engine's state. Dropping it does not stop calls already holding a handle.
pub struct Engine {
    handle: EngineHandle,
}

/// A cheap, cloneable reference to the engine, for any task or face that needs it.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

struct Inner {
    snapshot: RwLock<Arc<Snapshot>>,
    file_checks: Vec<FileCheck>,
    started: Instant,
    events: broadcast::Sender<EngineEvent>,
    /// Opened on first use; see [`EngineHandle::memory`].
    memory: crate::memory::MemorySlot,
    /// Built by the first voice method; see [`EngineHandle::voice`].
    voice: std::sync::OnceLock<Arc<crate::voice::Voice>>,
    /// Backends start on first use; see [`EngineHandle::sandbox`].
    sandbox: std::sync::OnceLock<Arc<crate::sandbox::Sandbox>>,
    /// Providers, their health, sessions and running turns; see [`EngineHandle::agent`].
    agent: Arc<crate::orchestrator::runtime::Runtime>,
}

impl Engine {
    pub fn start(loaded: Loaded, file_checks: Vec<FileCheck>) -> Self {
        // Before the engine's threads exist, so they share the capped arenas.
        allocator::tune();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let snapshot = Snapshot::new(loaded, &file_checks);
        crate::logging::set_redact(snapshot.config().logging.redact);
        Self {
            handle: EngineHandle {
                inner: Arc::new(Inner {
                    snapshot: RwLock::new(Arc::new(snapshot)),
                    file_checks,
                    started: Instant::now(),
                    events,
                    memory: Arc::new(tokio::sync::Mutex::new(None)),
                    voice: std::sync::OnceLock::new(),
                    sandbox: std::sync::OnceLock::new(),
                    agent: Arc::new(crate::orchestrator::runtime::Runtime::new()),
                }),
            },
        }
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }
}

impl EngineHandle {
    /// Call a method by name with JSON params: the entry point of `--batch` and `call`.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, EngineError> {
        let entry = methods::find(method).ok_or_else(|| {
            EngineError::invalid_request(format!(
                "unknown method '{method}'; call methods.list for the list"
            ))
            .with_details(serde_json::json!({ "method": method }))
        })?;
        entry.call(self.clone(), params).await
    }

    /// [`call`](Self::call) with a deadline; the call is dropped (cancelled) when it passes.
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, EngineError> {
        match timeout {
            None => self.call(method, params).await,
            Some(limit) => tokio::time::timeout(limit, self.call(method, params))
                .await
                .unwrap_or_else(|_| Err(timeout_error(method, limit))),
        }
    }

    /// A typed call, for faces that know the method at compile time.
    pub async fn request<M: Method>(&self, params: M::Params) -> Result<M::Output, EngineError> {
        M::run(self, params).await
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }

    /// Publish an event to every face. Having no subscriber is not an error.
    pub fn emit(&self, event: EngineEvent) {
        let _ = self.inner.events.send(event);
    }

    /// The current configuration and what was derived from it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.inner.snapshot.read() {
            Ok(guard) => guard.clone(),
            // A writer panicked mid-swap; the Arc it held is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Read every layer again and swap the result in; tells every face.
    pub fn reload(&self) -> Arc<Snapshot> {
        let options = self.snapshot().loaded.options.clone();
        let snapshot = Arc::new(Snapshot::new(
            crate::config::load(&options),
            &self.inner.file_checks,
        ));
        crate::logging::set_redact(snapshot.config().logging.redact);
        match self.inner.snapshot.write() {
            Ok(mut guard) => *guard = snapshot.clone(),
            Err(poisoned) => *poisoned.into_inner() = snapshot.clone(),
        }
        let errors = snapshot.diagnostics.iter().filter(|d| d.is_error()).count();
        self.emit(EngineEvent::ConfigReloaded {
            errors,
            warnings: snapshot.diagnostics.len() - errors,
        });
        snapshot
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}
pub fn timeout_error(method: &str, limit: Duration) -> EngineError {
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    EngineError::new(
        ErrorCode::Timeout,
        format!("{method} did not finish within {ms} ms"),
    )
    .with_details(serde_json::json!({ "method": method, "timeoutMs": ms }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostic, LoadOptions, load};

    fn engine() -> (tempfile::TempDir, Engine) {
        let tmp = tempfile::tempdir().unwrap();
        let loaded = load(&LoadOptions {
            state_dir: tmp.path().to_path_buf(),
            ..Default::default()
        });
        (tmp, Engine::start(loaded, Vec::new()))
    }

    #[tokio::test]
    async fn every_listed_method_answers_with_default_params() {
        let (_tmp, engine) = engine();
        let h = engine.handle();
        // These need params to mean anything; without, they must say so. (`findings.fixAll`
        // runs before `findings.undo` here, so undo has the fixes it applied to revert.)
        let need_input = [
            "findings.fix",
            "findings.suppress",
            "memory.add",
            "memory.search",
            "memory.get",
            "memory.delete",
            "memory.graph.neighbors",
            "memory.graph.path",
            "memory.graph.node",
            "tts.setProvider",
            "tts.convert",
            "stt.transcribe",
            "tools.describe",
            "tools.invoke",
            "sandbox.run",
            "chat.send",
            "sessions.history",
            "sessions.delete",
            "sessions.export",
        ];
        for m in METHODS {
            let result = h.call(m.name, Value::Null).await;
            if need_input.contains(&m.name) {
                let code = result.expect_err(m.name).code;
                assert!(
                    matches!(code, ErrorCode::InvalidRequest | ErrorCode::NotFound),
                    "{}: {code:?}",
                    m.name
                );
            } else {
                assert!(result.is_ok(), "{}: {result:?}", m.name);
            }
        }
    }

    #[tokio::test]
    async fn unknown_method_and_bad_params_are_invalid_requests() {
        let (_tmp, engine) = engine();
        let h = engine.handle();
        let err = h.call("nope.nothing", Value::Null).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let err = h
            .call("status", serde_json::json!({ "verbose": true }))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.message.contains("verbose"), "{}", err.message);
        let err = h
            .call("config.get", serde_json::json!({ "key": 5 }))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[tokio::test]
    async fn status_reports_track_profile_and_backend() {
        let (_tmp, engine) = engine();
        let status = engine
            .handle()
            .request::<methods::Status>(Default::default())
            .await
            .unwrap();
        assert_eq!(status.build_track, crate::config::BUILD_TRACK);
        assert_eq!(status.profile, crate::config::default_profile_name());
        let expected = if cfg!(feature = "edge") {
            "wasmtime"
        } else {
            "wasmi"
        };
        assert_eq!(status.sandbox.in_use.as_str(), expected);
    }

    #[tokio::test]
    async fn edge_profile_on_this_build_resolves_backend_honestly() {
        let tmp = tempfile::tempdir().unwrap();
        let loaded = load(&LoadOptions {
            state_dir: tmp.path().to_path_buf(),
            profile: Some("edge".into()),
            ..Default::default()
        });
        let engine = Engine::start(loaded, Vec::new());
        let h = engine.handle();
        let status = h
            .request::<methods::Status>(Default::default())
            .await
            .unwrap();
        if cfg!(feature = "edge") {
            assert_eq!(status.sandbox.in_use.as_str(), "wasmtime");
            assert!(status.sandbox.fallback_reason.is_none());
        } else {
            assert_eq!(status.sandbox.in_use.as_str(), "wasmi");
            assert!(
                status
                    .sandbox
                    .fallback_reason
                    .as_deref()
                    .is_some_and(|r| r.contains("core build"))
            );
            let health = h
                .request::<methods::Health>(Default::default())
                .await
                .unwrap();
            assert!(!health.ok);
        }
    }

    #[tokio::test]
    async fn config_get_by_key_and_missing_key() {
        let (_tmp, engine) = engine();
        let h = engine.handle();
        let v = h
            .call("config.get", serde_json::json!({ "key": "sandbox.fuel" }))
            .await
            .unwrap();
        assert_eq!(v["value"], h.snapshot().config().sandbox.fuel);
        assert!(v["value"].as_u64().is_some_and(|fuel| fuel > 0));
        let err = h
            .call("config.get", serde_json::json!({ "key": "sandbox.nope" }))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn profile_get_shows_profile_values_not_config_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.toml"), "[sandbox]\nfuel = 7\n").unwrap();
        let engine = Engine::start(
            load(&LoadOptions {
                state_dir: tmp.path().to_path_buf(),
                ..Default::default()
            }),
            Vec::new(),
        );
        let h = engine.handle();
        assert_eq!(h.snapshot().config().sandbox.fuel, 7);
        let p = h
            .call("profile.get", serde_json::json!({ "name": "edge" }))
            .await
            .unwrap();
        assert_eq!(p["values"]["sandbox"]["backend"], "wasmtime");
        assert_eq!(p["values"]["sandbox"]["fuel"], 200_000_000);
        let err = h
            .call("profile.get", serde_json::json!({ "name": "zzz" }))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn methods_list_carries_schemas() {
        let (_tmp, engine) = engine();
        let v = engine
            .handle()
            .call("methods.list", Value::Null)
            .await
            .unwrap();
        let methods = v["methods"].as_array().unwrap();
        assert_eq!(methods.len(), METHODS.len());
        let config_get = methods.iter().find(|m| m["name"] == "config.get").unwrap();
        assert!(config_get["paramsSchema"]["properties"]["key"].is_object());
    }

    #[tokio::test]
    async fn reload_reads_the_files_again_and_tells_subscribers() {
        let (tmp, engine) = engine();
        let h = engine.handle();
        let mut events = h.subscribe();
        std::fs::write(tmp.path().join("config.toml"), "[sandbox]\nfuel = 42\n").unwrap();
        let v = h.call("config.reload", Value::Null).await.unwrap();
        assert_eq!(v["errors"], 0);
        assert_eq!(h.snapshot().config().sandbox.fuel, 42);
        assert!(matches!(
            events.recv().await.unwrap(),
            EngineEvent::ConfigReloaded { errors: 0, .. }
        ));
        std::fs::write(tmp.path().join("config.toml"), "[sandbox\n").unwrap();
        let v = h.call("config.reload", Value::Null).await.unwrap();
        assert_eq!(v["errors"], 1, "a broken file is reported, not fatal");
        assert_eq!(
            h.snapshot().config().sandbox.fuel,
            crate::config::load_profile(tmp.path(), crate::config::default_profile_name())
                .config
                .sandbox
                .fuel
        );
    }

    #[tokio::test]
    async fn file_checks_join_the_diagnostics() {
        let tmp = tempfile::tempdir().unwrap();
        let check: FileCheck =
            Arc::new(|_: &Loaded| vec![Diagnostic::error("themes/mine.toml", "bad colour")]);
        let engine = Engine::start(
            load(&LoadOptions {
                state_dir: tmp.path().to_path_buf(),
                ..Default::default()
            }),
            vec![check],
        );
        let health = engine.handle().call("health", Value::Null).await.unwrap();
        assert_eq!(health["ok"], false);
        assert_eq!(health["diagnostics"][0]["message"], "bad colour");
        let status = engine.handle().call("status", Value::Null).await.unwrap();
        assert_eq!(status["configErrors"], 1);
    }

    #[tokio::test]
    async fn events_reach_subscribers() {
        let (_tmp, engine) = engine();
        let h = engine.handle();
        let mut rx = h.subscribe();
        h.emit(EngineEvent::Notice {
            level: crate::config::Level::Warning,
            message: "hello".into(),
        });
        assert_eq!(rx.recv().await.unwrap().summary(), "hello");
    }
}
