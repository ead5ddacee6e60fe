//! `docs/profiles.md` promises to list exactly the defaults that differ between the core and
//! edge profiles, with their values. This holds it to that.

use std::collections::BTreeMap;

use serde_json::Value;

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

fn profile(name: &str) -> BTreeMap<String, Value> {
    let home = tempfile::tempdir().unwrap();
    let loaded = openclaw_rs::config::load_profile(home.path(), name);
    let mut out = BTreeMap::new();
    flatten("", &serde_json::to_value(&loaded.config).unwrap(), &mut out);
    out
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None => "(unset)".into(),
        Some(v) => format!("`{v}`"),
    }
}

#[test]
fn the_profile_contract_lists_exactly_the_differences() {
    let core = profile("core");
    let edge = profile("edge");
    let mut expected = BTreeMap::new();
    for key in core.keys().chain(edge.keys()) {
        let (c, e) = (core.get(key), edge.get(key));
        if c != e {
            expected.insert(key.clone(), (shown(c), shown(e)));
        }
    }

    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/profiles.md")).unwrap();
    let mut documented = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `key` | core | edge |
        if cells.len() == 5
            && let Some(key) = cells[1].strip_prefix('`').and_then(|k| k.strip_suffix('`'))
        {
            documented.insert(
                key.to_string(),
                (cells[2].to_string(), cells[3].to_string()),
            );
        }
    }
    assert_eq!(
        documented, expected,
        "docs/profiles.md's table must list every differing default, and only those"
    );
}
