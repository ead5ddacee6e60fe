//! Parse the command line, install the error and panic hooks, and hand over to a face.

use std::process::ExitCode;
use std::time::Instant;

use clap::{CommandFactory, Parser};
use color_eyre::eyre::{Result, WrapErr};
use openclaw_rs::cli::{Cli, Command, ConfigAction, GenerateWhat, SecurityAction};
use openclaw_rs::commands::{self, exit};
use openclaw_rs::config;
use openclaw_rs::engine::Engine;
use openclaw_rs::{batch, tui};

// The static Linux build: musl's allocator takes one lock for all threads (Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Every file and directory the app creates is private whatever the user's umask
    // (sessions, memory and its text index, logs, caches, backups, the journal, and what
    // voice tools write for us): nothing is ever created readable by others. Set first, while
    // this is the only thread. Files written for the user get an explicit mode (`--mode`).
    // Windows has no umask: files inherit the ACL of the directory under the user's profile.
    openclaw_rs::platform::private_umask();
    // Before the runtime's threads exist, so they too share the capped malloc arenas.
    openclaw_rs::engine::allocator::tune();
    let started = Instant::now();
    let cli = Cli::parse();
    if cli.version {
        let text = if cli.global.verbose > 0 {
            openclaw_rs::build_info::verbose()
        } else {
            openclaw_rs::build_info::short()
        };
        return match commands::emit_bytes(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("openclaw-rs: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Err(e) = cli.validate() {
        e.exit();
    }
    let mut hooks = color_eyre::config::HookBuilder::default().display_env_section(false);
    if commands::no_color() || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        hooks = hooks.theme(color_eyre::config::Theme::new());
    }
    if let Err(e) = hooks.install() {
        eprintln!("openclaw-rs: could not install error hooks: {e}");
    }
    if let Some(Command::Completions { shell }) = &cli.command {
        // Generated into memory first: clap_complete panics on a failed write (`| head`).
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "openclaw-rs", &mut script);
        return match commands::emit_bytes(&script) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("openclaw-rs: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(Command::Generate { what }) = &cli.command {
        let written = match what {
            GenerateWhat::Completions { out } => commands::generate::completions(out),
            GenerateWhat::Man { out } => commands::generate::man_pages(out),
        };
        return match written {
            Ok(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                match commands::emit_bytes((names.join("\n") + "\n").as_bytes()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("openclaw-rs: {e}");
                        ExitCode::from(1)
                    }
                }
            }
            Err(e) => {
                eprintln!("openclaw-rs: {e:?}");
                ExitCode::from(1)
            }
        };
    }
    let code = match run(cli, started) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("openclaw-rs: {report:?}");
            exit::FAILED
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(cli: Cli, started: Instant) -> Result<i32> {
    let options = match commands::load_options(&cli.global) {
        Ok(o) => o,
        Err(report) => {
            eprintln!("openclaw-rs: {report:?}");
            return Ok(exit::USAGE);
        }
    };
    let paths = config::Paths::new(options.state_dir.clone(), options.config_file.clone());
    let tui_mode = cli.batch.is_none() && cli.command.is_none();
    let path_only = matches!(
        &cli.command,
        Some(Command::Config {
            action: ConfigAction::Path { .. }
        })
    );
    if !path_only && let Err(e) = config::ensure_state_dir(&paths) {
        eprintln!(
            "openclaw-rs: cannot create the state directory {}: {e}\n\
             pass --home DIR or set OPENCLAW_RS_HOME to a writable place",
            paths.state_dir.display()
        );
        return Ok(exit::USAGE);
    }
    if let Err(e) = init_logging(cli.global.verbose, tui_mode.then_some(&paths.log_file)) {
        eprintln!("openclaw-rs: logging is off: {e}");
    }
    let loaded = config::load(&options);

    let file_checks = tui::file_checks();
    if let Some(Command::Config { action }) = &cli.command {
        let face_diagnostics: Vec<_> = file_checks
            .iter()
            .flat_map(|check| check(&loaded))
            .collect();
        return commands::config(&loaded, &face_diagnostics, action);
    }
    // The TUI, the doctor, the audit and undo run on what is valid and report the errors
    // (that is when they are needed most); every other face refuses.
    let reports_errors = tui_mode
        || matches!(
            &cli.command,
            Some(Command::Doctor { .. } | Command::Security { .. } | Command::Undo { .. })
        );
    if !reports_errors {
        if let Some(code) = commands::refuse_on_errors(&loaded) {
            if cli.batch.is_some() {
                println!("{}", commands::startup_error_frame(&loaded));
            }
            return Ok(code);
        }
        commands::print_diagnostics(&loaded.diagnostics);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("starting the async runtime")?;
    let engine = Engine::start(loaded, file_checks);
    runtime.block_on(dispatch(cli, engine, started))
}

async fn dispatch(cli: Cli, engine: Engine, started: Instant) -> Result<i32> {
    if let Some(source) = cli.batch {
        let options = batch::Options {
            strict_order: cli.strict_order,
        };
        return run_batch(&engine, &source, options).await;
    }
    match cli.command {
        None => tui::run(&engine, started, commands::no_color()).await,
        Some(Command::Status { json }) => commands::status(&engine, json).await,
        Some(Command::Call {
            method,
            params,
            timeout_ms,
        }) => commands::call(&engine, &method, params.as_deref(), timeout_ms).await,
        Some(Command::Doctor { args }) => commands::findings(&engine, false, &args).await,
        Some(Command::Security {
            action: SecurityAction::Audit { args },
        }) => commands::findings(&engine, true, &args).await,
        Some(Command::Undo { seq, json }) => commands::undo(&engine, seq, json).await,
        Some(Command::Memory { action }) => commands::memory::run(&engine, action).await,
        Some(Command::Tts { action }) => commands::voice::tts(&engine, action).await,
        Some(Command::Stt { file, json }) => commands::voice::stt(&engine, &file, json).await,
        Some(Command::Sandbox { action }) => commands::sandbox::sandbox(&engine, action).await,
        Some(Command::Tools { action }) => commands::sandbox::tools(&engine, action).await,
        Some(Command::Chat(args)) => commands::agent::chat(&engine, args).await,
        Some(Command::Providers { action }) => commands::agent::providers(&engine, action).await,
        Some(Command::Sessions { action }) => commands::agent::sessions(&engine, action).await,
        Some(Command::Config { .. } | Command::Completions { .. } | Command::Generate { .. }) => {
            Ok(exit::OK)
        }
    }
}

async fn run_batch(engine: &Engine, source: &str, options: batch::Options) -> Result<i32> {
    let handle = engine.handle();
    let stdout = tokio::io::stdout();
    let summary = if source == "-" {
        batch::run(&handle, tokio::io::stdin(), stdout, options).await
    } else {
        let opened = match tokio::fs::File::open(source).await {
            Ok(file) => file.metadata().await.map(|meta| (file, meta)),
            Err(e) => Err(e),
        };
        let file = match opened {
            Ok((file, meta)) if !meta.is_dir() => file,
            Ok(_) => {
                eprintln!(
                    "openclaw-rs: {source} is a directory; --batch takes a file of JSON lines or -"
                );
                return Ok(exit::USAGE);
            }
            Err(e) => {
                eprintln!("openclaw-rs: cannot open batch file {source}: {e}");
                return Ok(exit::USAGE);
            }
        };
        batch::run(&handle, file, stdout, options).await
    };
    let summary = match summary {
        Ok(summary) => summary,
        // The reader went away; there is nobody left to answer.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(exit::FAILED),
        Err(e) => return Err(e).wrap_err("batch I/O failed"),
    };
    tracing::info!(
        requests = summary.requests,
        failed = summary.failed,
        "batch finished"
    );
    Ok(summary.exit_code())
}

/// Logs go to stderr, except in the TUI where they would corrupt the screen: there they go
/// to the state dir's log file (see `openclaw_rs::logging::init`).
fn init_logging(verbose: u8, file: Option<&std::path::PathBuf>) -> std::io::Result<()> {
    let ansi = file.is_none()
        && !commands::no_color()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    openclaw_rs::logging::init(verbose, file.map(|p| p.as_path()), ansi)
}
