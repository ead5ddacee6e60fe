//! What can go wrong when a tool runs, as one typed error shared by every backend. The engine
//! maps it to a wire code with the details a script can act on (`engine::sandbox`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a tool call failed. Both backends report the same variant for the same cause; the
/// conformance suite (`tests/sandbox_conformance.rs`) holds them to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SandboxError {
    /// The fuel budget ran out before `run` returned.
    #[error("the tool used its whole fuel budget ({fuel} units); raise sandbox.fuel or --fuel")]
    OutOfFuel { fuel: u64 },
    /// The wall-clock deadline passed.
    #[error("the tool did not finish within {timeout_ms} ms (sandbox.timeout_ms or --timeout-ms)")]
    #[serde(rename_all = "camelCase")]
    Timeout { timeout_ms: u64 },
    /// Linear memory, a table or the instance count would exceed its limit.
    #[error("the tool asked for more {resource} than its limit of {limit}")]
    MemoryLimit { resource: String, limit: u64 },
    /// Recursion deeper than the sandbox's stack allows.
    #[error("the tool overflowed its stack (recursion too deep)")]
    StackOverflow,
    /// A host function whose capability was not granted.
    #[error(
        "the tool called a host function that needs the '{capability}' capability, which it \
         was not granted; request it in tool.toml and allow it in the config (or --allow)"
    )]
    CapabilityDenied { capability: String },
    /// A granted capability used against its policy: a path outside the workspace, a host
    /// not on the allowlist, a private address.
    #[error("{capability}: {reason}")]
    PolicyDenied { capability: String, reason: String },
    /// Not a module the sandbox can run: malformed, a feature it does not enable, an
    /// import it does not provide, over a static limit (`limit` names it), or the ABI
    /// exports missing.
    #[error("invalid module: {reason}")]
    InvalidModule {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<String>,
    },
    /// The module's sha256 is not the manifest's pin.
    #[error(
        "the module's sha256 is {actual}, but its manifest pins {expected}; the file changed \
         since it was pinned (re-pin it only if you trust the new file)"
    )]
    HashMismatch { expected: String, actual: String },
    /// Any other WebAssembly trap (`unreachable`, out-of-bounds access, division by
    /// zero...): `code` is one of [`TRAP_CODES`].
    #[error("the tool trapped: {} ({code})", trap_sentence(code))]
    Trap { code: String },
    /// `run` returned something that is not a JSON document within the output cap.
    #[error("bad output: {reason}")]
    BadOutput { reason: String },
    /// A host function was passed an argument it cannot take: over the 256 KiB host-argument
    /// limit, not UTF-8 where text is expected, or not the JSON request it reads.
    #[error("bad host call argument: {reason}")]
    HostArgument { reason: String },
    /// The input or the sandbox itself (not the tool) failed.
    #[error("{message}")]
    Host { message: String },
}

/// The trap codes both backends report, each with its sentence; any other trap is `other`.
pub const TRAP_CODES: &[(&str, &str)] = &[
    ("unreachable", "it reached an `unreachable` instruction"),
    (
        "memory_out_of_bounds",
        "it read or wrote outside its linear memory (in code or a data segment)",
    ),
    (
        "table_out_of_bounds",
        "it used an index outside its table (in code or an element segment)",
    ),
    (
        "indirect_call_to_null",
        "it called through an empty table slot",
    ),
    ("integer_division_by_zero", "it divided an integer by zero"),
    ("integer_overflow", "an integer operation overflowed"),
    (
        "bad_conversion_to_integer",
        "it converted a NaN or out-of-range float to an integer",
    ),
    (
        "bad_signature",
        "an indirect call's function type did not match the function called",
    ),
    ("out_of_system_memory", "the host ran out of memory"),
    (
        "other",
        "the engine stopped it for a reason the sandbox does not name",
    ),
];

fn trap_sentence(code: &str) -> &'static str {
    TRAP_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("the engine stopped it", |(_, sentence)| sentence)
}

impl SandboxError {
    /// The variant's name as it appears in `details.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            SandboxError::OutOfFuel { .. } => "outOfFuel",
            SandboxError::Timeout { .. } => "timeout",
            SandboxError::MemoryLimit { .. } => "memoryLimit",
            SandboxError::StackOverflow => "stackOverflow",
            SandboxError::CapabilityDenied { .. } => "capabilityDenied",
            SandboxError::PolicyDenied { .. } => "policyDenied",
            SandboxError::InvalidModule { .. } => "invalidModule",
            SandboxError::HashMismatch { .. } => "hashMismatch",
            SandboxError::Trap { .. } => "trap",
            SandboxError::BadOutput { .. } => "badOutput",
            SandboxError::HostArgument { .. } => "hostArgument",
            SandboxError::Host { .. } => "host",
        }
    }

    pub fn invalid(reason: impl Into<String>) -> Self {
        SandboxError::InvalidModule {
            reason: reason.into(),
            limit: None,
        }
    }

    /// A trap with a code of [`TRAP_CODES`]; any other code becomes `other`.
    pub fn trap(code: &str) -> Self {
        let known = TRAP_CODES.iter().any(|(c, _)| *c == code);
        SandboxError::Trap {
            code: if known { code } else { "other" }.to_string(),
        }
    }

    pub fn host(message: impl Into<String>) -> Self {
        SandboxError::Host {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_codes_are_stable_and_each_has_a_sentence() {
        assert_eq!(
            SandboxError::trap("Table(Stored { store: StoreId(0) })"),
            SandboxError::Trap {
                code: "other".into()
            }
        );
        for (code, sentence) in TRAP_CODES {
            let text = SandboxError::trap(code).to_string();
            assert!(text.contains(sentence) && text.contains(code), "{text}");
        }
    }
}
