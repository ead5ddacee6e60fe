//! The llama forward pass (SmolLM2's architecture) over candle ops: token embedding, RMS
//! norm, interleaved RoPE, grouped-query attention, SiLU-gated MLP. Ours rather than
//! candle-transformers' `ModelWeights` for two reasons: its fields are private, so it cannot
//! be given weights that live elsewhere (a memory mapping), and it grows the KV cache with
//! `Tensor::cat`, a copy of the whole cache per layer per token. Here the cache is allocated
//! once per reply for the positions the reply can reach and written in place.
//!
//! The embedding stays quantized (looked up row by row, and shared with the output layer
//! when the file ties them), where candle-transformers keeps a second, f32 copy of it.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Result, Tensor};

/// The model's shape, from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f32,
    pub rope_base: f32,
}

impl Shape {
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let get = |key: &str| {
            content
                .metadata
                .get(key)
                .ok_or_else(|| candle_core::Error::Msg(format!("{key} is missing")))
        };
        let heads = get("llama.attention.head_count")?.to_u32()? as usize;
        let kv_heads = get("llama.attention.head_count_kv")?.to_u32()? as usize;
        let hidden = get("llama.embedding_length")?.to_u32()? as usize;
        if heads == 0
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || !hidden.is_multiple_of(heads)
        {
            candle_core::bail!("{heads} heads over {kv_heads} key/value heads and {hidden} values")
        }
        let head_dim = hidden / heads;
        let rope = get("llama.rope.dimension_count")?.to_u32()? as usize;
        if rope != head_dim {
            candle_core::bail!("rotary dimension {rope} is not the head size {head_dim}")
        }
        Ok(Self {
            layers: get("llama.block_count")?.to_u32()? as usize,
            hidden,
            heads,
            kv_heads,
            head_dim,
            eps: get("llama.attention.layer_norm_rms_epsilon")?.to_f32()?,
            rope_base: get("llama.rope.freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
        })
    }
}

struct Layer {
    attn_norm: Tensor,
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    o: QMatMul,
    ffn_norm: Tensor,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

/// One layer's keys and values, `(kv_heads, capacity, head_dim)` each.
struct Cache {
    k: Tensor,
    v: Tensor,
}

pub struct Llama {
    shape: Shape,
    embedding: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: Tensor,
    output: QMatMul,
    /// Rotary tables for every position of the context, `(context, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
    caches: Vec<Cache>,
    capacity: usize,
    /// Positions already in the cache.
    len: usize,
}

fn dequantized(t: QTensor) -> Result<Tensor> {
    t.dequantize(&Device::Cpu)
}

impl Llama {
    /// Build the model from its tensors, by GGUF name, for `context` positions at most.
    pub fn new(
        shape: Shape,
        context: usize,
        mut tensor: impl FnMut(&str) -> Result<QTensor>,
    ) -> Result<Self> {
        let embedding = Arc::new(tensor("token_embd.weight")?);
        let output = match tensor("output.weight") {
            Ok(t) => QMatMul::from_qtensor(t)?,
            // Tied: the output layer is the embedding.
            Err(_) => QMatMul::from_arc(embedding.clone())?,
        };
        let norm = dequantized(tensor("output_norm.weight")?)?;
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let mut get = |name: &str| tensor(&format!("blk.{i}.{name}.weight"));
            layers.push(Layer {
                attn_norm: dequantized(get("attn_norm")?)?,
                q: QMatMul::from_qtensor(get("attn_q")?)?,
                k: QMatMul::from_qtensor(get("attn_k")?)?,
                v: QMatMul::from_qtensor(get("attn_v")?)?,
                o: QMatMul::from_qtensor(get("attn_output")?)?,
                ffn_norm: dequantized(get("ffn_norm")?)?,
                gate: QMatMul::from_qtensor(get("ffn_gate")?)?,
                up: QMatMul::from_qtensor(get("ffn_up")?)?,
                down: QMatMul::from_qtensor(get("ffn_down")?)?,
            });
        }
        let half = shape.head_dim / 2;
        let freqs: Vec<f32> = (0..half)
            .map(|i| 1.0 / shape.rope_base.powf(2.0 * i as f32 / shape.head_dim as f32))
            .collect();
        let angles: Vec<f32> = (0..context)
            .flat_map(|p| freqs.iter().map(move |f| p as f32 * f))
            .collect();
        let angles = Tensor::from_vec(angles, (context, half), &Device::Cpu)?;
        Ok(Self {
            shape,
            embedding,
            layers,
            norm,
            output,
            cos: angles.cos()?,
            sin: angles.sin()?,
            caches: Vec::new(),
            capacity: 0,
            len: 0,
        })
    }

