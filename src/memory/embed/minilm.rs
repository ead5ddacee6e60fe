//! The `minilm` embedder (edge builds): all-MiniLM-L6-v2, 384 dimensions, run in-process.
//!
//! The model directory holds `model.onnx` (int8 weights; inputs `input_ids`, `attention_mask`,
//! `token_type_ids`, all i64 [batch, sequence]; output `last_hidden_state` [batch, sequence,
//! 384]) and `tokenizer.json`, as `dist/fetch-models.sh` places them. tract (pure Rust) runs
//! the graph and `tokenizers` splits the text; pooling is sentence-transformers' own: the
//! mean of the last hidden state over the real tokens, then L2 normalisation.
//!
//! Parsing, typing and decluttering the ONNX graph costs most of a second, at every start of a
//! process; a CLI search would pay it for one query. So the decluttered graph is kept in
//! tract's NNEF form in a cache directory (`<state>/cache/minilm/`), written on first use and
//! read back in a fraction of that. A cache file is trusted only when it names this
//! `model.onnx` (its sha256) and this tract, and its own sha256 matches; anything else (torn,
//! stale, another model's) is rebuilt from the ONNX file and replaced, and a cache that
//! cannot be written only costs the rebuild.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;
use tract_nnef::internal::Framework as _;
use tract_onnx::WithOnnx as _;
use tract_onnx::prelude::*;

use super::{EmbedError, Embedder, l2_normalize};
use crate::memory::types::EmbedderIdentity;

const MODEL_FILE: &str = "model.onnx";
const TOKENIZER_FILE: &str = "tokenizer.json";
const DIMENSIONS: usize = 384;
/// The model's `max_seq_length`. tokenizer.json itself says 128, which would silently drop
/// the second half of what the model can read. [CLS] and [SEP] take two of them.
const MAX_TOKENS: usize = 256;
const SPECIAL_TOKENS: usize = 2;
/// Sequences per model run at most. Batching beat one sequence per run by about 1.3x
/// (measured on 32 texts of 40-60 words).
const BATCH: usize = 32;
/// Padded tokens (sequences x longest) per model run at most. tract keeps every intermediate
/// of a run alive until it ends, and attention alone holds sequences x 12 heads x length^2
/// floats per layer: 32 sequences of 256 tokens took hundreds of MB per thread.
const BATCH_TOKENS: usize = 2048;
/// Threads one `embed` call may use; more than a few only contend for memory bandwidth.
const MAX_THREADS: usize = 4;
/// The tract release that writes and reads the cached graph; part of the cache key, since
/// NNEF as tract writes it is not promised to read back in another release. A test checks it
/// against the version tract itself records.
const TRACT_VERSION: &str = "0.23.9";
/// A cache file: this magic, the key (sha256 of the tract version and `model.onnx`), the
/// sha256 of the NNEF archive, then the archive.
const CACHE_MAGIC: &[u8; 8] = b"OCRSMN01";
/// What the cached graph is, beyond the model and tract: part of the key, so a cache written
/// by a version that rewrote the graph differently is never read (the first form, tract's
/// own decluttering, had no name).
const GRAPH_FORM: &str = "rows gathered before dequantising";
const CACHE_HEADER: usize = CACHE_MAGIC.len() + 32 + 32;

pub struct MiniLmEmbedder {
    // A plan is immutable once built (each run spawns its own state), so `&self` can run it
    // from several threads at once. It starts as the decluttered graph, which answers a
    // query without the optimising pass; the first call that embeds several texts (an index
    // run) swaps in the optimised plan. Optimising costs several queries' time (about 100 ms
    // against 20-40 ms for a short query) and halves the time per text or better, so a
    // one-query CLI search skips it and indexing gains.
    plan: std::sync::RwLock<Arc<TypedRunnableModel>>,
    /// Held while the optimised plan is built, so two callers do not both build it; set once
    /// it is in place (or failed: the decluttered plan stays, which is slower, not wrong).
    optimized: std::sync::Mutex<bool>,
    tokenizer: Tokenizer,
    model_hash: String,
    /// Whether the graph was read from the cache rather than built from `model.onnx`.
    graph_from_cache: bool,
}

