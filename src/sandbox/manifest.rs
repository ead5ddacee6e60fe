//! Tool manifests (`tool.toml`) and the built-in tools.
