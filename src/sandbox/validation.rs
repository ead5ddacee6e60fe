//! Checking a module before either backend sees it: WebAssembly text assembled, the one
//! validation both backends share (size, features, static limits, no start function, only
//! the host's imports), the capabilities its imports imply, and errors cut to a bounded size.

use super::{
    Capability, HOST_FUNCTIONS, MAX_ERROR_TEXT_BYTES, MAX_MODULE_BYTES, SandboxError, static_limits,
};

/// Bytes that are WebAssembly text rather than binary: assemble them.
pub fn assemble(bytes: &[u8]) -> Result<Vec<u8>, SandboxError> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes.to_vec());
    }
    wat::parse_bytes(bytes)
        .map(|b| b.into_owned())
        .map_err(|e| SandboxError::invalid(format!("not a WebAssembly module: {e}")))
}

pub(crate) fn wasm_features() -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    F::WASM1 | F::BULK_MEMORY | F::SIGN_EXTENSION | F::SATURATING_FLOAT_TO_INT | F::MULTI_VALUE
}

/// One validation for both backends, so a bad module gets the same answer on each: the
/// binary is well-formed within the enabled features and the static limits
/// ([`static_limits`]), it has no start function (tool code runs only through `run`), and it
/// imports only host functions the sandbox provides.
pub fn validate(wasm: &[u8]) -> Result<(), SandboxError> {
    use wasmparser::{Parser, Payload, TypeRef};
    if wasm.len() > MAX_MODULE_BYTES {
        return Err(SandboxError::invalid(format!(
            "the module is {} bytes; the limit is {MAX_MODULE_BYTES}",
            wasm.len()
        )));
    }
    static_limits::validate(wasm, wasm_features())?;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| SandboxError::invalid(e.to_string()))? {
            Payload::StartSection { .. } => {
                return Err(SandboxError::invalid(
                    "the module has a start function; tools run only through their `run` export",
                ));
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(|e| SandboxError::invalid(e.to_string()))?;
                    let known = import.module == "openclaw"
                        && matches!(import.ty, TypeRef::Func(_))
                        && HOST_FUNCTIONS.iter().any(|(n, _)| *n == import.name);
                    if !known {
                        return Err(SandboxError::invalid(format!(
                            "the module imports {}.{}, which the sandbox does not provide \
                             (see docs/tools.md for the openclaw host functions)",
                            import.module, import.name
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Cut `text` to [`MAX_ERROR_TEXT_BYTES`] at a character boundary, marking the cut.
pub(super) fn clip(mut text: String) -> String {
    if text.len() > MAX_ERROR_TEXT_BYTES {
        let mut end = MAX_ERROR_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The error with every text field within [`MAX_ERROR_TEXT_BYTES`].
pub(super) fn bounded(error: SandboxError) -> SandboxError {
    use SandboxError as E;
    match error {
        E::MemoryLimit { resource, limit } => E::MemoryLimit {
            resource: clip(resource),
            limit,
        },
        E::CapabilityDenied { capability } => E::CapabilityDenied {
            capability: clip(capability),
        },
        E::PolicyDenied { capability, reason } => E::PolicyDenied {
            capability: clip(capability),
            reason: clip(reason),
        },
        E::InvalidModule { reason, limit } => E::InvalidModule {
            reason: clip(reason),
            limit,
        },
        E::HashMismatch { expected, actual } => E::HashMismatch {
            expected: clip(expected),
            actual: clip(actual),
        },
        // One of the stable codes, whatever a backend let through.
        E::Trap { code } => SandboxError::trap(&code),
        E::BadOutput { reason } => E::BadOutput {
            reason: clip(reason),
        },
        E::HostArgument { reason } => E::HostArgument {
            reason: clip(reason),
        },
        E::Host { message } => E::Host {
            message: clip(message),
        },
        other @ (E::OutOfFuel { .. } | E::Timeout { .. } | E::StackOverflow) => other,
    }
}

/// The capabilities a module's imports would use, for audits and `tools.describe`.
pub fn imported_capabilities(wasm: &[u8]) -> Result<Vec<Capability>, SandboxError> {
    use wasmparser::{Parser, Payload};
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ImportSection(reader) =
            payload.map_err(|e| SandboxError::invalid(e.to_string()))?
        {
            for import in reader {
                let import = import.map_err(|e| SandboxError::invalid(e.to_string()))?;
                if let Some((_, Some(cap))) = HOST_FUNCTIONS.iter().find(|(n, _)| *n == import.name)
                    && import.module == "openclaw"
                    && !out.contains(cap)
                {
                    out.push(*cap);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}
