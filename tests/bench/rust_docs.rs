//! The Rust documentation installed with the toolchain (`rustup component add rust-docs`),
//! read as text: a real corpus that exists offline on every machine with the toolchain.
//! Shared by the memory benchmarks.

use std::path::{Path, PathBuf};

/// `$(rustc --print sysroot)/share/doc/rust/html`, when it is installed.
pub fn root() -> Option<PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let root =
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("share/doc/rust/html");
    root.is_dir().then_some(root)
}

/// Every `.html` file under `dir`, at any depth.
pub fn collect_html(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_html(&path, out);
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
}

/// The text of an HTML page: the `<main>` element when there is one, tags and scripts out.
pub fn strip_html(html: &str) -> String {
    let body = match (html.find("<main"), html.rfind("</main>")) {
        (Some(a), Some(b)) if a < b => &html[a..b],
        _ => html,
    };
    let mut out = String::with_capacity(body.len() / 2);
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tail = &rest[open..];
        let skip_to = if tail.starts_with("<script") {
            tail.find("</script>").map(|i| i + 9)
        } else if tail.starts_with("<style") {
            tail.find("</style>").map(|i| i + 8)
        } else {
            tail.find('>').map(|i| i + 1)
        };
        match skip_to {
            Some(i) => rest = &tail[i..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}
