//! The model's weights as candle multiplies them fastest. candle's CPU kernels have SIMD
//! paths (AVX2, AVX-512 VNNI, NEON) for Q8_0, Q4_0 and the K-quants, but multiply Q4_1 and
//! Q5_1 (the types with a per-block minimum) with plain scalar code: SmolLM2-135M Q4_1 spent
//! nearly all its prompt time there. So those tensors are re-encoded as Q8_0 while they are
//! read: each 32-value block stays a 32-value block, and the 8-bit grid is 17 times finer
//! than the 4-bit one it replaces, so the values barely move (see the test below). The cost
//! is memory: 34 bytes a block instead of 20 (docs/benchmarks.md has the figures).
//!
//! `ModelWeights::from_gguf` reads each tensor with a seek and a `read_exact`; [`Requantized`]
//! answers those from a re-laid-out file in which the converted tensors have their new size,
//! converting one tensor at a time, so loading never holds more than one extra tensor.

use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::{GgmlDType, QStorage, QTensor, gguf_file};
use candle_core::{Device, Shape};

/// The types candle multiplies without SIMD, and what they become.
fn faster(dtype: GgmlDType) -> GgmlDType {
    match dtype {
        GgmlDType::Q4_1 | GgmlDType::Q5_1 => GgmlDType::Q8_0,
        other => other,
    }
}

fn byte_size(dtype: GgmlDType, shape: &Shape) -> u64 {
    (shape.elem_count() / dtype.block_size() * dtype.type_size()) as u64
}

/// One tensor in the re-laid-out file.
struct Slot {
    start: u64,
    len: u64,
    /// Where and what it is in the real file.
    source: u64,
    source_len: u64,
    from: GgmlDType,
    to: GgmlDType,
    shape: Shape,
}

/// A reader over the GGUF tensor data in which slow-to-multiply tensors read as Q8_0.
pub struct Requantized<R> {
    inner: R,
    /// Sorted by `start`, back to back from 0.
    slots: Vec<Slot>,
    len: u64,
    pos: u64,
    /// The slot whose bytes `data` holds.
    current: Option<usize>,
    data: Vec<u8>,
}

impl<R: Read + Seek> Requantized<R> {
    /// Rewrite `content`'s tensor table to the new layout (types, offsets, a data offset of 0)
    /// and return the reader that serves it from `inner`, the real file.
    pub fn new(content: &mut gguf_file::Content, inner: R) -> Self {
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort_by_key(|n| content.tensor_infos[*n].offset);
        let names: Vec<String> = names.into_iter().cloned().collect();
        let mut slots = Vec::with_capacity(names.len());
        let mut start = 0;
        for name in names {
            let Some(info) = content.tensor_infos.get_mut(&name) else {
                continue;
            };
            let to = faster(info.ggml_dtype);
            // A row that does not split into whole blocks stays as it is (candle would
            // refuse it either way).
            let to = if info
                .shape
                .dims()
                .last()
                .is_some_and(|d| d % to.block_size() == 0)
            {
                to
            } else {
                info.ggml_dtype
            };
            let len = byte_size(to, &info.shape);
            slots.push(Slot {
                start,
                len,
                source: content.tensor_data_offset + info.offset,
                source_len: byte_size(info.ggml_dtype, &info.shape),
                from: info.ggml_dtype,
                to,
                shape: info.shape.clone(),
            });
            info.offset = start;
            info.ggml_dtype = to;
            start += len;
        }
        content.tensor_data_offset = 0;
        Self {
            inner,
            slots,
            len: start,
            pos: 0,
            current: None,
            data: Vec::new(),
        }
    }

    /// Make `data` hold slot `i`, converted.
    fn fill(&mut self, i: usize) -> std::io::Result<()> {
        if self.current == Some(i) {
            return Ok(());
        }
        let slot = &self.slots[i];
        let mut raw = vec![0u8; slot.source_len as usize];
        self.inner.seek(SeekFrom::Start(slot.source))?;
        self.inner.read_exact(&mut raw)?;
        self.data = if slot.from == slot.to {
            raw
        } else {
            convert(&raw, slot.from, slot.to, &slot.shape).map_err(std::io::Error::other)?
        };
        self.current = Some(i);
        Ok(())
    }
}

/// Dequantize `raw` (`from`) and quantize it again as `to`, through candle's own kernels.
fn convert(
    raw: &[u8],
    from: GgmlDType,
    to: GgmlDType,
    shape: &Shape,
) -> candle_core::Result<Vec<u8>> {
    let storage = QStorage::from_data(Cow::Borrowed(raw), &Device::Cpu, from)?;
    let values = QTensor::new(storage, shape.clone())?.dequantize(&Device::Cpu)?;
    Ok(QTensor::quantize(&values, to)?.data()?.into_owned())
}

