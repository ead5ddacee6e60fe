//! The edge build's inference: our llama forward ([`super::llama`]) over a GGUF file, the BPE
//! vocabulary and merges taken from the same file, ChatML prompts, and one generation thread
//! per reply streaming pieces through a channel.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use candle_core::Device;
use candle_core::quantized::gguf_file;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};
use tokio::sync::mpsc;

use super::llama::{self, Llama};
use super::mapped;
use super::weights::Requantized;
use super::{LOAD_TASK, LocalModelStatus, LocalSettings, process_rss_bytes};
use crate::config::ProviderKind;
use crate::providers::offline::parse_tool_command;
use crate::providers::{
    BoxFuture, ChatMessage, ChatRequest, ChatStream, FailureClass, FinishReason, LoadProgress,
    Provider, ProviderError, ProviderHost, Role, StreamEvent, Usage,
};

/// Prompt tokens per forward pass: long prompts are cut so a cancel is seen between pieces.
const PROMPT_CHUNK: usize = 64;
/// Load progress events at most every this many bytes.
const PROGRESS_STEP: u64 = 8 << 20;
/// The longest context used, whatever the file declares (SmolLM2: 8,192): the rotary tables
/// are made for this many positions, and a prompt this long already takes seconds.
const MAX_CONTEXT: usize = 4096;

/// One model file, shared by every provider (and every configuration snapshot) naming it, so
/// a reload of the configuration does not read it again.
struct Shared {
    path: PathBuf,
    /// The model itself; a reply holds the lock for its whole generation (the KV cache is
    /// the model's), so replies to the same model take turns.
    slot: Mutex<Option<Loaded>>,
    info: Mutex<Info>,
}

#[derive(Default)]
struct Info {
    loading: bool,
    /// Generation threads running (waiting for the model or generating).
    replying: usize,
    loaded: bool,
    last_used: Option<Instant>,
    load_ms: Option<u64>,
    tokens_per_s: Option<f64>,
    prompt_tokens_per_s: Option<f64>,
    first_token_ms: Option<u64>,
    context_tokens: Option<u32>,
    idle_unload: Option<Duration>,
    /// An unload watcher thread runs for the current load.
    watching: bool,
}

struct Loaded {
    weights: Llama,
    tokenizer: Tokenizer,
    /// End-of-turn and end-of-text ids: generation stops at any of them.
    stops: Vec<u32>,
    context: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking generation leaves the data whole (at worst a stale KV cache, cleared at
    // the start of every reply).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn shared(path: &Path) -> Arc<Shared> {
    static MODELS: OnceLock<Mutex<HashMap<PathBuf, Arc<Shared>>>> = OnceLock::new();
    let mut models = lock(MODELS.get_or_init(Default::default));
    models
        .entry(path.to_path_buf())
        .or_insert_with(|| {
            Arc::new(Shared {
                path: path.to_path_buf(),
                slot: Mutex::new(None),
                info: Mutex::new(Info::default()),
            })
        })
        .clone()
}

pub struct Local {
    id: String,
    settings: LocalSettings,
    shared: Arc<Shared>,
    host: Option<Arc<dyn ProviderHost>>,
}

impl Local {
    pub fn new(id: &str, settings: LocalSettings, host: Option<Arc<dyn ProviderHost>>) -> Self {
        let shared = shared(&settings.model_path);
        lock(&shared.info).idle_unload = settings.idle_unload;
        Self {
            id: id.to_string(),
            settings,
            shared,
            host,
        }
    }

    fn model_name(&self) -> String {
        self.settings
            .model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".into())
    }

    /// The model's state for `providers list`.
    pub fn status(&self) -> LocalModelStatus {
        let info = lock(&self.shared.info);
        LocalModelStatus {
            model_path: self.shared.path.display().to_string(),
            state: if info.loading {
                "loading"
            } else if info.loaded {
                "loaded"
            } else {
                "unloaded"
            }
            .into(),
            replying: info.replying > 0,
            rss_bytes: process_rss_bytes(),
            load_ms: info.load_ms,
            tokens_per_s: info.tokens_per_s,
            prompt_tokens_per_s: info.prompt_tokens_per_s,
            first_token_ms: info.first_token_ms,
            context_tokens: info.context_tokens,
            idle_unload_s: info.idle_unload.map(|d| d.as_secs()),
        }
    }

