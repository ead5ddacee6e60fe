//! The command line, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

/// Exit statuses shared by every face (the `--help` text above states them).
pub mod exit {
    pub const OK: i32 = 0;
    /// A request failed, or findings at or above the threshold.
    pub const FAILED: i32 = 1;
    /// Usage or startup error: bad flags, a broken config file.
    pub const USAGE: i32 = 2;
    /// doctor and security audit: the checks themselves could not run.
    pub const RUNTIME: i32 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "openclaw-rs",
    version,
    // Our own `-V/--version`, so `--version --verbose` can say more (build_info.rs).
    disable_version_flag = true,
    about = "A keyboard-driven terminal workstation for a personal AI assistant.",
    long_about = "A keyboard-driven terminal workstation for a personal AI assistant.\n\n\
        With no command it opens the full-screen TUI. `--batch` reads JSON-lines requests \
        and writes one JSON response per request. Every command runs on the same \
        in-process engine.",
    after_help = "Examples:\n  \
        openclaw-rs                                  open the TUI\n  \
        openclaw-rs status --json                    machine-readable status\n  \
        openclaw-rs call config.get --params '{\"key\":\"sandbox\"}'\n  \
        echo '{\"id\":1,\"method\":\"status\"}' | openclaw-rs --batch\n\n\
        Environment: OPENCLAW_RS_HOME, OPENCLAW_RS_CONFIG, OPENCLAW_RS_PROFILE, \
        OPENCLAW_RS_THEME, OPENCLAW_RS_KEYMAP, OPENCLAW_RS_SECTION__KEY=value for any \
        config key, RUST_LOG, NO_COLOR.\n\n\
        Exit status: 0 success; 1 a request or call failed; 2 usage or startup error \
        (bad flags, a broken config file)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Run headless: read JSON-lines requests from FILE (or stdin with `-` or no value),
    /// write one JSON response per line to stdout.
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-")]
    pub batch: Option<String>,

    /// With `--batch`: run every request alone, in input order, `chat.send` included. By
    /// default a turn streams while later lines are read and answered (so `chat.abort`
    /// reaches it), and responses may come out of input order.
    #[arg(long, requires = "batch")]
    pub strict_order: bool,

