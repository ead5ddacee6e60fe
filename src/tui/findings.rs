//! The findings pane's state and actions: the doctor and audit report, the `/` filter, the
//! deep switch, and the round trips that change files (fix, fix all, suppress, undo), each of
//! which asks first in a popup. Drawing is in `panes/findings.rs`.

use serde_json::Value;

use super::action::Action;
use super::app::{Command, Effects, decode};
use super::overlay::{Confirm, Input, InputPurpose, Overlay, Pending};
use crate::engine::Method;
use crate::engine::methods::{
    FindingsFix, FindingsFixAll, FindingsJournal, FindingsScan, FindingsSuppress, FindingsUndo,
};
use crate::findings::{Finding, Report, TerminalInfo};

#[derive(Debug, Clone, Default)]
pub struct FindingsState {
    /// The last `findings.scan` report.
    pub report: Option<Report>,
    /// Text that findings must contain to be listed.
    pub filter: String,
    /// Whether the last scan ran the deep checks; refreshes keep to it.
    pub deep_scan: bool,
}

impl FindingsState {
    /// The findings listed, after the filter; the pane's selection indexes this list.
    pub fn rows(&self) -> Vec<&Finding> {
        let Some(report) = &self.report else {
            return Vec::new();
        };
        let filter = self.filter.to_lowercase();
        report
            .findings
            .iter()
            .filter(|f| {
                filter.is_empty()
                    || f.check_id.to_lowercase().contains(&filter)
                    || f.title.to_lowercase().contains(&filter)
                    || f.path
                        .as_ref()
                        .is_some_and(|p| p.to_lowercase().contains(&filter))
            })
            .collect()
    }

    /// The finding at the cursor row `selected`, clamped to the list.
    pub fn selected(&self, selected: usize) -> Option<&Finding> {
        let rows = self.rows();
        let index = selected.min(rows.len().checked_sub(1)?);
        rows.get(index).copied()
    }

    /// Run the doctor and the audit for this terminal, deep when the switch is on.
    pub fn scan(&self, terminal: TerminalInfo) -> Command {
        Command::Call {
            method: FindingsScan::NAME,
            params: serde_json::json!({ "deep": self.deep_scan, "terminal": terminal }),
        }
    }

    /// The findings actions, from any pane; `selected` is the findings pane's cursor row.
    /// `None`: not a findings action.
    pub fn act(
        &mut self,
        action: Action,
        selected: usize,
        terminal: TerminalInfo,
    ) -> Option<Effects> {
        let mut effects = Effects::default();
        match action {
            Action::FixSelected => {
                if let Some(finding) = self.selected(selected) {
                    match &finding.fix {
                        Some(fix) => {
                            effects.popup = Some(Overlay::Confirm(Confirm {
                                title: format!("fix {}", finding.check_id),
                                body: format!("{}\n\n{}", fix.description, fix.diff.trim_end()),
                                scroll: 0,
                                on_yes: Pending::Fix {
                                    fix_id: fix.id.clone(),
                                },
                            }))
                        }
                        None => {
                            effects.line =
                                Some(format!("{} has no automatic fix", finding.check_id))
                        }
                    }
                }
            }
            Action::FixAll => {
                let Some(report) = &self.report else {
                    return Some(effects);
                };
                let fixes: Vec<String> = report
                    .findings
                    .iter()
                    .filter_map(|f| f.fix.as_ref())
                    .map(|fix| format!("• {}", fix.description))
                    .collect();
                if fixes.is_empty() {
                    effects.line = Some("nothing to fix".into());
                } else {
                    effects.popup = Some(Overlay::Confirm(Confirm {
                        title: format!("apply {} fix(es)", fixes.len()),
                        body: fixes.join("\n"),
                        scroll: 0,
                        on_yes: Pending::FixAll,
                    }));
                }
            }
            Action::Suppress => {
                if let Some(finding) = self.selected(selected) {
                    let (check_id, path) = (finding.check_id.clone(), finding.path.clone());
                    effects.popup = Some(Overlay::Input(Input {
                        prompt: format!("why accept {check_id}? "),
                        text: String::new(),
                        purpose: InputPurpose::Suppress { check_id, path },
                    }));
                }
            }
            // Fetch the journal first, so the confirm names what will be undone.
            Action::UndoFix => effects.commands.push(Command::Call {
                method: FindingsJournal::NAME,
                params: Value::Null,
            }),
            Action::DeepScan => {
                self.deep_scan = !self.deep_scan;
                effects.focus = true;
                effects.commands.push(self.scan(terminal));
            }
            Action::Filter => {
                effects.focus = true;
                effects.popup = Some(Overlay::Input(Input {
                    prompt: "filter: ".into(),
                    text: self.filter.clone(),
                    purpose: InputPurpose::Filter,
                }));
            }
            _ => return None,
        }
        Some(effects)
    }

