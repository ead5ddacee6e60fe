//! What a tool may do beyond computing: the capabilities (memory, kv, fs, http) that host
//! functions need, and Grants, parsed from `--allow` entries and intersected with the policy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::HostRule;

/// A capability beyond the always-available `log`, `now_ms` and `random`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// `memory_search`: read the memory store.
    Memory,
    /// `kv_get` / `kv_set`: the tool's own key-value namespace.
    Kv,
    /// `fs_read`: read files under the workspace.
    Fs,
    /// `http_fetch`: hosts on an allowlist.
    Http,
}

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::Memory,
        Capability::Kv,
        Capability::Fs,
        Capability::Http,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Memory => "memory",
            Capability::Kv => "kv",
            Capability::Fs => "fs",
            Capability::Http => "http",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What a run may do beyond computing. `http` holds host rules (`api.example.com`,
/// `*.example.com`, `127.0.0.1:8080`); empty means no network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    pub memory: bool,
    pub kv: bool,
    pub fs: bool,
    pub http: Vec<String>,
}

impl Grants {
    /// Parse `--allow` style entries: `memory`, `kv`, `fs`, `http:HOST[:PORT]`.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut grants = Grants::default();
        for entry in entries {
            let entry = entry.trim();
            if let Some(host) = entry.strip_prefix("http:") {
                HostRule::parse(host)?;
                grants.http.push(host.to_string());
                continue;
            }
            match Capability::parse(entry) {
                Some(Capability::Memory) => grants.memory = true,
                Some(Capability::Kv) => grants.kv = true,
                Some(Capability::Fs) => grants.fs = true,
                Some(Capability::Http) => {
                    return Err("'http' needs a host: use http:HOST or http:HOST:PORT".into());
                }
                None => {
                    return Err(format!(
                        "unknown capability '{entry}'; use memory, kv, fs or http:HOST"
                    ));
                }
            }
        }
        Ok(grants)
    }

    /// Every capability, with `http` to the given hosts: the policy side of an
    /// intersection when the configuration restricts nothing but the network.
    pub fn all_with_hosts(hosts: &[String]) -> Self {
        Grants {
            memory: true,
            kv: true,
            fs: true,
            http: hosts.to_vec(),
        }
    }

    /// What both sides allow: granted = requested ∩ allowed. A requested host rule survives
    /// only when an allowed rule covers it.
    pub fn intersect(&self, allowed: &Grants) -> Grants {
        let allowed_rules: Vec<HostRule> = allowed
            .http
            .iter()
            .filter_map(|h| HostRule::parse(h).ok())
            .collect();
        Grants {
            memory: self.memory && allowed.memory,
            kv: self.kv && allowed.kv,
            fs: self.fs && allowed.fs,
            http: self
                .http
                .iter()
                .filter(|h| {
                    HostRule::parse(h)
                        .is_ok_and(|wanted| allowed_rules.iter().any(|a| a.covers(&wanted)))
                })
                .cloned()
                .collect(),
        }
    }

    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::Memory => self.memory,
            Capability::Kv => self.kv,
            Capability::Fs => self.fs,
            Capability::Http => !self.http.is_empty(),
        }
    }

    /// The granted capabilities by name, `http:HOST` per host.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = [Capability::Memory, Capability::Kv, Capability::Fs]
            .into_iter()
            .filter(|c| self.has(*c))
            .map(|c| c.as_str().to_string())
            .collect();
        names.extend(self.http.iter().map(|h| format!("http:{h}")));
        names
    }
}
