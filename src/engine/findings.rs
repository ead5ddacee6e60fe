//! The `doctor.run`, `security.audit` and `findings.*` methods: scans, fixes, undo, journal.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::methods::{Method, NoParams};
use super::{EngineError, EngineHandle, ErrorCode};
use crate::findings::{self, Report, Selection, Severity, TerminalInfo, fix};

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanParams {
    /// Slower checks too: secret scans of stored files, live provider probes.
    #[serde(default)]
    pub deep: bool,
    /// Check ids (or dotted prefixes such as `fs.config`) to run; all when empty.
    #[serde(default)]
    pub only: Vec<String>,
    /// Check ids or prefixes to leave out.
    #[serde(default)]
    pub skip: Vec<String>,
    /// `ok` is false when a finding is at or above this severity (default `warn`).
    #[serde(default)]
    pub severity_min: Option<Severity>,
    /// The terminal the TUI runs in, for the terminal checks.
    #[serde(default)]
    pub terminal: Option<TerminalInfo>,
}

/// Which registries a scan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Doctor,
    Audit,
    Both,
}

/// Runs on a blocking thread (the memory checks wait for the engine's memory slot).
fn scan_blocking(
    engine: &EngineHandle,
    snapshot: &crate::engine::Snapshot,
    scope: Scope,
    params: &ScanParams,
) -> Report {
    let ctx = findings::Context {
        snapshot,
        deep: params.deep,
        terminal: params.terminal,
        memory: findings::MemoryAccess::shared(engine.memory_slot()),
    };
    let registry: Vec<&findings::Check> = match scope {
        Scope::Doctor => findings::checks::DOCTOR.iter().collect(),
        Scope::Audit => findings::checks::AUDIT.iter().collect(),
        Scope::Both => findings::checks::DOCTOR
            .iter()
            .chain(findings::checks::AUDIT)
            .collect(),
    };
    findings::run(
        &registry,
        &ctx,
        &Selection {
            only: params.only.clone(),
            skip: params.skip.clone(),
        },
        &snapshot.config().security.audit.suppressions,
        params.severity_min.unwrap_or(Severity::Warn),
    )
}

async fn scan(
    engine: &EngineHandle,
    scope: Scope,
    params: ScanParams,
) -> Result<Report, EngineError> {
    let snapshot = engine.snapshot();
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || scan_blocking(&engine, &snapshot, scope, &params))
        .await
        .map_err(|e| EngineError::internal(format!("checks failed: {e}")))
}

/// The three report methods differ only in which registries they run.
macro_rules! scan_method {
    ($name:ident, $wire:literal, $scope:expr, $description:literal) => {
        pub struct $name;

        impl Method for $name {
            const NAME: &'static str = $wire;
            const DESCRIPTION: &'static str = $description;
            type Params = ScanParams;
            type Output = Report;

            async fn run(engine: &EngineHandle, params: ScanParams) -> Result<Report, EngineError> {
                scan(engine, $scope, params).await
            }
        }
    };
}

scan_method!(
    DoctorRun,
    "doctor.run",
    Scope::Doctor,
    "Checks that the installation is healthy: config, secrets resolve, state dir, profile vs build, memory store and embedder, providers, voice, logs."
);
scan_method!(
    SecurityAudit,
    "security.audit",
    Scope::Audit,
    "Audits permissions, stored secrets, sandbox limits and provider transport; `deep` also scans stored files for leaked secrets."
);
scan_method!(
    FindingsScan,
    "findings.scan",
    Scope::Both,
    "Doctor and security audit together, as the findings pane shows them."
);

fn fix_error(error: fix::FixError) -> EngineError {
    use fix::FixError as E;
    let code = match &error {
        E::Symlink(_) | E::Refused(_) | E::Conflict { .. } => ErrorCode::Denied,
        E::NotInJournal(_) | E::NothingToUndo => ErrorCode::NotFound,
        E::UnsafeJournal(_) => ErrorCode::Denied,
        E::BadConfig { .. } => ErrorCode::InvalidRequest,
        E::Io { .. } | E::RevertFailed { .. } => ErrorCode::Internal,
    };
    EngineError::new(code, error.to_string())
}

