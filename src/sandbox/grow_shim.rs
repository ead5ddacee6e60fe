//! Makes `memory.grow` trap on wasmi wherever it would fail, as it does on wasmtime.
//!
//! wasmi asks the resource limiter about a grow only when the new size is within the
//! module's declared maximum and 4 GiB; past either, `memory.grow` quietly returns -1 and
//! no hook runs. So before compiling for wasmi, every `memory.grow` in a module is replaced by
//! a call to an added function that checks those two static bounds first: past them it
//! records the request in an added exported global and traps, which the backend reports as
//! `MemoryLimit`; within them it does the real `memory.grow`, which the limiter governs.
//! Added items go after the module's own (the last function, global and export), so no
//! existing index moves; the binary is spliced, not re-encoded, so it stays cheap.

use std::ops::Range;

use wasmparser::{Operator, Parser, Payload};

/// The export that holds a refused grow's wanted size in pages (0 when none was refused).
pub const MARKER_EXPORT: &str = "openclaw:memory_grow_refused";
/// A 32-bit memory addresses at most 4 GiB: 65,536 pages.
const MAX_PAGES: u64 = 65_536;

/// A module whose grows were rewritten, and the name of its marker export.
pub struct Shimmed {
    pub wasm: Vec<u8>,
    pub marker: String,
}

