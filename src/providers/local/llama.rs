//! The llama forward pass (SmolLM2's architecture) over candle ops: token embedding, RMS
//! norm, interleaved RoPE, grouped-query attention, SiLU-gated MLP. Ours rather than
//! candle-transformers' `ModelWeights` for two reasons: its fields are private, so it cannot
//! be given weights that live elsewhere (a memory mapping), and it grows the KV cache with
//! `Tensor::cat`, a copy of the whole cache per layer per token. Here the cache is allocated
//! once per reply for the positions the reply can reach and written in place.
//!
//! The embedding stays quantized (looked up row by row, and shared with the output layer
//! when the file ties them), where candle-transformers keeps a second, f32 copy of it.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor, gguf_file};
use candle_core::{D, DType, Device, Module, Result, Tensor};

/// candle's tiled int8 GEMM takes Q8_0 rows whose length is a multiple of this, and output
/// rows in groups of [`TILE_ROWS`].
const TILE_K: usize = 256;
const TILE_ROWS: usize = 16;
const Q8_0_BLOCK: usize = 32;
const Q8_0_BYTES: usize = 34;

/// Whether candle multiplies Q8_0 matrices with its tiled int8 GEMM on this CPU (it needs
/// AVX-512 VNNI or AVX-VNNI; with AVX2 alone it keeps one dot product per row).
pub fn tiled_q8_0() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
            || (is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `t` with each row lengthened to `width` values by zero blocks (scale 0, values 0), which
/// add exactly nothing to any product.
pub fn pad_q8_0(t: &QTensor, width: usize) -> Result<QTensor> {
    let (n, k) = t.shape().dims2()?;
    if t.dtype() != GgmlDType::Q8_0
        || !k.is_multiple_of(Q8_0_BLOCK)
        || !width.is_multiple_of(Q8_0_BLOCK)
        || width < k
    {
        candle_core::bail!("cannot pad a {:?} {n}x{k} matrix to {width}", t.dtype())
    }
    let data = t.data()?;
    let row = k / Q8_0_BLOCK * Q8_0_BYTES;
    let wide = width / Q8_0_BLOCK * Q8_0_BYTES;
    let mut out = vec![0u8; n * wide];
    for (dst, src) in out.chunks_exact_mut(wide).zip(data.chunks_exact(row)) {
        dst[..row].copy_from_slice(src);
    }
    let storage = QStorage::from_data(Cow::Owned(out), &Device::Cpu, GgmlDType::Q8_0)?;
    QTensor::new(storage, (n, width))
}

/// A weight matrix and the row length it multiplies: longer than the activations' when its
/// rows were padded, and then the activations are padded with zeros to match.
struct Linear {
    w: QMatMul,
    width: usize,
}

/// The row length a Q8_0 matrix is padded to so candle's tiled GEMM takes it, or `None`
/// when it takes it already or never will (another type, or rows not in whole tiles).
pub fn padded_width(t: &QTensor) -> Option<usize> {
    let (n, k) = t.shape().dims2().ok()?;
    (t.dtype() == GgmlDType::Q8_0 && !k.is_multiple_of(TILE_K) && n.is_multiple_of(TILE_ROWS))
        .then(|| k.next_multiple_of(TILE_K))
}

impl Linear {
    fn new(t: Arc<QTensor>, pad: bool) -> Result<Self> {
        let t = match padded_width(&t).filter(|_| pad) {
            Some(width) => Arc::new(pad_q8_0(&t, width)?),
            None => t,
        };
        let width = t.shape().dims2()?.1;
        Ok(Self {
            w: QMatMul::from_arc(t)?,
            width,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = x.dim(D::Minus1)?;
        if k < self.width {
            self.w
                .forward(&x.pad_with_zeros(D::Minus1, 0, self.width - k)?)
        } else {
            self.w.forward(x)
        }
    }
}

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
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
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
    output: Linear,
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
    /// `pad`: lengthen Q8_0 rows to a multiple of 256 values with zero blocks, so candle
    /// multiplies them with its tiled int8 GEMM (see [`tiled_q8_0`]) instead of one dot
    /// product per row; SmolLM2's rows are 576 long, padded to 768.
    pub fn new(
        shape: Shape,
        context: usize,
        pad: bool,
        mut tensor: impl FnMut(&str) -> Result<QTensor>,
    ) -> Result<Self> {
        let linear = |t: QTensor| Linear::new(Arc::new(t), pad);
        let output = tensor("output.weight").ok();
        let (embedding, output) = match output {
            Some(t) => (Arc::new(tensor("token_embd.weight")?), linear(t)?),
            // Tied: the output layer is the embedding, and the lookup reads the padded
            // copy (its first `hidden` values a row) rather than keep both.
            None => {
                let output = Linear::new(Arc::new(tensor("token_embd.weight")?), pad)?;
                let QMatMul::QTensor(t) = &output.w else {
                    candle_core::bail!("the token embedding is not quantized")
                };
                (t.clone(), output)
            }
        };
        let norm = dequantized(tensor("output_norm.weight")?)?;
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let mut get = |name: &str| tensor(&format!("blk.{i}.{name}.weight"));
            layers.push(Layer {
                attn_norm: dequantized(get("attn_norm")?)?,
                q: linear(get("attn_q")?)?,
                k: linear(get("attn_k")?)?,
                v: linear(get("attn_v")?)?,
                o: linear(get("attn_output")?)?,
                ffn_norm: dequantized(get("ffn_norm")?)?,
                gate: linear(get("ffn_gate")?)?,
                up: linear(get("ffn_up")?)?,
                down: linear(get("ffn_down")?)?,
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
        if x.dim(D::Minus1)? > s.hidden {
            x = x.narrow(D::Minus1, 0, s.hidden)?.contiguous()?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A Q8_0 matrix with values unlike zero everywhere, and activations.
    fn matrix(n: usize, k: usize) -> QTensor {
        let values: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1.0 + (i % 7) as f32))
            .collect();
        let t = Tensor::from_vec(values, (n, k), &Device::Cpu).expect("tensor");
        QTensor::quantize(&t, GgmlDType::Q8_0).expect("quantize")
    }

    fn activations(m: usize, k: usize) -> Tensor {
        let v: Vec<f32> = (0..m * k)
            .map(|i| ((i * 31 % 97) as f32 - 48.0) / 50.0)
            .collect();
        Tensor::from_vec(v, (m, k), &Device::Cpu).expect("tensor")
    }

    #[test]
    fn padded_rows_keep_their_values_and_end_in_zeros() {
        let t = matrix(32, 576);
        let padded = pad_q8_0(&t, 768).expect("pad");
        assert_eq!(padded.shape().dims2().expect("dims"), (32, 768));
        let before = t.dequantize(&Device::Cpu).expect("values");
        let after = padded.dequantize(&Device::Cpu).expect("values");
        let head: Vec<Vec<f32>> = after
            .narrow(1, 0, 576)
            .and_then(|a| a.to_vec2())
            .expect("head");
        assert_eq!(head, before.to_vec2::<f32>().expect("values"));
        let tail: Vec<f32> = after
            .narrow(1, 576, 192)
            .and_then(|a| a.flatten_all())
            .and_then(|a| a.to_vec1())
            .expect("tail");
        assert!(tail.iter().all(|v| *v == 0.0));
        assert!(pad_q8_0(&t, 500).is_err(), "never shortened");
    }

    #[test]
    fn a_padded_matrix_multiplies_like_the_unpadded_one() {
        // 576 values a row, as SmolLM2's; 48 rows, a multiple of the tile height.
        let t = Arc::new(matrix(48, 576));
        let exact = t.dequantize(&Device::Cpu).expect("values");
        let plain = Linear::new(t.clone(), false).expect("plain");
        let padded = Linear::new(t, true).expect("padded");
        assert_eq!((plain.width, padded.width), (576, 768));
        for m in [1, 7, 64] {
            let x = activations(m, 576);
            let want: Vec<Vec<f32>> = x
                .matmul(&exact.t().expect("t"))
                .and_then(|y| y.to_vec2())
                .expect("exact");
            let scale = want.iter().flatten().fold(0f32, |a, v| a.max(v.abs()));
            let error = |y: Vec<Vec<f32>>| {
                y.iter()
                    .flatten()
                    .zip(want.iter().flatten())
                    .map(|(g, w)| (g - w).abs())
                    .fold(0f32, f32::max)
            };
            let plain_error = error(plain.forward(&x).and_then(|y| y.to_vec2()).expect("y"));
            let padded_error = error(padded.forward(&x).and_then(|y| y.to_vec2()).expect("y"));
            eprintln!("m={m}: scale {scale}, error plain {plain_error}, padded {padded_error}");
            // Both quantize the activations to 8 bits (the tiled kernel with one scale per
            // 256 values instead of 32), so both are off the exact product by about as much.
            assert!(
                plain_error <= scale * 0.01,
                "m={m}: {plain_error} of {scale}"
            );
            assert!(
                padded_error <= scale * 0.01,
                "m={m}: {padded_error} of {scale}"
            );
        }
        // Rows that are not a multiple of the tile height are left as they are.
        assert_eq!(
            Linear::new(Arc::new(matrix(40, 576)), true)
                .expect("odd")
                .width,
            576
        );
    }
}