/// After a change on disk: read the config again. The reload's ConfigReloaded event makes
/// every face fetch fresh status, configuration and findings.
fn after_change(engine: &EngineHandle) {
    engine.reload();
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FixParams {
    /// The `fix.id` of a finding.
    pub fix_id: String,
    /// Show the diff and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

pub struct FindingsFix;

impl Method for FindingsFix {
    const NAME: &'static str = "findings.fix";
    const DESCRIPTION: &'static str = "Applies one finding's fix (or shows its diff with dryRun), with backups and an undo journal entry.";
    type Params = FixParams;
    type Output = fix::Applied;

    async fn run(engine: &EngineHandle, params: FixParams) -> Result<fix::Applied, EngineError> {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = engine.snapshot();
            let report = scan_blocking(&engine, &snapshot, Scope::Both, &ScanParams::default());
            let plan = report
                .findings
                .iter()
                .chain(report.suppressed.iter().map(|s| &s.finding))
                .filter_map(|f| f.plan.as_ref())
                .find(|p| p.id == params.fix_id)
                .ok_or_else(|| {
                    EngineError::not_found(format!(
                        "no current finding has fix '{}'; it may be fixed already",
                        params.fix_id
                    ))
                })?;
            if params.dry_run {
                return Ok(fix::Applied {
                    fix_id: plan.id.clone(),
                    changed: false,
                    journal_seq: None,
                    diff: plan.dry_run(),
                });
            }
            let applied = plan
                .apply(&findings::state_paths(&snapshot).journal)
                .map_err(fix_error)?;
            if applied.changed {
                after_change(&engine);
            }
            Ok(applied)
        })
        .await
        .map_err(|e| EngineError::internal(format!("fix failed: {e}")))?
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FixAllParams {
    #[serde(default)]
    pub dry_run: bool,
    /// `doctor`, `audit` or `all` (default).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixFailure {
    pub fix_id: String,
    pub error: EngineError,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixAllResult {
    pub dry_run: bool,
    pub applied: Vec<fix::Applied>,
    pub failed: Vec<FixFailure>,
}

pub struct FindingsFixAll;

impl Method for FindingsFixAll {
    const NAME: &'static str = "findings.fixAll";
    const DESCRIPTION: &'static str = "Applies every available fix (suppressed findings excluded), each with its own undo entry; with dryRun, lists their diffs.";
    type Params = FixAllParams;
    type Output = FixAllResult;

    async fn run(engine: &EngineHandle, params: FixAllParams) -> Result<FixAllResult, EngineError> {
        let scope = match params.scope.as_deref() {
            None | Some("all") => Scope::Both,
            Some("doctor") => Scope::Doctor,
            Some("audit") => Scope::Audit,
            Some(other) => {
                return Err(EngineError::invalid_request(format!(
                    "scope '{other}' is not doctor, audit or all"
                )));
            }
        };
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = engine.snapshot();
            let scan_params = ScanParams {
                only: params.only,
                skip: params.skip,
                ..Default::default()
            };
            let report = scan_blocking(&engine, &snapshot, scope, &scan_params);
            let journal = findings::state_paths(&snapshot).journal;
            let mut result = FixAllResult {
                dry_run: params.dry_run,
                applied: Vec::new(),
                failed: Vec::new(),
            };
            for plan in report.fixable().filter_map(|f| f.plan.as_ref()) {
                if params.dry_run {
                    result.applied.push(fix::Applied {
                        fix_id: plan.id.clone(),
                        changed: false,
                        journal_seq: None,
                        diff: plan.dry_run(),
                    });
                    continue;
                }
                match plan.apply(&journal) {
                    Ok(applied) => result.applied.push(applied),
                    Err(e) => result.failed.push(FixFailure {
                        fix_id: plan.id.clone(),
                        error: fix_error(e),
                    }),
                }
            }
            if result.applied.iter().any(|a| a.changed) {
                after_change(&engine);
            }
            result
        })
        .await
        .map_err(|e| EngineError::internal(format!("fixes failed: {e}")))
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UndoParams {
    /// The journal number of the fix to undo; the newest when left out.
    #[serde(default)]
    pub seq: Option<u64>,
}

pub struct FindingsUndo;

impl Method for FindingsUndo {
    const NAME: &'static str = "findings.undo";
    const DESCRIPTION: &'static str = "Reverts the newest applied fix (or the one numbered `seq`) exactly; refuses when a file changed since.";
    type Params = UndoParams;
    type Output = fix::JournalEntry;

    async fn run(
        engine: &EngineHandle,
        params: UndoParams,
    ) -> Result<fix::JournalEntry, EngineError> {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let journal = findings::state_paths(&engine.snapshot()).journal;
            let mut entry = fix::undo(&journal, params.seq).map_err(fix_error)?;
            after_change(&engine);
            // Undo data holds earlier file contents (possibly a removed literal key).
            entry.undo.clear();
            Ok(entry)
        })
        .await
        .map_err(|e| EngineError::internal(format!("undo failed: {e}")))?
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalResult {
    pub entries: Vec<fix::JournalEntry>,
}

pub struct FindingsJournal;

impl Method for FindingsJournal {
    const NAME: &'static str = "findings.journal";
    const DESCRIPTION: &'static str =
        "Every applied fix, oldest first, with whether it was undone.";
    type Params = NoParams;
    type Output = JournalResult;

    async fn run(engine: &EngineHandle, _: NoParams) -> Result<JournalResult, EngineError> {
        let journal = findings::state_paths(&engine.snapshot()).journal;
        let mut entries = tokio::task::spawn_blocking(move || fix::journal(&journal))
            .await
            .map_err(|e| EngineError::internal(format!("journal read failed: {e}")))?
            .map_err(fix_error)?;
        // Undo data holds earlier file contents; the listing says what, not what was there.
        for entry in &mut entries {
            entry.undo.clear();
        }
        Ok(JournalResult { entries })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SuppressParams {
    pub check_id: String,
    /// Only this finding's path; every path of the check when left out.
    #[serde(default)]
    pub path: Option<String>,
    pub reason: String,
}

pub struct FindingsSuppress;

impl Method for FindingsSuppress {
    const NAME: &'static str = "findings.suppress";
    const DESCRIPTION: &'static str = "Accepts a finding on purpose: adds a [[security.audit.suppressions]] entry to config.toml (undoable like a fix).";
    type Params = SuppressParams;
    type Output = fix::Applied;

    async fn run(
        engine: &EngineHandle,
        params: SuppressParams,
    ) -> Result<fix::Applied, EngineError> {
        if params.reason.trim().is_empty() {
            return Err(EngineError::invalid_request(
                "a suppression needs a reason, so the next reader knows why",
            ));
        }
        if params.check_id.trim().is_empty() {
            return Err(EngineError::invalid_request("checkId is empty"));
        }
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = engine.snapshot();
            let already = snapshot
                .config()
                .security
                .audit
                .suppressions
                .iter()
                .any(|s| s.check_id == params.check_id && s.path == params.path);
            if already {
                return Ok(fix::Applied {
                    fix_id: format!("suppress:{}", params.check_id),
                    changed: false,
                    journal_seq: None,
                    diff: String::new(),
                });
            }
            let mut table = toml::Table::new();
            table.insert("check_id".into(), params.check_id.clone().into());
            if let Some(path) = &params.path {
                table.insert("path".into(), path.clone().into());
            }
            table.insert("reason".into(), params.reason.trim().to_string().into());
            let plan = fix::Plan {
                id: format!("suppress:{}", params.check_id),
                check_id: params.check_id.clone(),
                description: format!("suppress {}: {}", params.check_id, params.reason.trim()),
                steps: vec![fix::Step::AppendConfig {
                    file: snapshot.loaded.paths.config_file.clone(),
                    key: vec!["security".into(), "audit".into(), "suppressions".into()],
                    table,
                }],
            };
            let applied = plan
                .apply(&findings::state_paths(&snapshot).journal)
                .map_err(fix_error)?;
            after_change(&engine);
            Ok(applied)
        })
        .await
        .map_err(|e| EngineError::internal(format!("suppress failed: {e}")))?
    }
}
