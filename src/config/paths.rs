//! Where state lives. Everything is below one directory so that a user can inspect, back up
//! or delete it as a whole.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use crate::platform::create_mode;

/// The commented default `config.toml`, written on first run.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default_config.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paths {
    pub state_dir: PathBuf,
    pub config_file: PathBuf,
    pub profiles_dir: PathBuf,
    pub themes_dir: PathBuf,
    pub keymaps_dir: PathBuf,
    pub log_file: PathBuf,
}

impl Paths {
    pub fn new(state_dir: PathBuf, config_override: Option<PathBuf>) -> Self {
        Self {
            config_file: config_override.unwrap_or_else(|| state_dir.join("config.toml")),
            profiles_dir: state_dir.join("profiles"),
            themes_dir: state_dir.join("themes"),
            keymaps_dir: state_dir.join("keymaps"),
            log_file: state_dir.join("logs").join("openclaw-rs.log"),
            state_dir,
        }
    }
}

/// `--home`, else `$OPENCLAW_RS_HOME`, else `~/.openclaw-rs`.
pub fn resolve_home(flag: Option<&Path>) -> io::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("OPENCLAW_RS_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::BaseDirs::new()
        .map(|dirs| dirs.home_dir().join(".openclaw-rs"))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no home directory found; pass --home DIR or set OPENCLAW_RS_HOME",
            )
        })
}

/// Create the state dir (0700) and a commented `config.toml` (0600) if they are missing.
/// Existing files and modes are left alone: changing them is the audit's job, with a diff.
/// Returns whether the config file was created.
pub fn ensure_state_dir(paths: &Paths) -> io::Result<bool> {
    crate::files::create_private_dir_all(&paths.state_dir)?;
    let default_location = paths.config_file == paths.state_dir.join("config.toml");
    if !default_location {
        return Ok(false);
    }
    match create_mode(fs::OpenOptions::new().write(true).create_new(true), 0o600)
        .open(&paths.config_file)
    {
        Ok(mut file) => {
            file.write_all(DEFAULT_CONFIG_TOML.as_bytes())?;
            file.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn first_run_creates_private_dir_and_config() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path().join("state"), None);
        assert!(ensure_state_dir(&paths).unwrap());
        let dir_mode = fs::metadata(&paths.state_dir).unwrap().permissions().mode();
        let file_mode = fs::metadata(&paths.config_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(file_mode & 0o777, 0o600);
        // Second run leaves the user's file alone.
        fs::write(&paths.config_file, "[ui]\ntheme = \"light\"\n").unwrap();
        assert!(!ensure_state_dir(&paths).unwrap());
        assert!(
            fs::read_to_string(&paths.config_file)
                .unwrap()
                .contains("light")
        );
    }

    #[test]
    fn explicit_config_path_is_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let custom = tmp.path().join("custom.toml");
        let paths = Paths::new(tmp.path().join("state"), Some(custom.clone()));
        assert!(!ensure_state_dir(&paths).unwrap());
        assert!(!custom.exists());
    }
}