    /// Positions the rotary tables cover.
    pub fn context(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Start a new sequence of at most `capacity` positions: the cache is allocated once
    /// here (untouched pages cost no memory) and written in place by every forward.
    pub fn reset(&mut self, capacity: usize) -> Result<()> {
        if capacity > self.context() {
            candle_core::bail!(
                "{capacity} positions asked for; the context holds {}",
                self.context()
            )
        }
        self.len = 0;
        if capacity > self.capacity || self.caches.is_empty() {
            let dims = (self.shape.kv_heads, capacity, self.shape.head_dim);
            self.caches.clear();
            for _ in 0..self.shape.layers {
                self.caches.push(Cache {
                    k: Tensor::zeros(dims, DType::F32, &Device::Cpu)?,
                    v: Tensor::zeros(dims, DType::F32, &Device::Cpu)?,
                });
            }
            self.capacity = capacity;
        }
        Ok(())
    }

    /// Positions taken so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Feed `tokens` after what is already in the cache; the logits for the token after the
    /// last one, `(vocabulary,)`.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let seq = tokens.len();
        let pos = self.len;
        if seq == 0 {
            candle_core::bail!("no tokens to feed")
        }
        if pos + seq > self.capacity {
            candle_core::bail!(
                "{} positions exceed the {} the cache was made for",
                pos + seq,
                self.capacity
            )
        }
        let s = &self.shape;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embedding.embedding(&ids)?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let total = pos + seq;
        // Additive causal mask: query i (at pos + i) sees keys 0..=pos + i.
        let mask = if seq > 1 {
            let m: Vec<f32> = (0..seq)
                .flat_map(|i| {
                    (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (seq, total), &Device::Cpu)?)
        } else {
            None
        };
        let rep = s.heads / s.kv_heads;
        let scale = 1.0 / (s.head_dim as f64).sqrt();
        for (layer, cache) in self.layers.iter().zip(&self.caches) {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, s.eps)?;
            let heads = |t: Tensor, n: usize| {
                t.reshape((seq, n, s.head_dim))?
                    .transpose(0, 1)?
                    .contiguous()?
                    .unsqueeze(0)
            };
            let q = heads(layer.q.forward(&h)?, s.heads)?;
            let k = heads(layer.k.forward(&h)?, s.kv_heads)?;
            let v = heads(layer.v.forward(&h)?, s.kv_heads)?;
            let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            cache.k.slice_set(&k.squeeze(0)?, 1, pos)?;
            cache.v.slice_set(&v.squeeze(0)?, 1, pos)?;
            let keys = cache.k.narrow(1, 0, total)?;
            let values = cache.v.narrow(1, 0, total)?;
            // The query heads sharing a key/value head are next to each other: as one
            // (kv_heads, rep * seq, head_dim) batch they meet that head's keys without copying them.
            let q = q.reshape((s.kv_heads, rep * seq, s.head_dim))?;
            let att = (q.matmul(&keys.t()?)? * scale)?;
            let att = match &mask {
                Some(m) => att
                    .reshape((s.kv_heads, rep, seq, total))?
                    .broadcast_add(m)?
                    .reshape((s.kv_heads, rep * seq, total))?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att
                .matmul(&values)?
                .reshape((s.heads, seq, s.head_dim))?
                .transpose(0, 1)?
                .reshape((seq, s.hidden))?;
            x = (x + layer.o.forward(&y)?)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, s.eps)?;
            let gated = (layer.gate.forward(&h)?.silu()? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&gated)?)?;
        }
        self.len = total;
        let last = x.narrow(0, seq - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, s.eps)?;
        self.output
            .forward(&last)?
            .squeeze(0)?
            .to_dtype(DType::F32)?
            .contiguous()?
            .flatten_all()
    }
}
