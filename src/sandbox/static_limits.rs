//! The static limits every module must pass before either backend compiles it.
//!
//! They are checked in the shared validation pass, so a module is refused with the same
//! `invalidModule` reason on both backends, and they are chosen so that every module within
//! them runs on wasmi (whose translator has a register space of 65,535 cells and at most
//! 30,000 locals per function) and compiles in bounded time and memory on both (see
//! `docs/tools.md` and the compile figures in `docs/benchmarks.md`).

use wasmparser::{FuncValidatorAllocations, Parser, Payload, TypeRef, ValidPayload, Validator};

use super::SandboxError;

/// One static limit: its name in `details.limit`, its maximum, and what it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticLimit {
    pub name: &'static str,
    pub max: u64,
    pub what: &'static str,
}

/// Functions, imported and defined together.
pub const FUNCTIONS: StaticLimit = StaticLimit {
    name: "functions",
    max: 10_000,
    what: "functions (imported and defined)",
};
/// Parameters and locals of one function.
pub const LOCALS: StaticLimit = StaticLimit {
    name: "locals",
    max: 10_000,
    what: "locals in one function (parameters included)",
};
/// Bytes of one function body.
pub const BODY_BYTES: StaticLimit = StaticLimit {
    name: "bodyBytes",
    max: 256 * 1024,
    what: "bytes in one function body",
};
/// Bytes of the code section: every body together.
pub const CODE_BYTES: StaticLimit = StaticLimit {
    name: "codeBytes",
    max: 4 * 1024 * 1024,
    what: "bytes of code (all function bodies together)",
};
/// Blocks, loops and ifs open at once in one function.
pub const NESTING: StaticLimit = StaticLimit {
    name: "nesting",
    max: 1_000,
    what: "nested blocks, loops and ifs in one function",
};
/// Values on one function's operand stack at once.
pub const OPERAND_STACK: StaticLimit = StaticLimit {
    name: "operandStack",
    max: 10_000,
    what: "values on one function's operand stack at once",
};
pub const GLOBALS: StaticLimit = StaticLimit {
    name: "globals",
    max: 1_000,
    what: "globals",
};
pub const DATA_SEGMENTS: StaticLimit = StaticLimit {
    name: "dataSegments",
    max: 1_000,
    what: "data segments",
};
pub const ELEMENT_SEGMENTS: StaticLimit = StaticLimit {
    name: "elementSegments",
    max: 1_000,
    what: "element segments",
};

/// Every static limit, in the order `docs/tools.md` lists them.
pub const ALL: [StaticLimit; 9] = [
    FUNCTIONS,
    LOCALS,
    BODY_BYTES,
    CODE_BYTES,
    NESTING,
    OPERAND_STACK,
    GLOBALS,
    DATA_SEGMENTS,
    ELEMENT_SEGMENTS,
];

/// `n` with thousands separators, as the docs write numbers.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn over(limit: StaticLimit, found: u64, function: Option<u32>) -> Result<(), SandboxError> {
    if found <= limit.max {
        return Ok(());
    }
    let whose = function.map_or(String::new(), |f| format!(" (function {f})"));
    Err(SandboxError::InvalidModule {
        reason: format!(
            "the module has {} {}{whose}; the sandbox allows at most {} (static limits in \
             docs/tools.md)",
            grouped(found),
            limit.what,
            grouped(limit.max)
        ),
        limit: Some(limit.name.to_string()),
    })
}

fn invalid(e: wasmparser::BinaryReaderError) -> SandboxError {
    SandboxError::invalid(e.to_string())
}

/// Validate `wasm` with `features` and check every static limit; counts are checked before
/// the work they would cost (a body's locals before they are declared, the code section's
/// size before any body is read).
pub fn validate(wasm: &[u8], features: wasmparser::WasmFeatures) -> Result<(), SandboxError> {
    let mut validator = Validator::new_with_features(features);
    let mut allocs = FuncValidatorAllocations::default();
    let mut functions = 0u64;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone() {
                    if matches!(import.map_err(invalid)?.ty, TypeRef::Func(_)) {
                        functions += 1;
                    }
                }
                over(FUNCTIONS, functions, None)?;
            }
            Payload::FunctionSection(reader) => {
                functions += u64::from(reader.count());
                over(FUNCTIONS, functions, None)?;
            }
            Payload::GlobalSection(reader) => over(GLOBALS, reader.count().into(), None)?,
            Payload::DataSection(reader) => over(DATA_SEGMENTS, reader.count().into(), None)?,
            Payload::ElementSection(reader) => {
                over(ELEMENT_SEGMENTS, reader.count().into(), None)?;
            }
            Payload::CodeSectionStart { size, .. } => over(CODE_BYTES, (*size).into(), None)?,
            _ => {}
        }
        let ValidPayload::Func(to_validate, body) = validator.payload(&payload).map_err(invalid)?
        else {
            continue;
        };
        let mut func = to_validate.into_validator(std::mem::take(&mut allocs));
        let index = func.index();
        over(BODY_BYTES, body.range().len() as u64, Some(index))?;
        let mut declared = u64::from(func.len_locals());
        for group in body.get_locals_reader().map_err(invalid)? {
            declared += u64::from(group.map_err(invalid)?.0);
        }
        over(LOCALS, declared, Some(index))?;
        let mut reader = body.get_binary_reader();
        reader.set_features(features);
        func.read_locals(&mut reader).map_err(invalid)?;
        let (mut stack, mut nesting) = (0u32, 0u32);
        while !reader.eof() {
            let offset = reader.original_position();
            reader
                .visit_operator(&mut func.visitor(offset))
                .map_err(invalid)?
                .map_err(invalid)?;
            stack = stack.max(func.operand_stack_height());
            // The function's own frame is not a nesting level.
            nesting = nesting.max(func.control_stack_height().saturating_sub(1));
            over(OPERAND_STACK, stack.into(), Some(index))?;
            over(NESTING, nesting.into(), Some(index))?;
        }
        func.finish(reader.original_position()).map_err(invalid)?;
        allocs = func.into_allocations();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_as_the_docs_write_them() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(4_194_304), "4,194,304");
    }

    #[test]
    fn docs_tools_md_lists_every_static_limit_as_enforced() {
        let doc = include_str!("../../docs/tools.md");
        for limit in ALL {
            let row = format!("| `{}` | {} |", limit.name, grouped(limit.max));
            assert!(doc.contains(&row), "docs/tools.md lacks the row {row}");
        }
    }
}
