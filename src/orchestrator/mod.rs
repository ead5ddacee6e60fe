//! The turn loop and the self-heal policy: classify, retry, back off, cool down, break the
//! circuit, fall back; and the telemetry every turn carries.

pub mod guard;
pub mod heal;
pub mod health;
pub mod host;
pub mod runtime;
pub mod sessions;
pub mod telemetry;
#[cfg(test)]
mod tests;
pub mod tools;

pub use heal::{Cancel, ChainEntry, HealError, Healer, Next, Progress, Reply, backoff, decide};
pub use health::{Admission, Change, CircuitState, HealthBook, HealthView};
pub use host::{AgentError, AgentErrorKind, HostTool, TurnEvent, TurnHost};
pub use telemetry::{Attempt, History, SelfHealing, TurnRecord};