impl MiniLmEmbedder {
    /// The identity [`load`](Self::load) would give, without building the model: for the
    /// doctor, which compares it with the identity a store recorded.
    pub fn identity_of(dir: &Path) -> Result<EmbedderIdentity, EmbedError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| EmbedError::Model {
                dir: dir.display().to_string(),
                message: format!("cannot read {name}: {e}"),
            })
        };
        Ok(EmbedderIdentity {
            name: "minilm".into(),
            dimensions: DIMENSIONS as u32,
            model_hash: model_hash(&read(MODEL_FILE)?, &read(TOKENIZER_FILE)?),
        })
    }

    /// Load `model.onnx` and `tokenizer.json` from `dir`, building the graph from the ONNX
    /// file; it is optimised on the first call that embeds more than one text.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::open(dir, None)
    }

    /// [`load`](Self::load), with the decluttered graph read from (or, on first use, written
    /// to) `cache_dir`.
    pub fn load_cached(dir: &Path, cache_dir: &Path) -> Result<Self, EmbedError> {
        Self::open(dir, Some(cache_dir))
    }

    fn open(dir: &Path, cache_dir: Option<&Path>) -> Result<Self, EmbedError> {
        let model_error = |message: String| EmbedError::Model {
            dir: dir.display().to_string(),
            message,
        };
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| {
                model_error(if e.kind() == std::io::ErrorKind::NotFound {
                    format!("{name} is missing; run dist/fetch-models.sh to fetch it")
                } else {
                    format!("cannot read {name}: {e}")
                })
            })
        };
        let model_bytes = read(MODEL_FILE)?;
        let tokenizer_bytes = read(TOKENIZER_FILE)?;

        // Parsing tokenizer.json (a 30,000-word vocabulary and its regexes) takes about as
        // long as reading the cached graph, so the two run side by side.
        let (tokenizer, plan, model_hash) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| load_tokenizer(&tokenizer_bytes));
            let model_digest = ModelDigest::of(&model_bytes);
            let model_hash = model_hash_from(&model_digest, &tokenizer_bytes);
            let plan = match cache_dir {
                Some(cache_dir) => cached_plan(cache_dir, &model_bytes, &model_digest),
                None => decluttered(&model_bytes)
                    .and_then(|m| m.into_runnable())
                    .map(|plan| (plan, false)),
            };
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|_| Err("loading it panicked".into()));
            (tokenizer, plan, model_hash)
        });
        let tokenizer = tokenizer.map_err(|e| model_error(format!("{TOKENIZER_FILE}: {e}")))?;
        let (plan, graph_from_cache) =
            plan.map_err(|e| model_error(format!("{MODEL_FILE}: {e:#}")))?;
        tracing::debug!("minilm: graph from the cache: {graph_from_cache}");
        Ok(Self {
            plan: std::sync::RwLock::new(plan),
            optimized: std::sync::Mutex::new(false),
            tokenizer,
            model_hash,
            graph_from_cache,
        })
    }

    fn token_ids(&self, text: &str) -> Result<Vec<i64>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| EmbedError::Failed(format!("tokenizing: {e}")))?;
        let ids = encoding.get_ids();
        // As the tokenizer's own truncation does: the text is cut, [SEP] stays last.
        let mut out: Vec<i64> = ids
            .iter()
            .take(MAX_TOKENS.min(ids.len()))
            .map(|&id| i64::from(id))
            .collect();
        if ids.len() > MAX_TOKENS
            && let (Some(last), Some(&sep)) = (out.last_mut(), ids.last())
        {
            *last = i64::from(sep);
        }
        Ok(out)
    }

    /// The plan to run: the optimised one once several texts have been asked for at once.
    fn plan_for(&self, texts: usize) -> Arc<TypedRunnableModel> {
        if texts > 1 {
            let mut optimized = self.optimized.lock().unwrap_or_else(|p| p.into_inner());
            if !*optimized {
                *optimized = true;
                let current = self.current_plan();
                match current
                    .model()
                    .clone()
                    .into_optimized()
                    .and_then(|m| m.into_runnable())
                {
                    Ok(faster) => {
                        *self.plan.write().unwrap_or_else(|p| p.into_inner()) = faster;
                    }
                    Err(e) => tracing::warn!("minilm: optimising the model failed: {e:#}"),
                }
            }
        }
        self.current_plan()
    }

    fn current_plan(&self) -> Arc<TypedRunnableModel> {
        self.plan.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the graph was read from the cache rather than built from `model.onnx`.
    pub fn graph_from_cache(&self) -> bool {
        self.graph_from_cache
    }

    /// Whether the optimised plan is in place (tests).
    #[cfg(test)]
    fn is_optimized(&self) -> bool {
        *self.optimized.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run the model once on `batch`, padded to its longest sequence, and pool each row.
    fn run(
        &self,
        plan: &Arc<TypedRunnableModel>,
        batch: &[&[i64]],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let rows = batch.len();
        let len = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut ids = vec![0i64; rows * len];
        let mut mask = vec![0i64; rows * len];
        for (row, tokens) in batch.iter().enumerate() {
            ids[row * len..row * len + tokens.len()].copy_from_slice(tokens);
            mask[row * len..row * len + tokens.len()].fill(1);
        }
        let failed = |e: TractError| EmbedError::Failed(format!("{e:#}"));
        let tensor = |data: &[i64]| Tensor::from_shape(&[rows, len], data).map_err(failed);
        let inputs = tvec![
            tensor(&ids)?.into(),
            tensor(&mask)?.into(),
            tensor(&vec![0; rows * len])?.into(),
        ];
        let outputs = plan.run(inputs).map_err(failed)?;
        let hidden = outputs
            .first()
            .ok_or_else(|| EmbedError::Failed("the model gave no output".into()))?
            .to_plain_array_view::<f32>()
            .map_err(failed)?;
        if hidden.shape() != [rows, len, DIMENSIONS] {
            return Err(EmbedError::Failed(format!(
                "the model gave shape {:?}, expected [{rows}, {len}, {DIMENSIONS}]",
                hidden.shape()
            )));
        }
        let hidden = hidden.as_standard_layout();
        let hidden = hidden
            .as_slice()
            .ok_or_else(|| EmbedError::Failed("the model output is not contiguous".into()))?;
        let vectors = (0..rows)
            .map(|row| {
                // Padding positions are masked out, as sentence-transformers does.
                let mut pooled = vec![0.0f32; DIMENSIONS];
                let real = batch[row].len();
                for token in 0..real {
                    let at = (row * len + token) * DIMENSIONS;
                    for (acc, x) in pooled.iter_mut().zip(&hidden[at..at + DIMENSIONS]) {
                        *acc += x;
                    }
                }
                // Dividing by the token count does not change the direction, but keeps the
                // values those of a mean before normalising.
                pooled.iter_mut().for_each(|x| *x /= real.max(1) as f32);
                l2_normalize(&mut pooled);
                pooled
            })
            .collect();
        Ok(vectors)
    }
}

fn model_hash(model_bytes: &[u8], tokenizer_bytes: &[u8]) -> String {
    model_hash_from(&ModelDigest::of(model_bytes), tokenizer_bytes)
}

/// sha256 of `model.onnx`: the digest keys the cache, the state goes on into the identity.
struct ModelDigest {
    hasher: Sha256,
    digest: [u8; 32],
}

impl ModelDigest {
    fn of(model_bytes: &[u8]) -> Self {
        let hasher = Sha256::new().chain_update(model_bytes);
        let digest = hasher.clone().finalize().into();
        Self { hasher, digest }
    }
}

/// The identity's hash, sha256 over `model.onnx` then `tokenizer.json`, continued from the
/// model's own digest state so the 23 MB are hashed once for both the identity and the cache
/// key. Stores record it: the formula must not change.
fn model_hash_from(model_digest: &ModelDigest, tokenizer_bytes: &[u8]) -> String {
    let digest = model_digest
        .hasher
        .clone()
        .chain_update(tokenizer_bytes)
        .finalize();
    format!("sha256:{}", hex::encode(&digest[..8]))
}

fn load_tokenizer(bytes: &[u8]) -> Result<Tokenizer, String> {
    let mut tokenizer = Tokenizer::from_bytes(bytes).map_err(|e| e.to_string())?;
    // Untruncated, so chunking can count a text's real length; `token_ids` cuts to the
    // window itself.
    tokenizer.with_truncation(None).map_err(|e| e.to_string())?;
    // The file pads every text to 128 tokens; `run` pads each batch to its longest instead.
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// The ONNX graph, typed and decluttered, rows gathered before they are dequantised: what a
/// query runs, and what the cache holds.
fn decluttered(model_bytes: &[u8]) -> TractResult<TypedModel> {
    gather_before_dequantising(onnx_decluttered(model_bytes)?)
}

/// The ONNX graph as tract declutters it.
fn onnx_decluttered(model_bytes: &[u8]) -> TractResult<TypedModel> {
    let mut reader = model_bytes;
    // The graph declares its inputs with symbolic [batch, sequence] dims, so one plan serves
    // every batch size and length.
    tract_onnx::onnx()
        .model_for_read(&mut reader)?
        .into_typed()?
        .into_decluttered()
}

/// Look up the rows a run needs before dequantising them, not after.
///
/// The int8 export stores the word embeddings as int8 with a scale per row, and the graph
/// turns the whole table (30,522 x 384) into f32 and only then gathers the rows of the
/// text's tokens. tract cannot fold that into a constant (it would quadruple the table, past
/// its folding budget), so every run converted 11.7 million values to read a few dozen rows,
/// and every optimiser pass evaluated it once more to find that out. Gathering the int8 rows
/// and their scales first, then converting those, gives the very same values: the cast and
/// the product are per element, and a gather only picks elements.
fn gather_before_dequantising(mut model: TypedModel) -> TractResult<TypedModel> {
    use tract_onnx::tract_core::ops::array::Gather;
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::cast::Cast;
    loop {
        let mut patch = None;
        for gather in &model.nodes {
            let Some(gather_op) = gather.op_as::<Gather>() else {
                continue;
            };
            let mul = model.node(gather.inputs[0].node);
            let Some(mul_op) = mul.op_as::<TypedBinOp>() else {
                continue;
            };
            if gather_op.axis != 0 || mul_op.0.name() != "Mul" || mul.inputs.len() != 2 {
                continue;
            }
            let (cast_in, scale) = if model.node(mul.inputs[0].node).op_is::<Cast>() {
                (mul.inputs[0], mul.inputs[1])
            } else {
                (mul.inputs[1], mul.inputs[0])
            };
            let cast = model.node(cast_in.node);
            if !cast.op_is::<Cast>() {
                continue;
            }
            let quantised = cast.inputs[0];
            let (q_fact, scale_fact) = (model.outlet_fact(quantised)?, model.outlet_fact(scale)?);
            // Constants both, with a scale per row (or the gathered scale would not line up).
            if q_fact.konst.is_none()
                || scale_fact.konst.is_none()
                || q_fact.rank() != scale_fact.rank()
                || q_fact.shape[0] != scale_fact.shape[0]
            {
                continue;
            }
            let mut p = TypedModelPatch::default();
            let ids = p.tap_model(&model, gather.inputs[1])?;
            let quantised = p.tap_model(&model, quantised)?;
            let scale = p.tap_model(&model, scale)?;
            let rows = p.wire_node(
                format!("{}.rows", gather.name),
                gather_op.clone(),
                &[quantised, ids],
            )?[0];
            let row_scales = p.wire_node(
                format!("{}.row_scales", gather.name),
                gather_op.clone(),
                &[scale, ids],
            )?[0];
            let rows = p.wire_node(
                format!("{}.rows_f32", gather.name),
                cast.op.clone(),
                &[rows],
            )?[0];
            let wire = p.wire_node(
                format!("{}.dequantised", gather.name),
                mul.op.clone(),
                &[rows, row_scales],
            )?[0];
            p.shunt_outside(&model, gather.id.into(), wire)?;
            patch = Some(p);
            break;
        }
        match patch {
            Some(patch) => patch.apply(&mut model)?,
            None => break,
        }
    }
    // Drops the table's f32 conversion, which nothing reads any more.
    model.compact()?;
    Ok(model)
}
/// The plan for `model.onnx`: the decluttered graph from `cache_dir` when a file there holds
/// it for this model and this tract, else built from the ONNX bytes and written there; with
/// whether it came from the cache.
fn cached_plan(
    cache_dir: &Path,
    model_bytes: &[u8],
    model_digest: &ModelDigest,
) -> TractResult<(Arc<TypedRunnableModel>, bool)> {
    let key = cache_key(&model_digest.digest);
    let path = cache_path(cache_dir, &key);
    match read_cache(&path, &key) {
        Ok(model) => match model.into_runnable() {
            Ok(plan) => return Ok((plan, true)),
            Err(e) => tracing::warn!(
                "minilm: the cached graph {} does not run ({e:#}); rebuilding it",
                path.display()
            ),
        },
        Err(CacheMiss::Absent) => {}
        Err(CacheMiss::Invalid(reason)) => tracing::warn!(
            "minilm: the cached graph {} {reason}; rebuilding it",
            path.display()
        ),
    }
    let model = decluttered(model_bytes)?;
    if let Err(e) = write_cache(&path, &key, &model) {
        tracing::warn!(
            "minilm: cannot cache the decluttered graph as {} ({e}); every start will \
             build it from {MODEL_FILE}",
            path.display()
        );
    }
    Ok((model.into_runnable()?, false))
}

/// What a cache file must name: this tract and this `model.onnx`.
fn cache_key(model_digest: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        // The form of the graph: a cache of an older form is another file, rebuilt.
        .chain_update(b"openclaw-rs minilm decluttered nnef\0")
        .chain_update(GRAPH_FORM.as_bytes())
        .chain_update(b"\0tract ")
        .chain_update(TRACT_VERSION.as_bytes())
        .chain_update(b"\0")
        .chain_update(model_digest)
        .finalize()
        .into()
}

/// One file per key, so two models (or two tracts) never overwrite each other's graph.
fn cache_path(cache_dir: &Path, key: &[u8; 32]) -> PathBuf {
    cache_dir.join(format!("minilm-{}.nnef", hex::encode(&key[..8])))
}

#[derive(Debug)]
enum CacheMiss {
    Absent,
    Invalid(String),
}

fn read_cache(path: &Path, key: &[u8; 32]) -> Result<TypedModel, CacheMiss> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CacheMiss::Absent),
        Err(e) => return Err(CacheMiss::Invalid(format!("cannot be read: {e}"))),
    };
    let invalid = |reason: &str| CacheMiss::Invalid(reason.to_string());
    if bytes.len() < CACHE_HEADER || !bytes.starts_with(CACHE_MAGIC) {
        return Err(invalid("is not a cached graph"));
    }
    let (header, archive) = bytes.split_at(CACHE_HEADER);
    if header[CACHE_MAGIC.len()..CACHE_MAGIC.len() + 32] != key[..] {
        return Err(invalid("is for another model or tract"));
    }
    if header[CACHE_MAGIC.len() + 32..] != Sha256::digest(archive)[..] {
        return Err(invalid("is damaged (its checksum does not match)"));
    }
    let mut reader = archive;
    tract_nnef::nnef()
        .with_onnx()
        .model_for_read(&mut reader)
        .map_err(|e| CacheMiss::Invalid(format!("does not parse ({e:#})")))
}

