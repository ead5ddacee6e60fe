//! Tests of the fix engine: plans, dry-run diffs, backups, links refused, undo.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn plan(steps: Vec<Step>) -> Plan {
    Plan {
        id: "test.fix".into(),
        check_id: "test.fix".into(),
        description: "test".into(),
        steps,
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn chmod_applies_is_idempotent_and_undoes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    fs::write(&file, "a = 1\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let journal = dir.path().join("fixes");
    let p = plan(vec![Step::SetMode {
        path: file.clone(),
        mode: 0o600,
    }]);
    assert!(p.dry_run().contains("chmod 0600") && p.dry_run().contains("now 0644"));
    let applied = p.apply(&journal).unwrap();
    assert!(applied.changed);
    assert_eq!(mode(&file), 0o600);
    let again = p.apply(&journal).unwrap();
    assert!(!again.changed, "fixing twice is a no-op");
    assert_eq!(journal_entries(&journal), 1);
    undo(&journal, None).unwrap();
    assert_eq!(mode(&file), 0o644);
    assert!(matches!(undo(&journal, None), Err(FixError::NothingToUndo)));
}

fn journal_entries(dir: &Path) -> usize {
    journal(dir).unwrap().len()
}

#[test]
fn symlinks_are_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, "x").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("config.toml");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let p = plan(vec![Step::SetMode {
        path: link.clone(),
        mode: 0o600,
    }]);
    assert!(matches!(
        p.apply(&dir.path().join("j")),
        Err(FixError::Symlink(_))
    ));
    assert_eq!(mode(&outside), 0o644, "the target was not touched");
    let edit = plan(vec![Step::SetConfig {
        file: link,
        key: vec!["a".into()],
        value: toml::Value::Integer(1),
    }]);
    assert!(matches!(
        edit.apply(&dir.path().join("j")),
        Err(FixError::Symlink(_))
    ));
    assert_eq!(fs::read_to_string(&outside).unwrap(), "x");
}

/// The plan is made and shown while the paths are plain; then a link is swapped in, as
/// an attacker racing the fix would. Apply refuses and touches nothing behind the link.
#[test]
fn a_link_swapped_in_between_plan_and_apply_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("config.toml"), "a = 1\n").unwrap();
    fs::set_permissions(
        victim.join("config.toml"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let outside = victim.join("config.toml");

    // The file itself becomes a link.
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    let file = state.join("config.toml");
    fs::write(&file, "a = 1\n").unwrap();
    let edit = plan(vec![Step::SetConfig {
        file: file.clone(),
        key: vec!["a".into()],
        value: toml::Value::Integer(2),
    }]);
    let chmod = plan(vec![Step::SetMode {
        path: file.clone(),
        mode: 0o600,
    }]);
    assert!(edit.dry_run().contains("+a = 2"), "{}", edit.dry_run());
    fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&outside, &file).unwrap();
    let journal_dir = dir.path().join("fixes");
    assert!(matches!(
        edit.apply(&journal_dir),
        Err(FixError::Symlink(_))
    ));
    assert!(matches!(
        chmod.apply(&journal_dir),
        Err(FixError::Symlink(_))
    ));

    // The directory holding the file becomes a link.
    fs::remove_file(&file).unwrap();
    fs::remove_dir(&state).unwrap();
    std::os::unix::fs::symlink(&victim, &state).unwrap();
    for p in [&edit, &chmod] {
        match p.apply(&journal_dir) {
            Err(FixError::Symlink(path)) => assert_eq!(Path::new(&path), state),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        fs::read_to_string(&outside).unwrap(),
        "a = 1\n",
        "not edited"
    );
    assert_eq!(mode(&outside), 0o644, "not chmodded");
    assert!(
        !backup_path(&outside, 1).exists(),
        "no backup written there"
    );
    assert!(journal(&journal_dir).unwrap().is_empty());
}

/// A fix that fails part-way puts back its earlier steps; when one of those cannot be
/// put back, the error says so instead of reporting only the first failure.
#[test]
fn a_revert_that_fails_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made");
    let p = plan(vec![
        Step::CreateDir {
            path: made.clone(),
            mode: 0o700,
        },
        // Writes a file into the new directory; undoing this leaves the (emptied) file,
        // so the directory cannot be removed.
        Step::SetConfig {
            file: made.join("config.toml"),
            key: vec!["a".into()],
            value: toml::Value::Integer(1),
        },
        Step::SetMode {
            path: dir.path().join("missing"),
            mode: 0o600,
        },
    ]);
    let error = p.apply(&dir.path().join("fixes")).unwrap_err();
    let FixError::RevertFailed { cause, failures } = &error else {
        panic!("{error:?}");
    };
    assert!(matches!(**cause, FixError::Refused(_)), "{cause:?}");
    assert_eq!(failures.len(), 1, "{failures:?}");
    let message = error.to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("half applied"), "{message}");
    assert!(message.contains(&made.display().to_string()), "{message}");
}