    /// Free the model now (the next turn reads it again). False while a reply runs.
    pub fn unload(&self) -> bool {
        unload_if(&self.shared, |_| true)
    }
}

/// Free the model when `should(info)` holds and no reply holds it.
fn unload_if(shared: &Shared, should: impl Fn(&Info) -> bool) -> bool {
    let Ok(mut slot) = shared.slot.try_lock() else {
        return false;
    };
    let mut info = lock(&shared.info);
    if slot.is_none() || !should(&info) {
        return false;
    }
    *slot = None;
    info.loaded = false;
    true
}

/// Watch one load: free the model once it has been idle for `idle_unload`, then end.
fn watch_idle(shared: Arc<Shared>) {
    loop {
        let wait = {
            let mut info = lock(&shared.info);
            if !info.loaded {
                info.watching = false;
                return;
            }
            let Some(idle) = info.idle_unload else {
                info.watching = false;
                return;
            };
            let since = info.last_used.map_or(Duration::ZERO, |t| t.elapsed());
            idle.saturating_sub(since)
        };
        if wait.is_zero() {
            let expired = |info: &Info| {
                info.idle_unload
                    .is_some_and(|idle| info.last_used.is_none_or(|t| t.elapsed() >= idle))
            };
            if unload_if(&shared, expired) {
                tracing::info!(path = %shared.path.display(), "local model unloaded after idling");
                lock(&shared.info).watching = false;
                return;
            }
            // A reply holds the model; look again a little later.
            std::thread::sleep(Duration::from_millis(200));
        } else {
            std::thread::sleep(wait.min(Duration::from_secs(1)));
        }
    }
}

/// Counts bytes read, to report load progress.
struct Counting<R, F> {
    inner: R,
    pos: u64,
    reported: u64,
    report: F,
}

impl<R: Read, F: FnMut(u64)> Read for Counting<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        if self.pos >= self.reported + PROGRESS_STEP {
            self.reported = self.pos;
            (self.report)(self.pos);
        }
        Ok(n)
    }
}

impl<R: Seek, F> Seek for Counting<R, F> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

fn load_error(path: &Path, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::format(format!("could not read the model {}: {e}", path.display()))
}

