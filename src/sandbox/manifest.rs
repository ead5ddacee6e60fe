//! Tools: a module plus a `tool.toml` manifest, either built in (WAT compiled into the
//! binary, assembled on first use) or installed under `<state>/tools/NAME/`.
//!
//! ```toml
//! name = "wordcount"
//! description = "Counts words"
//! module = "tool.wasm"          # next to tool.toml; .wasm or .wat
//! sha256 = "…"                  # of the module file; a mismatch refuses to run
//!
//! [parameters]                  # JSON schema of the input
//! type = "object"
//! required = ["text"]
//! properties.text.type = "string"
//!
//! [capabilities]                # requested; granted = requested ∩ allowed by the config
//! kv = true
//! http = ["api.example.com"]
//!
//! [limits]                      # may lower the config's limits, never raise them
//! fuel = 1_000_000
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Grants, Limits, SandboxError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    /// The module file, relative to the manifest's directory.
    #[serde(default = "default_module")]
    pub module: String,
    /// sha256 (hex) of the module file. Unpinned tools run, and the audit reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// JSON schema of the input; any JSON when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub capabilities: Grants,
    #[serde(default)]
    pub limits: ManifestLimits,
}

fn default_module() -> String {
    "tool.wasm".into()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_kb: Option<u32>,
}

impl ManifestLimits {
    /// The configured limits, lowered where the manifest asks for less.
    pub fn apply(&self, mut limits: Limits) -> Limits {
        if let Some(fuel) = self.fuel.filter(|f| *f > 0) {
            limits.fuel = if limits.fuel == 0 {
                fuel
            } else {
                limits.fuel.min(fuel)
            };
        }
        if let Some(mb) = self.memory_mb {
            limits.memory_bytes = limits.memory_bytes.min(u64::from(mb) * 1024 * 1024);
        }
        if let Some(ms) = self.timeout_ms {
            limits.timeout_ms = limits.timeout_ms.min(ms.max(1));
        }
        if let Some(kb) = self.max_output_kb {
            limits.max_output_bytes = limits.max_output_bytes.min(u64::from(kb) * 1024);
        }
        limits
    }
}

/// Where a tool comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolSource {
    Builtin,
    Installed,
}

#[derive(Debug, Clone)]
pub struct Tool {
    pub manifest: Manifest,
    pub source: ToolSource,
    /// The manifest's directory (installed tools).
    pub dir: Option<PathBuf>,
}

/// A tool directory that could not be read, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolProblem {
    pub path: String,
    pub message: String,
}

struct Builtin {
    manifest: &'static str,
    source: &'static str,
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        manifest: include_str!("builtin/json_query.toml"),
        source: include_str!("builtin/json_query.wat"),
    },
    Builtin {
        manifest: include_str!("builtin/text_stats.toml"),
        source: include_str!("builtin/text_stats.wat"),
    },
    Builtin {
        manifest: include_str!("builtin/checksum.toml"),
        source: include_str!("builtin/checksum.wat"),
    },
];

const PRELUDE: &str = include_str!("builtin/prelude.wat");
const SHA256: &str = include_str!("builtin/sha256_core.wat");

/// A built-in tool's WebAssembly text, with the shared parts spliced in.
pub fn builtin_source(name: &str) -> Option<String> {
    let builtin = BUILTINS
        .iter()
        .zip(builtin_manifests())
        .find(|(_, m)| m.name == name)
        .map(|(b, _)| b)?;
    Some(
        builtin
            .source
            .replace(";;@prelude", PRELUDE)
            .replace(";;@sha256", SHA256),
    )
}

fn builtin_manifests() -> &'static [Manifest] {
    static PARSED: OnceLock<Vec<Manifest>> = OnceLock::new();
    PARSED.get_or_init(|| {
        BUILTINS
            .iter()
            .filter_map(|b| match toml::from_str(b.manifest) {
                Ok(m) => Some(m),
                Err(e) => {
                    // Compiled in and covered by tests; this only guards a bad edit.
                    tracing::error!("a built-in tool manifest does not parse: {e}");
                    None
                }
            })
            .collect()
    })
}

/// Tool names are directory and file names too: keep them plain.
pub fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Every tool: the built-ins, then `<tools_dir>/*/tool.toml` in name order. Broken
/// directories are reported, not fatal; an installed tool may not take a built-in's name.
pub fn discover(tools_dir: &Path) -> (Vec<Tool>, Vec<ToolProblem>) {
    let mut tools: Vec<Tool> = builtin_manifests()
        .iter()
        .map(|m| Tool {
            manifest: m.clone(),
            source: ToolSource::Builtin,
            dir: None,
        })
        .collect();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(tools_dir) else {
        return (tools, problems);
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("tool.toml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let file = dir.join("tool.toml");
        let problem = |message: String| ToolProblem {
            path: file.display().to_string(),
            message,
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(problem(e.to_string()));
                continue;
            }
        };
        let manifest = match parse_manifest(&text) {
            Ok(m) => m,
            Err(message) => {
                problems.push(problem(message));
                continue;
            }
        };
        if tools.iter().any(|t| t.manifest.name == manifest.name) {
            problems.push(problem(format!(
                "a tool named '{}' already exists (built-in or earlier directory); rename it",
                manifest.name
            )));
            continue;
        }
        tools.push(Tool {
            manifest,
            source: ToolSource::Installed,
            dir: Some(dir),
        });
    }
    (tools, problems)
}

