//! Checks of installed tools (`<state>/tools/NAME/tool.toml`): manifests that do not load,
//! modules without a sha256 pin, and (`--deep`) modules that no longer match their pin or
//! import host functions their manifest does not ask for.

use crate::findings::fix::Step;
use crate::findings::{Context, Finding, Severity, state_paths};
use crate::sandbox::manifest::{self, ToolSource};
use crate::sandbox::{Capability, assemble, imported_capabilities, sha256_hex};

pub fn manifests(ctx: &Context<'_>) -> Vec<Finding> {
    let (tools, problems) = manifest::discover(&state_paths(ctx.snapshot).tools);
    let mut out: Vec<Finding> = problems
        .into_iter()
        .map(|p| {
            Finding::new(
                "tools.manifest_invalid",
                Severity::Warn,
                "A tool's manifest cannot be used",
            )
            .detail(format!(
                "{} (the tool is left out until this is fixed)",
                p.message
            ))
            .path(p.path)
        })
        .collect();
    for tool in tools.iter().filter(|t| t.source == ToolSource::Installed) {
        if tool.manifest.sha256.is_some() {
            continue;
        }
        let Some(dir) = &tool.dir else { continue };
        let manifest_file = dir.join("tool.toml");
        let mut finding = Finding::new(
            "tools.unpinned_module",
            Severity::Warn,
            format!(
                "Tool '{}' runs a module without a sha256 pin",
                tool.manifest.name
            ),
        )
        .detail(
            "Whoever can write the module file can change what the tool does, unnoticed. \
             The fix pins the module as it is now: check it is the one you meant to install.",
        )
        .path(manifest_file.display().to_string());
        if let Ok(bytes) = tool.module_bytes() {
            let hash = sha256_hex(&bytes);
            finding = finding.with_fix(
                format!("pin {} to sha256 {hash}", tool.manifest.module),
                vec![Step::SetConfig {
                    file: manifest_file,
                    key: vec!["sha256".into()],
                    value: toml::Value::String(hash),
                }],
            );
        }
        out.push(finding);
    }
    out
}

/// `--deep`: read every installed module.
pub fn modules(ctx: &Context<'_>) -> Vec<Finding> {
    let (tools, _) = manifest::discover(&state_paths(ctx.snapshot).tools);
    let mut out = Vec::new();
    for tool in tools.iter().filter(|t| t.source == ToolSource::Installed) {
        let path = tool
            .module_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let bytes = match tool.module_bytes() {
            Ok(b) => b,
            Err(e) => {
                out.push(
                    Finding::new(
                        "tools.module_unreadable",
                        Severity::Warn,
                        format!("Tool '{}' has no readable module", tool.manifest.name),
                    )
                    .detail(e.to_string())
                    .path(path),
                );
                continue;
            }
        };
        if let Some(pin) = &tool.manifest.sha256 {
            let actual = sha256_hex(&bytes);
            if !pin.trim().eq_ignore_ascii_case(&actual) {
                out.push(
                    Finding::new(
                        "tools.pin_mismatch",
                        Severity::Critical,
                        format!(
                            "Tool '{}' does not match its sha256 pin",
                            tool.manifest.name
                        ),
                    )
                    .detail(format!(
                        "The module's sha256 is {actual}, the manifest pins {}. The sandbox \
                         refuses to run it. Find out who changed the file before re-pinning.",
                        pin.trim()
                    ))
                    .path(path.clone()),
                );
            }
        }
        let imported = assemble(&bytes).and_then(|wasm| imported_capabilities(&wasm));
        let Ok(imported) = imported else { continue };
        let requested = &tool.manifest.capabilities;
        let beyond: Vec<&str> = imported
            .iter()
            .filter(|c| !requested.has(**c))
            .map(|c| Capability::as_str(*c))
            .collect();
        if !beyond.is_empty() {
            out.push(
                Finding::new(
                    "tools.capabilities_exceed_manifest",
                    Severity::Warn,
                    format!(
                        "Tool '{}' imports host functions its manifest does not request",
                        tool.manifest.name
                    ),
                )
                .detail(format!(
                    "The module imports functions needing {}, which tool.toml does not list \
                     under [capabilities]: a reader of the manifest is misled, and the calls \
                     fail with CapabilityDenied. Request them or remove the imports.",
                    beyond.join(", ")
                ))
                .path(path),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Snapshot;
    use crate::config::{LoadOptions, load};
    use crate::findings::Context;

    fn snapshot(dir: &std::path::Path) -> std::sync::Arc<Snapshot> {
        let loaded = load(&LoadOptions {
            state_dir: dir.to_path_buf(),
            ..Default::default()
        });
        crate::engine::Engine::start(loaded, Vec::new())
            .handle()
            .snapshot()
    }

    fn ids(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.check_id.as_str()).collect()
    }

    #[test]
    fn unpinned_mismatched_and_overreaching_tools_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let tools = tmp.path().join("tools");
        let kv = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/wasm/host_kv.wat"),
        )
        .unwrap();
        for (name, extra) in [
            ("loose", ""),
            ("pinned", "sha256 = \"0000\"\n[capabilities]\nkv = true\n"),
        ] {
            std::fs::create_dir_all(tools.join(name)).unwrap();
            std::fs::write(tools.join(name).join("tool.wat"), &kv).unwrap();
            std::fs::write(
                tools.join(name).join("tool.toml"),
                format!("name = \"{name}\"\ndescription = \"d\"\nmodule = \"tool.wat\"\n{extra}"),
            )
            .unwrap();
        }
        std::fs::create_dir_all(tools.join("broken")).unwrap();
        std::fs::write(tools.join("broken/tool.toml"), "name = 5\n").unwrap();
        let snap = snapshot(tmp.path());
        let ctx = Context {
            snapshot: &snap,
            deep: true,
            terminal: None,
            memory: Default::default(),
        };
        let found = manifests(&ctx);
        assert_eq!(
            ids(&found),
            ["tools.manifest_invalid", "tools.unpinned_module"]
        );
        let plan = found[1].plan.as_ref().unwrap();
        plan.apply(&tmp.path().join("fixes")).unwrap();
        let pinned = std::fs::read_to_string(tools.join("loose/tool.toml")).unwrap();
        assert!(pinned.contains(&sha256_hex(&kv)), "{pinned}");
        assert!(
            manifests(&ctx)
                .iter()
                .all(|f| f.check_id != "tools.unpinned_module")
        );

        let deep = modules(&ctx);
        let mut got = ids(&deep);
        got.sort();
        // "loose" imports kv without requesting it; "pinned" requests kv but its pin is wrong.
        assert_eq!(
            got,
            ["tools.capabilities_exceed_manifest", "tools.pin_mismatch"]
        );
    }
}