/// Read the GGUF file: weights, vocabulary, template, stop tokens, context size.
fn load(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Loaded, ProviderError> {
    let file = std::fs::File::open(path).map_err(|e| {
        ProviderError::new(
            FailureClass::ModelNotFound,
            format!("could not open the model {}: {e}", path.display()),
        )
    })?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = Counting {
        inner: BufReader::with_capacity(1 << 20, file),
        pos: 0,
        reported: 0,
        report: |done| progress(done, total),
    };
    let content = gguf_file::Content::read(&mut reader).map_err(|e| load_error(path, e))?;
    let meta = |key: &str| content.metadata.get(key);
    let arch = meta("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if arch != "llama" {
        return Err(load_error(
            path,
            format!("architecture '{arch}' is not supported (llama is)"),
        ));
    }
    // Only ChatML templates are rendered; a model with another template would be prompted
    // in a format it does not know, so it is refused instead.
    let template = meta("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if !template.contains("<|im_start|>") {
        return Err(load_error(
            path,
            "its chat template is not ChatML (<|im_start|>), the one format supported",
        ));
    }
    let tokenizer = tokenizer_from_gguf(&content).map_err(|e| load_error(path, e))?;
    let mut stops: Vec<u32> = ["<|im_end|>", "<|endoftext|>"]
        .iter()
        .filter_map(|t| tokenizer.token_to_id(t))
        .collect();
    if let Some(eos) = meta("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()) {
        stops.push(eos);
    }
    if stops.is_empty() {
        return Err(load_error(path, "it names no end-of-turn token"));
    }
    let declared = meta("llama.context_length")
        .and_then(|v| v.to_u32().ok())
        .map_or(MAX_CONTEXT, |n| n as usize);
    let context = declared.min(MAX_CONTEXT);
    let shape = llama::Shape::from_gguf(&content).map_err(|e| load_error(path, e))?;
    let pad = llama::tiled_q8_0();
    let cache = super::weights_cache_dir();
    let weights = match mapped::open_or_build(path, &cache, pad).map_err(|e| load_error(path, e))? {
        (Some(mapped), source) => {
            tracing::info!(model = %path.display(), ?source, "local model weights mapped");
            Llama::new(shape, context, pad, |name| mapped.tensor(name))
        }
        (None, source) => {
            tracing::info!(model = %path.display(), ?source, "local model weights read into memory");
            let mut content = content;
            let mut reader = Requantized::new(&mut content, reader);
            Llama::new(shape, context, pad, |name| {
                content.tensor(&mut reader, name, &Device::Cpu)
            })
        }
    }
    .map_err(|e| load_error(path, e))?;
    progress(total, total);
    Ok(Loaded {
        weights,
        tokenizer,
        stops,
        context,
    })
}

/// A byte-level BPE tokenizer (GPT-2 style, as `tokenizer.ggml.model = gpt2` says) from the
/// vocabulary and merges the GGUF file carries; control tokens become special tokens.
pub fn tokenizer_from_gguf(content: &gguf_file::Content) -> Result<Tokenizer, String> {
    let meta = |key: &str| {
        content
            .metadata
            .get(key)
            .ok_or_else(|| format!("{key} is missing"))
    };
    let model = meta("tokenizer.ggml.model")?
        .to_string()
        .map_err(|e| e.to_string())?;
    if model != "gpt2" {
        return Err(format!("tokenizer '{model}' is not supported (gpt2 is)"));
    }
    let tokens = meta("tokenizer.ggml.tokens")?
        .to_vec()
        .map_err(|e| e.to_string())?;
    let mut vocab = ahash_vocab(tokens.len());
    let mut names = Vec::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        let token = token.to_string().map_err(|e| e.to_string())?;
        vocab.insert(token.clone(), id as u32);
        names.push(token.clone());
    }
    let merges = meta("tokenizer.ggml.merges")?
        .to_vec()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|m| {
            let m = m.to_string().map_err(|e| e.to_string())?;
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("merge '{m}' is not two tokens"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    // The "smollm" pre-tokenizer: digits one by one, then GPT-2's byte-level split.
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    // Token type 3 is "control" in GGUF: <|im_start|>, <|im_end|>, <|endoftext|>, ...
    if let Some(types) = content
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
    {
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&names)
            .filter(|(t, _)| t.to_i32().ok() == Some(3))
            .map(|(_, name)| AddedToken::from(name.clone(), true))
            .collect();
        tokenizer.add_special_tokens(&special);
    }
    Ok(tokenizer)
}

fn ahash_vocab(capacity: usize) -> tokenizers::models::bpe::Vocab {
    let mut vocab = tokenizers::models::bpe::Vocab::default();
    vocab.reserve(capacity);
    vocab
}

/// The conversation as ChatML. Consecutive system messages (the system prompt, then memory
/// context) are joined into one block; tool results go in as user turns saying which tool
/// answered, since the template has no tool role.
pub fn chatml(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    let mut system: Vec<&str> = Vec::new();
    let flush = |out: &mut String, system: &mut Vec<&str>| {
        if !system.is_empty() {
            out.push_str("<|im_start|>system\n");
            out.push_str(&system.join("\n\n"));
            out.push_str("<|im_end|>\n");
            system.clear();
        }
    };
    for m in messages {
        if m.role == Role::System {
            system.push(m.content.trim());
            continue;
        }
        flush(&mut out, &mut system);
        let (role, content) = match m.role {
            Role::User => ("user", m.content.clone()),
            Role::Assistant => ("assistant", m.content.clone()),
            Role::Tool => (
                "user",
                format!(
                    "The tool {} returned:\n{}",
                    m.name.as_deref().unwrap_or("tool"),
                    m.content
                ),
            ),
            Role::System => unreachable!("handled above"),
        };
        out.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
    }
    flush(&mut out, &mut system);
    out.push_str("<|im_start|>assistant\n");
    out
}

/// One reply's worth of work for the generation thread.
struct Job {
    prompt: String,
    max_tokens: u32,
    sampling: Sampling,
    seed: u64,
}

type Sender = mpsc::UnboundedSender<Result<StreamEvent, ProviderError>>;

fn candle_error(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(FailureClass::StreamInterrupted, format!("local model: {e}"))
}

/// Run one reply on this thread: load if needed, then prompt, then sample token by token,
/// sending each piece of text as soon as it decodes. Returns when done, on error, or at the
/// first check after `cancel` is set.
fn generate(
    shared: &Arc<Shared>,
    job: Job,
    tx: &Sender,
    cancel: &AtomicBool,
    emit: &dyn Fn(LoadProgress),
) -> Result<(), ProviderError> {
    let mut slot = lock(&shared.slot);
    if slot.is_none() {
        let name = shared
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        lock(&shared.info).loading = true;
        let started = Instant::now();
        let mut progress = |done: u64, total: u64| {
            emit(LoadProgress {
                task: LOAD_TASK.into(),
                done,
                total: Some(total),
                message: format!(
                    "loading {name}: {} of {} MB",
                    done >> 20,
                    total.div_ceil(1 << 20)
                ),
            })
        };
        progress(0, std::fs::metadata(&shared.path).map_or(0, |m| m.len()));
        let loaded = load(&shared.path, &mut progress);
        let mut info = lock(&shared.info);
        info.loading = false;
        let loaded = loaded?;
        info.loaded = true;
        info.load_ms = Some(started.elapsed().as_millis() as u64);
        info.context_tokens = Some(loaded.context as u32);
        info.last_used = Some(Instant::now());
        if !info.watching && info.idle_unload.is_some() {
            info.watching = true;
            let watched = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("local-model-idle".into())
                .spawn(move || watch_idle(watched));
            if spawned.is_err() {
                info.watching = false;
            }
        }
        *slot = Some(loaded);
    }
    let Some(model) = slot.as_mut() else {
        return Err(candle_error("the model is not loaded"));
    };
    let result = run(model, &job, tx, cancel, shared);
    lock(&shared.info).last_used = Some(Instant::now());
    result
}

fn run(
    model: &mut Loaded,
    job: &Job,
    tx: &Sender,
    cancel: &AtomicBool,
    shared: &Shared,
) -> Result<(), ProviderError> {
    let started = Instant::now();
    let prompt = model
        .tokenizer
        .encode_fast(job.prompt.as_str(), false)
        .map_err(candle_error)?
        .get_ids()
        .to_vec();
    // At least one token must fit after the prompt.
    if prompt.len() >= model.context {
        return Err(ProviderError::new(
            FailureClass::ContextOverflow,
            format!(
                "the prompt is {} tokens; the local model's context holds {}",
                prompt.len(),
                model.context
            ),
        ));
    }
    let budget = (job.max_tokens as usize).min(model.context - prompt.len());
    // The cache holds the prompt and the reply, and no more.
    model
        .weights
        .reset(prompt.len() + budget)
        .map_err(candle_error)?;
    let mut logits = None;
    for chunk in prompt.chunks(PROMPT_CHUNK) {
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        logits = Some(model.weights.forward(chunk).map_err(candle_error)?);
    }
    let prompt_time = started.elapsed();
    let mut logits = logits.ok_or_else(|| candle_error("empty prompt"))?;
    let mut sampler = LogitsProcessor::from_sampling(job.seed, job.sampling.clone());
    let mut decoder = model.tokenizer.decode_stream(true);
    let mut generated = 0usize;
    let mut first_token: Option<Instant> = None;
    let finish = loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        let token = sampler.sample(&logits).map_err(candle_error)?;
        if first_token.is_none() {
            first_token = Some(Instant::now());
        }
        if model.stops.contains(&token) {
            break FinishReason::Stop;
        }
        generated += 1;
        if let Some(text) = decoder.step(token).map_err(candle_error)?
            && !text.is_empty()
            && tx.send(Ok(StreamEvent::Text(text))).is_err()
        {
            // The reader is gone: nobody wants the rest.
            return Ok(());
        }
        if generated >= budget {
            break FinishReason::Length;
        }
        logits = model.weights.forward(&[token]).map_err(candle_error)?;
    };
    {
        let mut info = lock(&shared.info);
        info.prompt_tokens_per_s = Some(prompt.len() as f64 / prompt_time.as_secs_f64());
        if let Some(first) = first_token {
            info.first_token_ms = Some(first.duration_since(started).as_millis() as u64);
            // Tokens after the first, over the time after the first.
            let after = first.elapsed().as_secs_f64();
            if generated > 1 && after > 0.0 {
                info.tokens_per_s = Some((generated - 1) as f64 / after);
            }
        }
    }
    let _ = tx.send(Ok(StreamEvent::Usage(Usage {
        input_tokens: prompt.len() as u64,
        output_tokens: generated as u64,
    })));
    let _ = tx.send(Ok(StreamEvent::Finish(finish)));
    Ok(())
}

