//! Findings: one model for the doctor and the security audit.
//!
//! A [`Check`] looks at the installation and returns [`Finding`]s; a finding may carry a
//! [`fix::Plan`] that the fix engine can show as a dry-run diff, apply with backups and
//! undo. Doctor and audit are two registries over these same types and the same report
//! shape, so every face prints them the same way.

pub mod checks;
pub mod fix;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Snapshot;
use crate::config::Suppression;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Severity::Info),
            "warn" | "warning" => Ok(Severity::Warn),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity '{other}': use info, warn or critical"
            )),
        }
    }
}

/// A fix as every face shows it: what it does and the exact change, before it is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixInfo {
    pub id: String,
    pub description: String,
    /// A unified diff for config edits, one line per mode change, directory or move.
    pub diff: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub check_id: String,
    pub severity: Severity,
    pub title: String,
    /// What is wrong, why it matters, and what to do when there is no automatic fix.
    #[serde(default)]
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<FixInfo>,
    /// The steps behind `fix`; kept out of the wire shape, which carries the diff.
    #[serde(skip)]
    #[schemars(skip)]
    pub plan: Option<fix::Plan>,
}

impl Finding {
    pub fn new(check_id: &str, severity: Severity, title: impl Into<String>) -> Self {
        Self {
            check_id: check_id.to_string(),
            severity,
            title: title.into(),
            detail: String::new(),
            path: None,
            fix: None,
            plan: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Attach a fix; its diff is rendered now, from the files as they are.
    pub fn with_fix(mut self, description: impl Into<String>, steps: Vec<fix::Step>) -> Self {
        let plan = fix::Plan {
            id: match &self.path {
                Some(path) => format!("{}:{path}", self.check_id),
                None => self.check_id.clone(),
            },
            check_id: self.check_id.clone(),
            description: description.into(),
            steps,
        };
        self.fix = Some(FixInfo {
            id: plan.id.clone(),
            description: plan.description.clone(),
            diff: plan.dry_run(),
        });
        self.plan = Some(plan);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuppressedFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub critical: usize,
    pub warn: usize,
    pub info: usize,
}

/// The report of a doctor or audit run: the design's wire shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema_version: u32,
    /// No finding at or above the run's severity threshold.
    pub ok: bool,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub suppressed: Vec<SuppressedFinding>,
}

impl Report {
    pub fn fixable(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.plan.is_some())
    }
}

/// What a check may look at. Built once per run.
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    /// `--deep`: slower checks (scans, live probes).
    pub deep: bool,
    /// Set when the run comes from the TUI, for the terminal checks.
    pub terminal: Option<TerminalInfo>,
    /// How the memory checks reach the store.
    pub memory: MemoryAccess,
}

/// How the memory checks reach the store. LMDB forbids opening one environment twice in a
/// process, so when the engine has the store open the checks look through its handle;
/// otherwise they open it read-only themselves, which other processes holding it (a TUI,
/// an index run) allow.
#[derive(Default)]
pub struct MemoryAccess {
    source: MemorySource,
    /// One look per run, shared by the memory checks.
    look: std::sync::OnceLock<checks::memory::Look>,
}

#[derive(Default)]
enum MemorySource {
    /// Nothing in this process has the store open (tests, tools that hold no engine).
    #[default]
    Closed,
    Open(std::sync::Arc<crate::memory::Memory>),
    /// The owner's store if it has one open; the slot is held during the look, so the
    /// owner (the engine) cannot open the store while the checks have it open read-only.
    Shared(crate::memory::MemorySlot),
}

impl MemoryAccess {
    /// A store this process already has open.
    pub fn open(memory: std::sync::Arc<crate::memory::Memory>) -> Self {
        Self {
            source: MemorySource::Open(memory),
            look: std::sync::OnceLock::new(),
        }
    }

    /// Whatever `slot` holds. The checks then run on a blocking thread, never on the async
    /// runtime (they wait for the slot's lock).
    pub fn shared(slot: crate::memory::MemorySlot) -> Self {
        Self {
            source: MemorySource::Shared(slot),
            look: std::sync::OnceLock::new(),
        }
    }