    /// Print the version; with --verbose also the track, commit, target and build date.
    #[arg(short = 'V', long)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Checks clap's derive cannot express: `--batch` is a mode of its own.
    pub fn validate(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        if self.batch.is_some() && self.command.is_some() {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--batch runs requests from its input; it cannot be combined with a subcommand \
                 (use `call METHOD` for a single request)",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Profile to run: `core`, `edge`, or the name of a file in <state>/profiles/.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Config file to use instead of <state>/config.toml.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "OPENCLAW_RS_CONFIG",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,

    /// State directory [default: $OPENCLAW_RS_HOME, else ~/.openclaw-rs].
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Theme: `default`, `light`, `basic` (16 colours), or a file in <state>/themes/.
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,

    /// Keymap: `default`, `vim`, or a file in <state>/keymaps/.
    #[arg(long, global = true, value_name = "NAME")]
    pub keymap: Option<String>,

    /// More log output on stderr (TUI: in the log file): -v info, -vv debug, -vvv trace.
    /// RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Version, build track, profile, state dir and sandbox backend.
    Status {
        /// Print the `status` method's JSON result.
        #[arg(long)]
        json: bool,
    },
    /// Call one engine method and print its JSON result (`methods.list` lists them).
    Call {
        /// Method name, e.g. `config.get`.
        method: String,
        /// Params as a JSON object.
        #[arg(long, value_name = "JSON")]
        params: Option<String>,
        /// Give up after this many milliseconds.
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Check that the installation is healthy (config, secrets, state dir, profile vs build,
    /// providers, voice, logs). Exits 1 when a finding is at or above --severity-min.
    Doctor {
        #[command(flatten)]
        args: FindingsArgs,
    },
    /// Security checks.
    Security {
        #[command(subcommand)]
        action: SecurityAction,
    },
    /// Persistent memory: add, search, index the workspace, explore the graph.
    Memory {
        #[command(subcommand)]
        action: MemoryAction,
    },
    /// Text to speech: status, providers, the active provider, speak text to a file.
    Tts {
        #[command(subcommand)]
        action: TtsAction,
    },
    /// Transcribe an audio file (WAV; other formats through sox) with the speech-to-text
    /// chain. Off until `voice.stt.enabled` (on in the edge profile).
    Stt {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run a WebAssembly module in the sandbox, or show the sandbox's status.
    Sandbox {
        #[command(subcommand)]
        action: SandboxAction,
    },
    /// Sandboxed tools: built-in and installed under <state>/tools/.
    Tools {
        #[command(subcommand)]
        action: ToolsAction,
    },
    /// Send one message and print the reply as it streams (`--json`: the whole result,
    /// with usage, citations and runtime.selfHealing).
    Chat(ChatArgs),
    /// The provider chain: state, latency and error rate; probe; end a cooldown.
    Providers {
        #[command(subcommand)]
        action: ProvidersAction,
    },
    /// Saved conversations: list, create, show, delete, export as JSONL.
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// Revert the newest applied fix, or fix number SEQ (see `call findings.journal`).
    Undo {
        seq: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    Completions { shell: Shell },
    /// Write release files into a directory: shell completions or man pages (used by
    /// dist/build.sh; hidden from the command list).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: GenerateWhat,
    },
}

#[derive(Debug, Subcommand)]
pub enum GenerateWhat {
    /// Completion scripts for bash, zsh, fish, PowerShell and elvish.
    Completions {
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// One man page per command (openclaw-rs.1, openclaw-rs-memory-add.1, ...).
    Man {
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxAction {
    /// Run FILE (.wasm, or WebAssembly text .wat) on --input. Prints the output JSON; exits 1
    /// when the module fails (out of fuel, timeout, denied capability, trap...).
    #[command(after_help = "Examples:\n  \
        openclaw-rs sandbox run tool.wat --input '{\"text\":\"hi\"}'\n  \
        openclaw-rs sandbox run tool.wasm --fuel 1000000 --timeout-ms 200 --allow kv --json\n  \
        openclaw-rs sandbox run fetch.wat --allow http:api.example.com --input '{\"url\":\"https://api.example.com/\"}'")]
    Run {
        file: PathBuf,
        /// The input document (JSON); `{}` when left out.
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// auto, wasmi or wasmtime (edge builds) [default: sandbox.backend].
        #[arg(long, value_name = "NAME")]
        backend: Option<String>,
        /// Fuel units, about one WebAssembly operator each; 0 = unlimited [default: sandbox.fuel].
        #[arg(long, value_name = "UNITS")]
        fuel: Option<u64>,
        /// Linear memory cap [default: sandbox.memory_mb].
        #[arg(long, value_name = "MIB")]
        memory_mb: Option<u32>,
        /// Wall-clock limit [default: sandbox.timeout_ms].
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
        /// Output cap [default: sandbox.max_output_kb].
        #[arg(long, value_name = "KIB")]
        max_output_kb: Option<u32>,
        /// Grant a capability (repeatable): memory, kv, fs, http:HOST[:PORT]. The config must
        /// allow it too (sandbox.capabilities, sandbox.http_allow).
        #[arg(long = "allow", value_name = "CAP")]
        allow: Vec<String>,
        /// Refuse to run unless FILE has this sha256.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Print the whole result (output, backend, fuel, logs, safety) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Backends in this build, the one in use, default limits, allowed capabilities, cache.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ToolsAction {
    /// Every tool with its requested and granted capabilities.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A tool's parameters, limits, capabilities and pin.
    Describe {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a tool on --input (checked against its parameter schema).
    Invoke {
        name: String,
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// auto, wasmi or wasmtime [default: sandbox.backend].
        #[arg(long, value_name = "NAME")]
        backend: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecurityAction {
    /// Audit permissions, stored secrets, sandbox limits and provider transport. Exits 1 when
    /// a finding is at or above --severity-min.
    Audit {
        #[command(flatten)]
        args: FindingsArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TtsAction {
    /// Whether voice is on, the active provider, its fallbacks and what each one needs.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Every provider, whether it is configured and available, and its voices.
    Providers {
        #[arg(long)]
        json: bool,
    },
    /// Make PROVIDER the active one: kittentts, espeak-ng, flite, openai or elevenlabs.
    SetProvider {
        provider: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn voice on (auto-speaking replies, when `voice.auto` is set).
    Enable {
        #[arg(long)]
        json: bool,
    },
    /// Turn voice off.
    Disable {
        #[arg(long)]
        json: bool,
    },
    /// Speak TEXT (or stdin with `-`) into an audio file; prints where it is.
    Say {
        text: String,
        /// Copy the audio here; its extension picks the format unless --format is given.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Try this provider first.
        #[arg(long)]
        provider: Option<String>,
        /// A voice of the first provider (see `tts providers`).
        #[arg(long)]
        voice: Option<String>,
        /// wav (default), or a format sox writes (flac, ogg, ...).
        #[arg(long)]
        format: Option<String>,
        /// The mode of the --out file, in octal [default: 0600, private].
        #[arg(long, value_name = "OCTAL", value_parser = parse_mode, requires = "out")]
        mode: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

/// A file mode in octal (`0644`, `644`, `0o644`), at most 0777.
pub fn parse_mode(raw: &str) -> Result<u32, String> {
    let digits = raw.trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("'{raw}' is not a mode in octal such as 0600 or 0644"))
}

#[derive(Debug, Subcommand)]
pub enum MemoryAction {
    /// Remember TEXT (or stdin with `-`).
    Add {
        text: String,
        /// Tag it (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Where it came from [default: note].
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Hybrid search (BM25 + vectors).
    Search {
        query: String,
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<usize>,
        /// Only chunks with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only chunks whose source contains this text.
        #[arg(long)]
        source: Option<String>,
        /// Only chunks created at or after this time (ms since the Unix epoch).
        #[arg(long, value_name = "MS")]
        since: Option<i64>,
        /// Only chunks created before this time (ms since the Unix epoch).
        #[arg(long, value_name = "MS")]
        until: Option<i64>,
        /// `weighted` or `rrf`.
        #[arg(long)]
        fusion: Option<String>,
        /// MMR diversity, 0 to 1.
        #[arg(long)]
        mmr: Option<f32>,
        #[arg(long)]
        json: bool,
    },
    /// Show a chunk and its source.
    Get {
        chunk_id: u32,
        #[arg(long)]
        json: bool,
    },
    /// Forget a chunk, or a whole document with --document.
    Delete {
        id: u32,
        /// ID is a document id.
        #[arg(long)]
        document: bool,
        #[arg(long)]
        json: bool,
    },
    /// Index the workspace files (memory.paths) and any PATHS given; unchanged files cost
    /// nothing. Shows progress on stderr. Ctrl-C cancels: files indexed so far stay, a
    /// vector index build is discarded and the previous index keeps answering.
    Index {
        paths: Vec<String>,
        /// Rebuild every index from the files and stored notes (also after changing
        /// embedders, or when the full-text index is damaged).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Counts, sizes, embedder and consistency.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Explore the graph.
    Graph {
        #[command(subcommand)]
        action: GraphAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum GraphAction {
    /// NODE's neighbours (NODE is an id or a key like tag:rust, entity:ada lovelace, chunk:12).
    Neighbors {
        node: String,
        #[arg(long, default_value_t = 1)]
        depth: u32,
        /// Only this edge kind (repeatable): contains, mentions, links_to, tagged, co_occurs,
        /// from_session.
        #[arg(long = "edge", value_name = "KIND")]
        edges: Vec<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// The shortest path between two nodes.
    Path {
        from: String,
        to: String,
        #[arg(long)]
        max_depth: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// A node, its edges by kind and its chunks.
    Node {
        node: String,
        #[arg(long)]
        json: bool,
    },
    /// The most connected nodes.
    Top {
        /// Only this kind: document, chunk, session, tag, entity, link, heading.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, short = 'n')]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args, Clone)]
pub struct FindingsArgs {
    /// Print the report as JSON (stdout carries only the JSON).
    #[arg(long)]
    pub json: bool,
    /// Slower checks too: scans of stored files for leaked secrets, live provider probes.
    #[arg(long)]
    pub deep: bool,
    /// Run only this check id or dotted prefix (repeatable), e.g. `--only fs.config`.
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Leave out this check id or prefix (repeatable).
    #[arg(long, value_name = "ID")]
    pub skip: Vec<String>,
    /// Lowest severity that makes the exit status 1: info, warn or critical.
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub severity_min: crate::findings::Severity,
    /// Apply the available fixes (asks for each one when stdin is a terminal).
    #[arg(long)]
    pub fix: bool,
    /// With --fix: print every fix's diff and change nothing.
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
    /// With --fix: never ask; apply every available fix.
    #[arg(long, requires = "fix")]
    pub non_interactive: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the state dir and the files read from it.
    Path {
        #[arg(long)]
        json: bool,
    },
    /// Print the effective configuration with secrets redacted.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Check every layer (profile, config.toml, environment) and report problems with
    /// file:line:column. Exits 2 when there are errors.
    Check {
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn batch_without_value_means_stdin() {
        let cli = Cli::try_parse_from(["openclaw-rs", "--batch"]).unwrap();
        assert_eq!(cli.batch.as_deref(), Some("-"));
        let cli = Cli::try_parse_from(["openclaw-rs", "--batch", "reqs.jsonl"]).unwrap();
        assert_eq!(cli.batch.as_deref(), Some("reqs.jsonl"));
    }

    #[test]
    fn strict_order_goes_with_batch_only() {
        let cli = Cli::try_parse_from(["openclaw-rs", "--batch", "--strict-order"]).unwrap();
        assert!(cli.strict_order);
        assert!(
            !Cli::try_parse_from(["openclaw-rs", "--batch"])
                .unwrap()
                .strict_order
        );
        assert!(Cli::try_parse_from(["openclaw-rs", "--strict-order"]).is_err());
    }

    #[test]
    fn batch_with_a_subcommand_is_refused() {
        let cli = Cli::try_parse_from(["openclaw-rs", "--batch", "-", "status"]).unwrap();
        assert!(cli.validate().is_err());
        let cli = Cli::try_parse_from(["openclaw-rs", "--home", "/tmp/x", "status"]).unwrap();
        assert!(cli.validate().is_ok());
    }

    #[test]
    fn global_flags_work_after_subcommands() {
        let cli = Cli::try_parse_from(["openclaw-rs", "status", "--profile", "edge"]).unwrap();
        assert_eq!(cli.global.profile.as_deref(), Some("edge"));
    }
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The message; `-` reads it from stdin.
    pub message: String,
    /// Session id (created when missing); a new session when left out.
    #[arg(long, short)]
    pub session: Option<String>,
    /// Try this provider first.
    #[arg(long)]
    pub provider: Option<String>,
    /// Model for that provider (or the first of the chain).
    #[arg(long)]
    pub model: Option<String>,
    /// Fail (exit 1, UNAVAILABLE) rather than print an answer from the offline provider.
    #[arg(long)]
    pub require_model: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProvidersAction {
    /// The chain in order with each provider's state, latency and error rate.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Ask a provider (all when ID is left out) whether it answers; a success ends its
    /// cooldown.
    Probe {
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// End a provider's (all when ID is left out) cooldown, close its circuit and unpark it.
    Reset {
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Try these providers first, in this order, and save the order in the config file
    /// (`self_heal.chain_order`); with no ID, back to the priority order.
    Reorder {
        ids: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Models per provider, as configured and as each provider reports them.
    Models {
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Saved sessions, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start an empty session.
    Create {
        /// Letters, digits, `-` and `_`; generated when left out.
        id: Option<String>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A session's transcript.
    History {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a session and its file.
    Delete {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A session as JSONL: to stdout, or to a file with --output.
    Export {
        id: String,
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
        /// The mode of the --output file, in octal [default: 0600, private].
        #[arg(long, value_name = "OCTAL", value_parser = parse_mode, requires = "output")]
        mode: Option<u32>,
    },
}