#[test]
fn config_edits_keep_comments_and_foreign_keys_and_back_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let original =
        "# my settings\n[sandbox]\nfuel = 0 # unlimited, on purpose?\n\n[mine]\nkeep = \"me\"\n";
    fs::write(&file, original).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let p = plan(vec![
        Step::SetConfig {
            file: file.clone(),
            key: vec!["sandbox".into(), "fuel".into()],
            value: toml::Value::Integer(50_000_000),
        },
        Step::SetConfig {
            file: file.clone(),
            key: vec!["logging".into(), "redact".into()],
            value: toml::Value::Boolean(true),
        },
    ]);
    let diff = p.dry_run();
    assert!(
        diff.contains("-fuel = 0") && diff.contains("+fuel = 50000000"),
        "{diff}"
    );
    let journal_dir = dir.path().join("fixes");
    p.apply(&journal_dir).unwrap();
    let after = fs::read_to_string(&file).unwrap();
    assert!(after.contains("# my settings"));
    assert!(after.contains("# unlimited, on purpose?"));
    assert!(after.contains("keep = \"me\""));
    assert!(after.contains("[logging]\nredact = true"), "{after}");
    assert_eq!(fs::read_to_string(backup_path(&file, 1)).unwrap(), original);
    assert_eq!(mode(&file), 0o600, "mode kept");
    undo(&journal_dir, None).unwrap();
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        original,
        "byte for byte"
    );
}

#[test]
fn undo_refuses_when_the_file_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    fs::write(&file, "a = 1\n").unwrap();
    let journal_dir = dir.path().join("fixes");
    plan(vec![Step::SetConfig {
        file: file.clone(),
        key: vec!["a".into()],
        value: toml::Value::Integer(2),
    }])
    .apply(&journal_dir)
    .unwrap();
    fs::write(&file, "a = 3\n").unwrap();
    assert!(matches!(
        undo(&journal_dir, None),
        Err(FixError::Conflict { .. })
    ));
    assert_eq!(fs::read_to_string(&file).unwrap(), "a = 3\n", "left alone");
}

#[test]
fn repeated_edits_of_one_key_keep_one_backup_of_the_file_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let original = "# mine\n[self_heal]\nmax_attempts = 2 # why\n";
    fs::write(&file, original).unwrap();
    let lock = dir.path().join("fixes");
    let order = |ids: &[&str]| {
        toml::Value::Array(
            ids.iter()
                .map(|i| toml::Value::String(i.to_string()))
                .collect(),
        )
    };
    let key = ["self_heal", "chain_order"];
    assert!(set_config_key(&lock, &file, &key, order(&["a", "b"])).unwrap());
    assert!(set_config_key(&lock, &file, &key, order(&["b", "a"])).unwrap());
    assert!(!set_config_key(&lock, &file, &key, order(&["b", "a"])).unwrap());
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "# mine\n[self_heal]\nmax_attempts = 2 # why\nchain_order = [\"b\", \"a\"]\n"
    );
    assert_eq!(fs::read_to_string(backup_path(&file, 1)).unwrap(), original);
    assert!(!backup_path(&file, 2).exists());
    // Another change in between: the ring moves on.
    let edited = fs::read_to_string(&file).unwrap().replace("= 2", "= 3");
    fs::write(&file, &edited).unwrap();
    assert!(set_config_key(&lock, &file, &key, order(&["a"])).unwrap());
    assert_eq!(fs::read_to_string(backup_path(&file, 1)).unwrap(), edited);
    assert_eq!(fs::read_to_string(backup_path(&file, 2)).unwrap(), original);
}

