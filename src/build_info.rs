//! What this binary is: set at build time by build.rs (see there for how it stays
//! reproducible) and shown by `openclaw-rs --version --verbose`.

/// `core` or `edge`: which release track this binary was built as.
pub const TRACK: &str = crate::config::BUILD_TRACK;
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit, with `-dirty` when tracked files differed from it; `unknown` outside git.
pub const COMMIT: &str = env!("OPENCLAW_RS_BUILD_COMMIT");
/// SOURCE_DATE_EPOCH (else the commit's time) as `YYYY-MM-DDTHH:MM:SSZ`.
pub const DATE: &str = env!("OPENCLAW_RS_BUILD_DATE");
pub const TARGET: &str = env!("OPENCLAW_RS_BUILD_TARGET");
pub const PROFILE: &str = env!("OPENCLAW_RS_BUILD_PROFILE");
pub const RUSTC: &str = env!("OPENCLAW_RS_BUILD_RUSTC");

/// `openclaw-rs --version`: what clap printed before.
pub fn short() -> String {
    format!("openclaw-rs {VERSION}\n")
}

/// `openclaw-rs --version --verbose`: one `key: value` line each, stable for scripts.
pub fn verbose() -> String {
    format!(
        "openclaw-rs {VERSION}\ntrack: {TRACK}\ncommit: {COMMIT}\ntarget: {TARGET}\n\
         build date: {DATE}\nprofile: {PROFILE}\nrustc: {RUSTC}\n"
    )
}