    /// Run `f` with the open store, if any, while nothing in this process can open it.
    fn with_store<T>(&self, f: impl FnOnce(Option<&crate::memory::Memory>) -> T) -> T {
        match &self.source {
            MemorySource::Closed => f(None),
            MemorySource::Open(memory) => f(Some(memory)),
            MemorySource::Shared(slot) => f(slot.blocking_lock().as_deref()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TerminalInfo {
    pub width: u16,
    pub height: u16,
    /// 16, 256 or 16777216 (truecolor), as the environment advertises.
    pub colors: u32,
}

/// One small, separate check. `ids` lists the check ids (or dotted id families, such as
/// `fs.config`) it can report, so `--only` and `--skip` can select checks without running
/// them.
pub struct Check {
    pub ids: &'static [&'static str],
    /// Runs only with `--deep`.
    pub deep_only: bool,
    pub run: fn(&Context<'_>) -> Vec<Finding>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    /// Check ids (or dotted prefixes, e.g. `fs.config`) to run; all when empty.
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
}

fn id_matches(id: &str, pattern: &str) -> bool {
    id == pattern
        || id
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl Selection {
    fn wants(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| id_matches(id, p)))
            && !self.skip.iter().any(|p| id_matches(id, p))
    }

    /// Whether a check reporting `id` (a whole id or a family prefix) may report anything
    /// selected: `--only fs.config.symlink` runs the `fs.config` family.
    fn runs(&self, id: &str) -> bool {
        (self.only.is_empty()
            || self
                .only
                .iter()
                .any(|p| id_matches(id, p) || id_matches(p, id)))
            && !self.skip.iter().any(|p| id_matches(id, p))
    }
}

/// Run a registry and build its report.
pub fn run(
    registry: &[&Check],
    ctx: &Context<'_>,
    selection: &Selection,
    suppressions: &[Suppression],
    severity_min: Severity,
) -> Report {
    let mut findings: Vec<Finding> = registry
        .iter()
        .filter(|check| ctx.deep || !check.deep_only)
        .filter(|check| check.ids.iter().any(|id| selection.runs(id)))
        .flat_map(|check| (check.run)(ctx))
        .filter(|finding| selection.wants(&finding.check_id))
        .collect();
    // Worst first; stable within a severity, so checks keep their registry order.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let (findings, suppressed) = apply_suppressions(findings, suppressions);
    let mut summary = Summary::default();
    for f in &findings {
        match f.severity {
            Severity::Critical => summary.critical += 1,
            Severity::Warn => summary.warn += 1,
            Severity::Info => summary.info += 1,
        }
    }
    Report {
        schema_version: SCHEMA_VERSION,
        // Summaries describe; they are never a reason to fail a run.
        ok: findings
            .iter()
            .filter(|f| !f.check_id.starts_with("summary."))
            .all(|f| f.severity < severity_min),
        summary,
        findings,
        suppressed,
    }
}

fn apply_suppressions(
    findings: Vec<Finding>,
    suppressions: &[Suppression],
) -> (Vec<Finding>, Vec<SuppressedFinding>) {
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    for finding in findings {
        let rule = suppressions.iter().find(|s| {
            s.check_id == finding.check_id
                && s.path
                    .as_ref()
                    .is_none_or(|p| finding.path.as_ref() == Some(p))
        });
        match rule {
            Some(rule) => suppressed.push(SuppressedFinding {
                finding,
                reason: rule.reason.clone(),
            }),
            None => kept.push(finding),
        }
    }
    (kept, suppressed)
}

/// A path as findings show it.
pub fn show(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// The state-dir paths the checks look at.
pub fn state_paths(snapshot: &Snapshot) -> StatePaths {
    let dir = snapshot.loaded.paths.state_dir.clone();
    StatePaths {
        logs: dir.join("logs"),
        tools: dir.join("tools"),
        sessions: dir.join("sessions"),
        memory: dir.join("memory"),
        journal: dir.join("fixes"),
        dir,
    }
}

pub struct StatePaths {
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub tools: PathBuf,
    pub sessions: PathBuf,
    pub memory: PathBuf,
    /// Where the fix journal lives.
    pub journal: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_matches_ids_and_dotted_prefixes() {
        let s = Selection {
            only: vec!["fs.config".into()],
            skip: vec!["fs.config.symlink".into()],
        };
        assert!(s.wants("fs.config.perms_world_readable"));
        assert!(!s.wants("fs.config.symlink"));
        assert!(!s.wants("fs.configuration"), "prefixes end at a dot");
        assert!(!s.wants("fs.state_dir.perms_readable"));
        assert!(Selection::default().wants("anything"));
        let exact = Selection {
            only: vec!["fs.config.symlink".into()],
            skip: Vec::new(),
        };
        assert!(
            exact.runs("fs.config"),
            "the family runs for one of its ids"
        );
        assert!(!exact.runs("fs.logs"));
    }

    #[test]
    fn suppressions_move_findings_with_their_reason() {
        let findings = vec![
            Finding::new("a.b", Severity::Critical, "x").path("/p"),
            Finding::new("a.b", Severity::Critical, "y").path("/q"),
            Finding::new("c.d", Severity::Warn, "z"),
        ];
        let rules = vec![Suppression {
            check_id: "a.b".into(),
            path: Some("/p".into()),
            reason: "accepted".into(),
        }];
        let (kept, suppressed) = apply_suppressions(findings, &rules);
        assert_eq!(kept.len(), 2);
        assert_eq!(suppressed.len(), 1);
        assert_eq!(suppressed[0].reason, "accepted");
        assert_eq!(suppressed[0].finding.path.as_deref(), Some("/p"));
        let json = serde_json::to_value(&suppressed[0]).unwrap();
        assert_eq!(json["checkId"], "a.b", "flattened into the finding's shape");
        assert_eq!(json["reason"], "accepted");
    }
}