    /// The engine call a confirmed fix, fix-all or undo starts; `None` for other work.
    pub fn confirmed(pending: &Pending) -> Option<Command> {
        let (method, params) = match pending {
            Pending::Fix { fix_id } => (FindingsFix::NAME, serde_json::json!({ "fixId": fix_id })),
            Pending::FixAll => (FindingsFixAll::NAME, Value::Null),
            Pending::Undo { seq } => (FindingsUndo::NAME, serde_json::json!({ "seq": seq })),
            Pending::MemoryReindex => return None,
        };
        Some(Command::Call { method, params })
    }

    /// A submitted filter or suppression reason.
    pub fn submit(&mut self, input: Input) -> Effects {
        let mut effects = Effects::default();
        match input.purpose {
            InputPurpose::Filter => self.filter = input.text.trim().to_string(),
            InputPurpose::Suppress { check_id, path } => {
                if input.text.trim().is_empty() {
                    effects.line = Some("a suppression needs a reason; nothing changed".into());
                } else {
                    effects.commands.push(Command::Call {
                        method: FindingsSuppress::NAME,
                        params: serde_json::json!({
                            "checkId": check_id, "path": path, "reason": input.text.trim()
                        }),
                    });
                }
            }
        }
        effects
    }

    /// Whether an answer to `method` is this pane's.
    pub fn owns(method: &str) -> bool {
        matches!(
            method,
            FindingsScan::NAME
                | FindingsFix::NAME
                | FindingsSuppress::NAME
                | FindingsFixAll::NAME
                | FindingsJournal::NAME
                | FindingsUndo::NAME
        )
    }

    /// A successful answer to one of the methods [`owns`](Self::owns) lists.
    pub fn apply(&mut self, method: &str, value: Value) -> Result<Effects, serde_json::Error> {
        let mut effects = Effects::default();
        match method {
            FindingsScan::NAME => self.report = Some(decode::<FindingsScan>(value)?),
            FindingsFix::NAME | FindingsSuppress::NAME => {
                // Both answer with the same `Applied` record.
                let applied = decode::<FindingsFix>(value)?;
                effects.line = Some(match applied.journal_seq {
                    Some(seq) if applied.changed => {
                        format!("applied {} (undo: u, #{seq})", applied.fix_id)
                    }
                    _ => format!("{} was already in place", applied.fix_id),
                });
            }
            FindingsFixAll::NAME => {
                let result = decode::<FindingsFixAll>(value)?;
                let changed = result.applied.iter().filter(|a| a.changed).count();
                effects.line = Some(match result.failed.first() {
                    None => format!("applied {changed} fix(es)"),
                    // The first refusal says why; the rest stay listed in the pane.
                    Some(first) => format!(
                        "applied {changed} fix(es); {} refused: {}",
                        result.failed.len(),
                        first.error.message
                    ),
                });
            }
            FindingsJournal::NAME => {
                let journal = decode::<FindingsJournal>(value)?;
                match journal.entries.iter().rev().find(|e| !e.undone) {
                    Some(entry) => {
                        effects.popup = Some(Overlay::Confirm(Confirm {
                            title: format!("undo fix #{}", entry.seq),
                            body: format!("{}\n\n{}", entry.description, entry.fix_id),
                            scroll: 0,
                            on_yes: Pending::Undo { seq: entry.seq },
                        }))
                    }
                    None => effects.line = Some("no applied fix to undo".into()),
                }
            }
            FindingsUndo::NAME => {
                let entry = decode::<FindingsUndo>(value)?;
                effects.line = Some(format!("undid #{} {}", entry.seq, entry.fix_id));
            }
            _ => {}
        }
        Ok(effects)
    }
}