/// The module with its `memory.grow`s routed through the shim, or `None` when it has none.
/// `wasm` has passed validation.
pub fn shim_memory_grow(wasm: &[u8]) -> Result<Option<Shimmed>, String> {
    // Every `memory.grow` is 0x40 then a memory index of 0 (0x00, or a padded 0x80...).
    if !wasm
        .windows(2)
        .any(|w| w[0] == 0x40 && (w[1] == 0x00 || w[1] == 0x80))
    {
        return Ok(None);
    }
    let mut sections: Vec<(u8, Range<usize>)> = Vec::new();
    let mut imported_funcs = 0u32;
    let mut max_pages = MAX_PAGES;
    let mut exports: Vec<String> = Vec::new();
    // Each body's content range and the ranges of its `memory.grow`s.
    let mut bodies: Vec<(Range<usize>, Vec<Range<usize>>)> = Vec::new();
    let err = |e: wasmparser::BinaryReaderError| e.to_string();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(err)?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone() {
                    if matches!(import.map_err(err)?.ty, wasmparser::TypeRef::Func(_)) {
                        imported_funcs += 1;
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader.clone() {
                    if let Some(max) = memory.map_err(err)?.maximum {
                        max_pages = max.min(MAX_PAGES);
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    exports.push(export.map_err(err)?.name.to_string());
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().map_err(err)?;
                let mut grows = Vec::new();
                let mut pending: Option<usize> = None;
                while !ops.eof() {
                    let (op, offset) = ops.read_with_offset().map_err(err)?;
                    if let Some(start) = pending.take() {
                        grows.push(start..offset);
                    }
                    if matches!(op, Operator::MemoryGrow { .. }) {
                        pending = Some(offset);
                    }
                }
                bodies.push((body.range(), grows));
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            sections.push((id, range));
        }
    }
    if bodies.iter().all(|(_, grows)| grows.is_empty()) {
        return Ok(None);
    }
    let mut marker = MARKER_EXPORT.to_string();
    while exports.contains(&marker) {
        marker.push('_');
    }

    let count = |id: u8| -> Result<u32, String> {
        sections
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(Ok(0), |(_, r)| read_u32(&wasm[r.clone()]).map(|(n, _)| n))
    };
    let types = count(1)?;
    let defined_funcs = count(3)?;
    let globals = count(6)?;
    let shim_index = imported_funcs + defined_funcs;

    let shim_type = [0x60, 0x01, 0x7f, 0x01, 0x7f];
    let mut shim_func = Vec::new();
    leb(&mut shim_func, types);
    let global_entry = vec![0x7e, 0x01, 0x42, 0x00, 0x0b];
    let mut export_entry = Vec::new();
    leb(&mut export_entry, marker.len() as u32);
    export_entry.extend_from_slice(marker.as_bytes());
    export_entry.push(0x03);
    leb(&mut export_entry, globals);
    let shim_body = shim_body(max_pages, globals);
    let mut call = vec![0x10];
    leb(&mut call, shim_index);

    let mut out = Vec::with_capacity(wasm.len() + 128);
    out.extend_from_slice(&wasm[..8]);
    let (mut have_globals, mut have_exports) = (false, false);
    for (id, range) in &sections {
        let content = &wasm[range.clone()];
        if *id != 0 {
            if !have_globals && rank(*id) > rank(6) {
                section(&mut out, 6, &append(&[], &global_entry, 0)?);
                have_globals = true;
            }
            if !have_exports && rank(*id) > rank(7) {
                section(&mut out, 7, &append(&[], &export_entry, 0)?);
                have_exports = true;
            }
        }
        match id {
            1 => section(&mut out, 1, &append(content, &shim_type, 1)?),
            3 => section(&mut out, 3, &append(content, &shim_func, 1)?),
            6 => {
                section(&mut out, 6, &append(content, &global_entry, 1)?);
                have_globals = true;
            }
            7 => {
                section(&mut out, 7, &append(content, &export_entry, 1)?);
                have_exports = true;
            }
            10 => {
                let (n, _) = read_u32(content)?;
                let mut code = Vec::with_capacity(content.len() + 64);
                leb(&mut code, n + 1);
                for (body, grows) in &bodies {
                    let mut text = Vec::with_capacity(body.len() + grows.len() * 4);
                    let mut at = body.start;
                    for grow in grows {
                        text.extend_from_slice(&wasm[at..grow.start]);
                        text.extend_from_slice(&call);
                        at = grow.end;
                    }
                    text.extend_from_slice(&wasm[at..body.end]);
                    leb(&mut code, text.len() as u32);
                    code.extend_from_slice(&text);
                }
                leb(&mut code, shim_body.len() as u32);
                code.extend_from_slice(&shim_body);
                section(&mut out, 10, &code);
            }
            _ => section(&mut out, *id, content),
        }
    }
    Ok(Some(Shimmed { wasm: out, marker }))
}

/// `(func (param $delta i32) (result i32) (local $want i64) ...)`: traps past the static
/// bounds with the wanted size in the marker global, else grows.
fn shim_body(max_pages: u64, marker_global: u32) -> Vec<u8> {
    let mut b = vec![0x01, 0x01, 0x7e]; // one local: i64
    b.extend_from_slice(&[0x20, 0x00, 0xad]); // local.get $delta; i64.extend_i32_u
    b.extend_from_slice(&[0x3f, 0x00, 0xad, 0x7c]); // memory.size; i64.extend_i32_u; i64.add
    b.extend_from_slice(&[0x22, 0x01, 0x42]); // local.tee $want; i64.const
    sleb(&mut b, max_pages as i64);
    b.extend_from_slice(&[0x56, 0x04, 0x40]); // i64.gt_u; if
    b.extend_from_slice(&[0x20, 0x01, 0x24]); // local.get $want; global.set
    leb(&mut b, marker_global);
    b.extend_from_slice(&[0x00, 0x0b]); // unreachable; end
    b.extend_from_slice(&[0x20, 0x00, 0x40, 0x00, 0x0b]); // local.get $delta; memory.grow; end
    b
}

/// Where a section id goes in the binary's section order (the data count section, 12, sits
/// between elements and code).
fn rank(id: u8) -> u8 {
    match id {
        12 => 10,
        10 => 11,
        11 => 12,
        other => other,
    }
}

/// A vector section's content with one more entry at its end.
fn append(content: &[u8], entry: &[u8], present: u8) -> Result<Vec<u8>, String> {
    let (n, rest) = if present == 1 {
        let (n, used) = read_u32(content)?;
        (n, &content[used..])
    } else {
        (0, content)
    };
    let mut out = Vec::with_capacity(content.len() + entry.len() + 5);
    leb(&mut out, n + 1);
    out.extend_from_slice(rest);
    out.extend_from_slice(entry);
    Ok(out)
}

fn section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    leb(out, content.len() as u32);
    out.extend_from_slice(content);
}

fn leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// A u32 LEB128 and the bytes it took.
fn read_u32(bytes: &[u8]) -> Result<(u32, usize), String> {
    let mut value = 0u32;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("a malformed count".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(wasm: &[u8]) {
        wasmparser::Validator::new_with_features(crate::sandbox::validation::wasm_features())
            .validate_all(wasm)
            .unwrap();
    }

    #[test]
    fn a_module_without_memory_grow_is_left_alone() {
        let wasm = wat::parse_str(
            r#"(module (memory 1) (func (export "f") (result i32) (i32.const 64)))"#,
        )
        .unwrap();
        assert!(shim_memory_grow(&wasm).unwrap().is_none());
    }

    #[test]
    fn every_grow_becomes_a_call_and_the_result_validates() {
        // Without global and export sections, with a name section, and with a grow in two
        // functions and an imported function ahead of them.
        let wasm = wat::parse_str(
            r#"(module
                 (import "openclaw" "now_ms" (func $now (result i64)))
                 (memory 1 3)
                 (func $a (result i32) (memory.grow (i32.const 1)))
                 (func $b (result i32) (drop (memory.grow (i32.const 1))) (memory.grow (i32.const 9))))"#,
        )
        .unwrap();
        let shimmed = shim_memory_grow(&wasm).unwrap().unwrap();
        validate(&shimmed.wasm);
        assert_eq!(shimmed.marker, MARKER_EXPORT);
        let mut grows = 0;
        let mut calls_to_shim = 0;
        for payload in Parser::new(0).parse_all(&shimmed.wasm) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                for op in body.get_operators_reader().unwrap() {
                    match op.unwrap() {
                        Operator::MemoryGrow { .. } => grows += 1,
                        // Function 3: after the import and the two own functions.
                        Operator::Call { function_index: 3 } => calls_to_shim += 1,
                        _ => {}
                    }
                }
            }
        }
        assert_eq!((grows, calls_to_shim), (1, 3), "only the shim grows");
    }

    #[test]
    fn the_marker_name_does_not_collide_with_an_export() {
        let wasm = wat::parse_str(
            r#"(module (memory 1)
                 (global (export "openclaw:memory_grow_refused") i32 (i32.const 0))
                 (func (export "f") (result i32) (memory.grow (i32.const 1))))"#,
        )
        .unwrap();
        let shimmed = shim_memory_grow(&wasm).unwrap().unwrap();
        validate(&shimmed.wasm);
        assert_eq!(shimmed.marker, format!("{MARKER_EXPORT}_"));
    }

    #[test]
    fn leb_encodings_round_trip() {
        for v in [0u32, 1, 127, 128, 65_536, u32::MAX] {
            let mut b = Vec::new();
            leb(&mut b, v);
            assert_eq!(read_u32(&b).unwrap(), (v, b.len()));
        }
        let mut b = Vec::new();
        sleb(&mut b, 65_536);
        assert_eq!(b, [0x80, 0x80, 0x04]);
    }
}