/// One running reply, counted in [`Info::replying`] while it lives.
struct Replying(Arc<Shared>);

impl Replying {
    fn new(shared: &Arc<Shared>) -> Self {
        lock(&shared.info).replying += 1;
        Self(shared.clone())
    }
}

impl Drop for Replying {
    fn drop(&mut self) {
        let mut info = lock(&self.0.info);
        info.replying = info.replying.saturating_sub(1);
    }
}

/// The reply stream; dropping it stops the generation at the next token.
struct LocalStream {
    rx: mpsc::UnboundedReceiver<Result<StreamEvent, ProviderError>>,
    cancel: Arc<AtomicBool>,
}

impl ChatStream for LocalStream {
    fn next_event(&mut self) -> BoxFuture<'_, Result<Option<StreamEvent>, ProviderError>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some(Ok(event)) => Ok(Some(event)),
                Some(Err(e)) => Err(e),
                None => Ok(None),
            }
        })
    }
}

impl Drop for LocalStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

fn seed_now() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

impl Provider for Local {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn default_model(&self) -> String {
        self.model_name()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Box<dyn ChatStream>, ProviderError>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let cancel = Arc::new(AtomicBool::new(false));
            let stream = Box::new(LocalStream {
                rx,
                cancel: cancel.clone(),
            }) as Box<dyn ChatStream>;
            // `/tool NAME {json}` stays an explicit tool call, as with the offline provider:
            // a model this small does not call tools reliably, so none are offered to it.
            let last_user = request.messages.last().filter(|m| m.role == Role::User);
            if let Some(command) = last_user.and_then(|m| m.content.trim().strip_prefix("/tool")) {
                let events = match parse_tool_command(command) {
                    Ok((name, arguments)) => vec![
                        StreamEvent::ToolCall {
                            index: 0,
                            id: Some("local-tool-1".into()),
                            name: Some(name),
                            arguments,
                        },
                        StreamEvent::Finish(FinishReason::ToolCalls),
                    ],
                    Err(why) => vec![
                        StreamEvent::Text(why),
                        StreamEvent::Finish(FinishReason::Stop),
                    ],
                };
                for e in events {
                    let _ = tx.send(Ok(e));
                }
                return Ok(stream);
            }
            let temperature = self.settings.temperature;
            let sampling = if temperature <= 0.0 {
                Sampling::ArgMax
            } else if self.settings.top_p >= 1.0 {
                Sampling::All { temperature }
            } else {
                Sampling::TopP {
                    p: self.settings.top_p,
                    temperature,
                }
            };
            let job = Job {
                prompt: chatml(&request.messages),
                max_tokens: request
                    .max_tokens
                    .unwrap_or(self.settings.max_tokens)
                    .min(self.settings.max_tokens)
                    .max(1),
                sampling,
                seed: self.settings.seed.unwrap_or_else(seed_now),
            };
            let shared = self.shared.clone();
            let host = self.host.clone();
            // Counted before the thread starts, so a status read right after sees it; the
            // count drops with the thread's closure, however it ends.
            let replying = Replying::new(&shared);
            let spawned = std::thread::Builder::new()
                .name("local-model".into())
                .spawn(move || {
                    let emit = |progress: LoadProgress| {
                        if let Some(host) = &host {
                            host.progress(progress);
                        }
                    };
                    let _replying = replying;
                    if let Err(e) = generate(&shared, job, &tx, &cancel, &emit) {
                        let _ = tx.send(Err(e));
                    }
                });
            if let Err(e) = spawned {
                return Err(candle_error(format!("could not start a thread: {e}")));
            }
            Ok(stream)
        })
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async move { Ok(vec![self.model_name()]) })
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            if self.settings.model_path.is_file() {
                Ok(())
            } else {
                Err(ProviderError::new(
                    FailureClass::ModelNotFound,
                    format!("no model file at {}", self.settings.model_path.display()),
                ))
            }
        })
    }

    fn local_status(&self) -> Option<LocalModelStatus> {
        Some(self.status())
    }
}
