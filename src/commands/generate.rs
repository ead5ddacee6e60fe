//! `openclaw-rs generate completions|man --out DIR`: the shell completions and man pages
//! that go into the release archives (dist/build.sh). Generated from the parser itself, so
//! they cannot drift from the binary they ship with.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use color_eyre::eyre::{Result, WrapErr};

use crate::build_info;
use crate::cli::Cli;

const BIN: &str = "openclaw-rs";

/// One completion script per shell, named as each shell looks for it
/// (`openclaw-rs.bash`, `_openclaw-rs`, `openclaw-rs.fish`, `_openclaw-rs.ps1`,
/// `openclaw-rs.elv`).
pub fn completions(out: &Path) -> Result<Vec<PathBuf>> {
    create_dir(out)?;
    let mut written = Vec::new();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::PowerShell,
        Shell::Elvish,
    ] {
        // Into memory first: clap_complete panics on a failed write.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
        let path = out.join(clap_complete::Generator::file_name(&shell, BIN));
        write(&path, &script)?;
        written.push(path);
    }
    Ok(written)
}

/// A man page for the root and one for every visible subcommand, nested ones included
/// (`openclaw-rs-memory-add.1`). The date is the build date, so the pages are as
/// reproducible as the binary.
pub fn man_pages(out: &Path) -> Result<Vec<PathBuf>> {
    create_dir(out)?;
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut written = Vec::new();
    page(root, out, &mut written)?;
    Ok(written)
}

fn page(command: clap::Command, out: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let date = build_info::DATE.get(..10).unwrap_or("");
    let man = clap_mangen::Man::new(command.clone())
        .date(date)
        .source(format!("{BIN} {}", build_info::VERSION))
        .manual("openclaw-rs manual");
    let mut text = Vec::new();
    man.render(&mut text).wrap_err("rendering a man page")?;
    let path = out.join(man.get_filename());
    write(&path, &text)?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub.clone(), out, written)?;
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).wrap_err_with(|| format!("writing {}", path.display()))
}