impl<R: Read + Seek> Read for Requantized<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let i = self.slots.partition_point(|s| s.start + s.len <= self.pos);
        if i >= self.slots.len() || buf.is_empty() {
            return Ok(0);
        }
        self.fill(i)?;
        let at = (self.pos - self.slots[i].start) as usize;
        let n = buf.len().min(self.data.len() - at);
        buf[..n].copy_from_slice(&self.data[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Requantized<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use std::collections::HashMap;
    use std::io::Cursor;

    fn quantized(values: &[f32], dims: (usize, usize), dtype: GgmlDType) -> Vec<u8> {
        let t = Tensor::from_slice(values, dims, &Device::Cpu).expect("tensor");
        QTensor::quantize(&t, dtype)
            .expect("quantize")
            .data()
            .expect("data")
            .into_owned()
    }

    /// Weight-like values with an offset per block, which is what Q4_1's minimum is for.
    fn values(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.3) * (1.0 + (i / 32 % 5) as f32))
            .map(|v| v * scale)
            .collect()
    }

    fn read(content: &gguf_file::Content, r: &mut (impl Read + Seek), name: &str) -> Vec<f32> {
        content
            .tensor(r, name, &Device::Cpu)
            .and_then(|t| t.dequantize(&Device::Cpu))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect(name)
    }

    /// A file with a header, then a Q4_1, a Q8_0 and an F32 tensor, and its tensor table.
    fn file() -> (Vec<u8>, HashMap<String, gguf_file::TensorInfo>, Vec<u8>) {
        let dims = (4, 64);
        let q8 = quantized(&values(256, -0.5), dims, GgmlDType::Q8_0);
        let floats: Vec<u8> = (0..64).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let tensors = [
            (
                "a",
                quantized(&values(256, 1.0), dims, GgmlDType::Q4_1),
                GgmlDType::Q4_1,
                Shape::from(dims),
            ),
            ("b", q8.clone(), GgmlDType::Q8_0, Shape::from(dims)),
            ("f", floats, GgmlDType::F32, Shape::from(64)),
        ];
        let mut data = vec![0xAA; HEADER as usize];
        let mut infos = HashMap::new();
        for (name, bytes, ggml_dtype, shape) in tensors {
            let offset = data.len() as u64 - HEADER;
            data.extend_from_slice(&bytes);
            infos.insert(
                name.to_string(),
                gguf_file::TensorInfo {
                    ggml_dtype,
                    shape,
                    offset,
                },
            );
        }
        (data, infos, q8)
    }

    const HEADER: u64 = 100;

    fn content(infos: HashMap<String, gguf_file::TensorInfo>) -> gguf_file::Content {
        gguf_file::Content {
            magic: gguf_file::VersionedMagic::GgufV3,
            metadata: HashMap::new(),
            tensor_infos: infos,
            tensor_data_offset: HEADER,
        }
    }

    #[test]
    fn q4_1_tensors_read_back_as_q8_0_with_nearly_the_same_values() {
        let (data, infos, q8) = file();
        let original = content(file().1);
        let mut plain = Cursor::new(data.clone());
        let mut content = content(infos);
        let mut reader = Requantized::new(&mut content, Cursor::new(data));
        assert_eq!(content.tensor_infos["a"].ggml_dtype, GgmlDType::Q8_0);
        assert_eq!(content.tensor_infos["b"].ggml_dtype, GgmlDType::Q8_0);
        assert_eq!(content.tensor_infos["f"].ggml_dtype, GgmlDType::F32);
        // Out of file order, as a loader may ask.
        for name in ["f", "a", "b", "a"] {
            let want = read(&original, &mut plain, name);
            let got = read(&content, &mut reader, name);
            assert_eq!(got.len(), want.len(), "{name}");
            // Within half a step of Q8_0's grid (the largest value over 127), plus its f16 scale.
            let step = want.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= step * 0.6, "{name}: {g} read back for {w}");
            }
        }
        // A tensor already fast to multiply comes through byte for byte.
        let b = content.tensor(&mut reader, "b", &Device::Cpu).expect("b");
        assert_eq!(b.data().expect("data").as_ref(), q8.as_slice());
        assert!(reader.seek(SeekFrom::Current(-1_000_000)).is_err());
    }
}
