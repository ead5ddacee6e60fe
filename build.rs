//! Build facts for `openclaw-rs --version --verbose` and the release provenance: the git
//! commit (and whether the work tree had uncommitted changes), the target, the profile, the
//! compiler and the build date.
//!
//! Reproducibility: nothing here reads the clock. The build date is SOURCE_DATE_EPOCH when
//! set (dist/build.sh sets it to the commit's time), else the commit's own time, so two
//! builds of one commit get the same bytes. Caching: the script reruns only when
//! SOURCE_DATE_EPOCH, the checked-out commit or the sources change, never on every build.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    // The dirty flag follows what goes into the binary.
    for input in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={input}");
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&manifest_dir);

    let commit = git(dir, &["rev-parse", "HEAD"]);
    let dirty = commit.is_some()
        && git(dir, &["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty());
    // A new commit moves HEAD or the branch it points to (a loose ref or packed-refs).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(reference) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(reference);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }

    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| {
            commit.as_ref()?;
            git(dir, &["log", "-1", "--format=%ct"])?.parse().ok()
        });
    let date = epoch.map_or_else(|| "unknown".to_string(), utc_date_time);

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_string(), |s| s.trim().to_string());

    let commit = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".to_string(),
    };
    let env = |key: &str| std::env::var(key).unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=OPENCLAW_RS_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=OPENCLAW_RS_BUILD_DATE={date}");
    println!("cargo:rustc-env=OPENCLAW_RS_BUILD_TARGET={}", env("TARGET"));
    println!(
        "cargo:rustc-env=OPENCLAW_RS_BUILD_PROFILE={}",
        env("PROFILE")
    );
    println!("cargo:rustc-env=OPENCLAW_RS_BUILD_RUSTC={rustc_version}");
}

/// Trimmed stdout of a successful git command in `dir`; None without git or outside a
/// repository (a source tarball).
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (proleptic Gregorian, UTC).
fn utc_date_time(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