fn write_cache(path: &Path, key: &[u8; 32], model: &TypedModel) -> std::io::Result<()> {
    let mut archive = Vec::new();
    tract_nnef::nnef()
        .with_onnx()
        .write(model, &mut archive)
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let mut file = Vec::with_capacity(CACHE_HEADER + archive.len());
    file.extend_from_slice(CACHE_MAGIC);
    file.extend_from_slice(key);
    file.extend_from_slice(&Sha256::digest(&archive));
    file.extend_from_slice(&archive);
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        crate::platform::dir_mode(&mut builder, crate::files::PRIVATE_DIR).create(dir)?;
    }
    // Unsynced: a file cut short by a crash fails the checksum and is rebuilt.
    crate::files::write_atomic_unsynced(path, &file, crate::files::PRIVATE_FILE)
}

/// The texts (indices into `ids`) of each model run. Texts of similar length go together so
/// little of a run is padding; a run holds at most [`BATCH`] texts and [`BATCH_TOKENS`] padded
/// tokens (one text longer than that runs alone), and a call with several texts is split into
/// at least `workers` runs so every worker has one. Longest runs first: the workers take them
/// in order, and a long run last would leave the other workers idle.
fn batches(ids: &[Vec<i64>], workers: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
    let rows_cap = BATCH.min(ids.len().div_ceil(workers.max(1))).max(1);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Longest first, so a batch's first text sets its padded length.
        let padded = current.first().map_or(0, |&first| ids[first].len().max(1));
        if !current.is_empty()
            && (current.len() >= rows_cap || (current.len() + 1) * padded > BATCH_TOKENS)
        {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

impl Embedder for MiniLmEmbedder {
    fn identity(&self) -> EmbedderIdentity {
        EmbedderIdentity {
            name: "minilm".into(),
            dimensions: DIMENSIONS as u32,
            model_hash: self.model_hash.clone(),
        }
    }

    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn window(&self) -> Option<usize> {
        Some(MAX_TOKENS - SPECIAL_TOKENS)
    }

    fn count_tokens(&self, text: &str) -> usize {
        // An encoding error would fail the embedding too; counting words keeps chunking going.
        self.tokenizer
            .encode_fast(text, false)
            .map_or_else(|_| text.split_whitespace().count(), |e| e.get_ids().len())
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = texts
            .iter()
            .map(|text| self.token_ids(text))
            .collect::<Result<Vec<_>, _>>()?;
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
            .min(ids.len())
            .max(1);
        let batches = batches(&ids, workers);
        let plan = self.plan_for(texts.len());
        // tract runs a plan on one core; batches are independent, so the workers take them
        // in turn, longest first (ingestion runs off the UI thread, and the plan is shared
        // read-only).
        let next = std::sync::atomic::AtomicUsize::new(0);
        type Share = Result<Vec<(usize, Vec<f32>)>, EmbedError>;
        let run_share = || -> Share {
            let mut done = Vec::new();
            loop {
                let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(batch) = batches.get(at) else {
                    return Ok(done);
                };
                let rows: Vec<&[i64]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
                done.extend(batch.iter().copied().zip(self.run(&plan, &rows)?));
            }
        };
        let shares: Vec<Share> = if workers == 1 || batches.len() == 1 {
            vec![run_share()]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers.min(batches.len()))
                    .map(|_| scope.spawn(run_share))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(EmbedError::Failed("the model panicked".into()))
                        })
                    })
                    .collect()
            })
        };
        let mut out = vec![Vec::new(); ids.len()];
        for share in shares {
            for (i, vector) in share? {
                out[i] = vector;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
