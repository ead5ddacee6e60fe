//! The in-process engine: it owns every store and service, and answers method calls.
//!
//! The TUI, `--batch` and the CLI subcommands are thin faces over [`EngineHandle::call`]; the
//! engine knows nothing of terminals (a test enforces that it never imports ratatui or
//! crossterm).

mod error;
mod event;
pub mod methods;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::broadcast;

pub use error::{EngineError, ErrorCode};
pub use event::EngineEvent;
pub use methods::{METHODS, Method, MethodEntry};

use crate::config::{BackendChoice, Config, Diagnostic, Loaded};

/// Events buffered per subscriber; a slow pane skips ahead rather than blocking the engine.
const EVENT_CAPACITY: usize = 256;

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
    loaded: Loaded,
    /// Diagnostics from the engine's faces (themes, keymaps) join those of the config.
    extra_diagnostics: std::sync::RwLock<Vec<Diagnostic>>,
    started: Instant,
    sandbox_backend: BackendChoice,
    events: broadcast::Sender<EngineEvent>,
}

impl Engine {
    pub fn start(loaded: Loaded) -> Self {
        let sandbox_backend = loaded.config.sandbox.backend.resolve();
        if let Some(reason) = &sandbox_backend.fallback_reason {
            tracing::warn!("{reason}");
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Self {
            handle: EngineHandle {
                inner: Arc::new(Inner {
                    loaded,
                    extra_diagnostics: Default::default(),
                    started: Instant::now(),
                    sandbox_backend,
                    events,
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

    pub fn config(&self) -> &Config {
        &self.inner.loaded.config
    }

    pub fn loaded(&self) -> &Loaded {
        &self.inner.loaded
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    pub fn sandbox_backend(&self) -> &BackendChoice {
        &self.inner.sandbox_backend
    }

    /// Config diagnostics plus those reported by faces (theme and keymap files).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut all = self.inner.loaded.diagnostics.clone();
        if let Ok(extra) = self.inner.extra_diagnostics.read() {
            all.extend(extra.iter().cloned());
        }
        all
    }

    /// Record problems a face found in its own files, so `health` reports them too.
    pub fn add_diagnostics(&self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        if let Ok(mut extra) = self.inner.extra_diagnostics.write() {
            extra.extend(diagnostics);
        }
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
    use crate::config::{LoadOptions, load};

    fn engine() -> (tempfile::TempDir, Engine) {
        let tmp = tempfile::tempdir().unwrap();
        let loaded = load(&LoadOptions {
            state_dir: tmp.path().to_path_buf(),
            ..Default::default()
        });
        (tmp, Engine::start(loaded))
    }

    #[tokio::test]
    async fn every_listed_method_answers_with_default_params() {
        let (_tmp, engine) = engine();
        let h = engine.handle();
        for m in METHODS {
            let result = h.call(m.name, Value::Null).await;
            assert!(result.is_ok(), "{}: {result:?}", m.name);
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
        let engine = Engine::start(loaded);
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
        assert_eq!(v["value"], h.config().sandbox.fuel);
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
        let engine = Engine::start(load(&LoadOptions {
            state_dir: tmp.path().to_path_buf(),
            ..Default::default()
        }));
        let h = engine.handle();
        assert_eq!(h.config().sandbox.fuel, 7);
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
