//! The providers pane's actions and answers: probe, reset and reorder the chain. The
//! chain's state (`providers.list`) and the self-heal timeline (`telemetry.recent`) are kept
//! in the app's [`EngineView`], since the conversations pane reads them too; the voice
//! section has its own state in `tui::voice`. Drawing is in `panes/providers.rs`.

use serde_json::Value;

use super::action::Action;
use super::app::{Command, Effects, EngineView, decode};
use crate::engine::Method;
use crate::engine::chat::{
    ProvidersList, ProvidersProbe, ProvidersReorder, ProvidersReset, TelemetryRecent,
};

/// Ask for the chain's state again (after a turn's attempts or a health change).
pub fn list() -> Command {
    Command::Call {
        method: ProvidersList::NAME,
        params: Value::Null,
    }
}

/// The pane's data: the chain's state and the self-heal timeline.
pub fn refresh() -> Vec<Command> {
    vec![
        list(),
        Command::Call {
            method: TelemetryRecent::NAME,
            params: serde_json::json!({ "limit": 50 }),
        },
    ]
}

/// The providers actions. `ids` is the chain as the pane lists it and `selected` its cursor
/// row. `None`: not a providers action.
pub fn act(
    action: Action,
    view: &mut EngineView,
    ids: Vec<String>,
    selected: usize,
) -> Option<Effects> {
    let mut effects = Effects::default();
    let at = selected.min(ids.len().saturating_sub(1));
    match action {
        Action::ProvidersProbe => {
            if let Some(id) = ids.get(at) {
                effects.line = Some(format!("probing {id}…"));
                effects.commands.push(Command::Call {
                    method: ProvidersProbe::NAME,
                    params: serde_json::json!({ "id": id }),
                });
            }
        }
        Action::ProvidersReset => {
            if let Some(id) = ids.get(at) {
                effects.commands.push(Command::Call {
                    method: ProvidersReset::NAME,
                    params: serde_json::json!({ "id": id }),
                });
            }
        }
        Action::ProvidersMoveUp | Action::ProvidersMoveDown => {
            let to = if action == Action::ProvidersMoveUp {
                at.checked_sub(1)
            } else {
                (at + 1 < ids.len()).then_some(at + 1)
            };
            if let Some(to) = to {
                let mut ids = ids;
                ids.swap(at, to);
                // Show the new order now; the engine's answer confirms it.
                if let Some(list) = &mut view.providers
                    && to < list.providers.len()
                    && at < list.providers.len()
                {
                    list.providers.swap(at, to);
                }
                effects.select = Some(to);
                effects.commands.push(Command::Call {
                    method: ProvidersReorder::NAME,
                    params: serde_json::json!({ "order": ids }),
                });
            }
        }
        _ => return None,
    }
    Some(effects)
}

/// Whether an answer to `method` is this pane's.
pub fn owns(method: &str) -> bool {
    matches!(
        method,
        ProvidersList::NAME
            | ProvidersReorder::NAME
            | TelemetryRecent::NAME
            | ProvidersProbe::NAME
            | ProvidersReset::NAME
    )
}

/// A successful answer to one of the methods [`owns`] lists.
pub fn apply(
    method: &str,
    value: Value,
    view: &mut EngineView,
) -> Result<Effects, serde_json::Error> {
    let mut effects = Effects::default();
    match method {
        ProvidersList::NAME => view.providers = Some(decode::<ProvidersList>(value)?),
        ProvidersReorder::NAME => {
            let r = decode::<ProvidersReorder>(value)?;
            effects.line = Some(match (&r.note, &r.saved_to) {
                (Some(note), _) => note.clone(),
                (None, Some(file)) => format!("chain order saved to {file}"),
                (None, None) => "chain order changed".into(),
            });
            view.providers = Some(r.list);
        }
        TelemetryRecent::NAME => view.telemetry = Some(decode::<TelemetryRecent>(value)?),
        ProvidersProbe::NAME => {
            let r = decode::<ProvidersProbe>(value)?;
            effects.line = r.probes.first().map(|p| match &p.error {
                None => format!("{} answered in {} ms", p.id, p.latency_ms),
                Some(e) => format!("{} probe failed: {e}", p.id),
            });
        }
        ProvidersReset::NAME => effects.line = Some("cooldown ended, circuit closed".into()),
        _ => {}
    }
    Ok(effects)
}