#[test]
fn backup_ring_keeps_five() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    fs::write(&file, "n = 0\n").unwrap();
    let journal_dir = dir.path().join("fixes");
    for n in 1..=7 {
        plan(vec![Step::SetConfig {
            file: file.clone(),
            key: vec!["n".into()],
            value: toml::Value::Integer(n),
        }])
        .apply(&journal_dir)
        .unwrap();
    }
    assert_eq!(
        fs::read_to_string(backup_path(&file, 1)).unwrap(),
        "n = 6\n"
    );
    assert_eq!(
        fs::read_to_string(backup_path(&file, 5)).unwrap(),
        "n = 2\n"
    );
    assert!(!backup_path(&file, 6).exists());
}

#[test]
fn append_adds_an_array_of_tables_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    fs::write(&file, "[ui]\ntheme = \"basic\"\n").unwrap();
    let mut table = toml::Table::new();
    table.insert("check_id".into(), "a.b".into());
    table.insert("reason".into(), "ok".into());
    plan(vec![Step::AppendConfig {
        file: file.clone(),
        key: vec!["security".into(), "audit".into(), "suppressions".into()],
        table,
    }])
    .apply(&dir.path().join("fixes"))
    .unwrap();
    let text = fs::read_to_string(&file).unwrap();
    let parsed: crate::config::Config = toml::from_str(&text).unwrap();
    assert_eq!(parsed.security.audit.suppressions[0].check_id, "a.b");
    assert!(text.starts_with("[ui]\ntheme = \"basic\"\n"), "{text}");
}

/// Property: for many generated config files and edits, fix then undo returns the
/// original bytes. A small deterministic generator keeps it reproducible.
#[test]
fn fix_then_undo_restores_random_configs_byte_for_byte() {
    let mut seed: u64 = 0x5eed_1234_abcd_0042;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let keys = ["fuel", "memory_mb", "timeout_ms", "redact", "theme"];
    let comments = ["", " # note", "  # keep me", "\t# tab"];
    for round in 0..200 {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        let mut text = String::new();
        if next() % 2 == 0 {
            text.push_str("# header comment\n\n");
        }
        for section in ["sandbox", "ui", "extra"] {
            if next() % 3 == 0 {
                continue;
            }
            text.push_str(&format!("[{section}]{}\n", comments[(next() % 4) as usize]));
            for i in 0..(next() % 4) {
                // Unique names within a section, so the file is valid TOML.
                let key = keys[(next() % 5) as usize];
                let line = format!(
                    "{key}_{i} = {}{}\n",
                    next() % 1000,
                    comments[(next() % 4) as usize]
                );
                text.push_str(&line);
            }
            if next() % 2 == 0 {
                text.push('\n');
            }
        }
        fs::write(&file, &text).unwrap();
        let section = ["sandbox", "ui", "logging"][(next() % 3) as usize];
        let key = keys[(next() % 5) as usize];
        let value = match next() % 3 {
            0 => toml::Value::Integer((next() % 10_000) as i64),
            1 => toml::Value::Boolean(next() % 2 == 0),
            _ => toml::Value::String(format!("v{}", next() % 10)),
        };
        let journal_dir = dir.path().join("fixes");
        let applied = plan(vec![Step::SetConfig {
            file: file.clone(),
            key: vec![section.into(), key.into()],
            value,
        }])
        .apply(&journal_dir)
        .unwrap();
        assert!(applied.changed, "round {round}");
        toml::from_str::<toml::Table>(&fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("round {round}: edit broke the file: {e}\n{text}"));
        undo(&journal_dir, None).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), text, "round {round}");
    }
}