/// Parse one `tool.toml` and check what it can check alone: the name, and a module that is a
/// file name next to the manifest. `Err`: what is wrong, for the user.
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
    if !valid_tool_name(&manifest.name) {
        return Err(format!(
            "name '{}' must be 1-64 of a-z, 0-9, _ and -",
            manifest.name
        ));
    }
    if !is_plain_file_name(&manifest.module) {
        return Err(format!(
            "module '{}' must be a file name next to tool.toml",
            manifest.module
        ));
    }
    Ok(manifest)
}

/// One normal path component: not empty, `.`, `..`, a root or a drive.
fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}

impl Tool {
    /// The module's bytes as pinned: the file for installed tools, the spliced text for
    /// built-ins (which the binary itself vouches for, so they carry no pin).
    pub fn module_bytes(&self) -> Result<Vec<u8>, SandboxError> {
        match (&self.source, &self.dir) {
            (ToolSource::Builtin, _) => builtin_source(&self.manifest.name)
                .map(String::into_bytes)
                .ok_or_else(|| SandboxError::host("built-in tool source missing")),
            (ToolSource::Installed, Some(dir)) => {
                let path = dir.join(&self.manifest.module);
                std::fs::read(&path).map_err(|e| {
                    SandboxError::invalid(format!("cannot read {}: {e}", path.display()))
                })
            }
            (ToolSource::Installed, None) => Err(SandboxError::host("tool without a directory")),
        }
    }

    pub fn module_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(&self.manifest.module))
    }
}

/// Check `input` against a tool's parameter schema; every violation, by JSON pointer.
pub fn validate_input(schema: Option<&Value>, input: &Value) -> Result<(), Vec<String>> {
    let Some(schema) = schema else {
        return Ok(());
    };
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| vec![format!("the tool's parameter schema is invalid: {e}")])?;
    let errors: Vec<String> = validator
        .iter_errors(input)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_assemble_and_validate() {
        let names: Vec<String> = builtin_manifests().iter().map(|m| m.name.clone()).collect();
        assert_eq!(names, ["json_query", "text_stats", "checksum"]);
        for name in &names {
            let source = builtin_source(name).unwrap();
            let wasm = super::super::assemble(source.as_bytes()).unwrap();
            super::super::validate(&wasm).unwrap();
        }
    }

    #[test]
    fn installed_tools_are_found_and_bad_ones_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("echo");
        std::fs::create_dir_all(&good).unwrap();
        std::fs::write(
            good.join("tool.toml"),
            "name = \"echo\"\ndescription = \"d\"\nmodule = \"echo.wat\"\n[capabilities]\nkv = true\n",
        )
        .unwrap();
        for (dir, text) in [
            ("shadow", "name = \"checksum\"\ndescription = \"d\"\n"),
            (
                "typo",
                "name = \"t\"\ndescription = \"d\"\n[capabilities]\nfs_read = true\n",
            ),
            ("badname", "name = \"../x\"\ndescription = \"d\"\n"),
            (
                "escape",
                "name = \"e\"\ndescription = \"d\"\nmodule = \"../../x.wasm\"\n",
            ),
        ] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
            std::fs::write(tmp.path().join(dir).join("tool.toml"), text).unwrap();
        }
        let (tools, problems) = discover(tmp.path());
        let installed: Vec<&str> = tools
            .iter()
            .filter(|t| t.source == ToolSource::Installed)
            .map(|t| t.manifest.name.as_str())
            .collect();
        assert_eq!(installed, ["echo"]);
        assert!(tools.iter().any(|t| t.manifest.capabilities.kv));
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn manifest_limits_only_lower() {
        let base = Limits {
            fuel: 1000,
            memory_bytes: 32 << 20,
            table_elements: 10,
            instances: 1,
            timeout_ms: 5000,
            max_output_bytes: 1024,
        };
        let asked = ManifestLimits {
            fuel: Some(5000),
            memory_mb: Some(8),
            timeout_ms: Some(100),
            max_output_kb: Some(64),
        };
        let got = asked.apply(base);
        assert_eq!(got.fuel, 1000);
        assert_eq!(got.memory_bytes, 8 << 20);
        assert_eq!(got.timeout_ms, 100);
        assert_eq!(got.max_output_bytes, 1024);
    }

    #[test]
    fn inputs_are_checked_against_the_schema() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["text"],
            "properties": { "text": { "type": "string" } },
            "additionalProperties": false
        });
        assert!(validate_input(Some(&schema), &serde_json::json!({ "text": "hi" })).is_ok());
        let errors =
            validate_input(Some(&schema), &serde_json::json!({ "text": 5, "x": 1 })).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("/text")), "{errors:?}");
    }
}
