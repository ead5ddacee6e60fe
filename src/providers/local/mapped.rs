//! The model's weights memory-mapped. The GGUF file cannot be mapped as it is: its Q4_1
//! tensors would run on candle's scalar kernel, and its 576-value rows miss the tiled int8
//! GEMM (see [`super::weights`] and [`super::llama::tiled_q8_0`]). So on first use the file
//! is converted once into a cache file of the tensors as the forward multiplies them (Q8_0,
//! rows padded when that takes the tiled path), and every later load maps that file: the
//! weights are file-backed pages the kernel shares and can drop, not private memory.
//!
//! The cache file is `<dir>/<model sha256>-v<FORMAT>-<pad|plain>.weights`, written whole
//! with mode 0600 through [`crate::files::write_atomic`] (so no reader sees half of it), and
//! starts with a sha256 of everything after its header, checked at every load: a truncated
//! or damaged file is built again. When the directory cannot be written, the model is read
//! into memory as before and the reason is logged.
//!
//! Layout: a 64-byte header (magic, format version, flags, table length, data length, the
//! sha256), a JSON table of tensors (name, type, dimensions, offset, length), then the data,
//! each tensor at a 64-byte boundary.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::k_quants::{self, BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QStorage, QTensor, QuantizedType, gguf_file};
use candle_core::{CpuStorage, Device, Result};
use half::f16;
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::llama;
use super::weights::Requantized;

const MAGIC: &[u8; 8] = b"OCRSWTS\0";
/// Raised whenever the layout or the conversion changes, so old files are not read.
pub const FORMAT: u32 = 1;
const HEADER: usize = 64;
const ALIGN: usize = 64;
const FLAG_PADDED: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    name: String,
    dtype: String,
    dims: Vec<usize>,
    offset: usize,
    len: usize,
}

const DTYPES: [GgmlDType; 15] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q8_1,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::Q8K,
];

fn dtype_name(d: GgmlDType) -> String {
    format!("{d:?}")
}

fn dtype_from(name: &str) -> Option<GgmlDType> {
    DTYPES.into_iter().find(|d| dtype_name(*d) == name)
}

/// Where a model's converted weights go.
pub fn cache_path(dir: &Path, model_sha256: &str, padded: bool) -> PathBuf {
    let kind = if padded { "pad" } else { "plain" };
    dir.join(format!("{model_sha256}-v{FORMAT}-{kind}.weights"))
}

/// The sha256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Convert the GGUF model (its content already read) into the bytes of a cache file.
pub fn convert<R: std::io::Read + std::io::Seek>(
    mut content: gguf_file::Content,
    reader: R,
    padded: bool,
) -> Result<Vec<u8>> {
    let mut names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    names.sort();
    let mut reader = Requantized::new(&mut content, reader);
    let mut table = Vec::with_capacity(names.len());
    let mut data: Vec<u8> = Vec::new();
    for name in names {
        let mut t = content.tensor(&mut reader, &name, &Device::Cpu)?;
        if padded && let Some(width) = llama::padded_width(&t) {
            t = llama::pad_q8_0(&t, width)?;
        }
        data.resize(data.len().next_multiple_of(ALIGN), 0);
        let bytes = t.data()?;
        table.push(Entry {
            name,
            dtype: dtype_name(t.dtype()),
            dims: t.shape().dims().to_vec(),
            offset: data.len(),
            len: bytes.len(),
        });
        data.extend_from_slice(&bytes);
    }
    let table = serde_json::to_vec(&table).map_err(candle_core::Error::wrap)?;
    let table_len = table.len().next_multiple_of(ALIGN);
    let mut out = Vec::with_capacity(HEADER + table_len + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(if padded { FLAG_PADDED } else { 0 }).to_le_bytes());
    out.extend_from_slice(&(table_len as u64).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&[0u8; 32]);
    out.extend_from_slice(&table);
    out.resize(HEADER + table_len, b' ');
    out.extend_from_slice(&data);
    let sum = Sha256::digest(&out[HEADER..]);
    out[32..64].copy_from_slice(&sum);
    Ok(out)
}

/// A mapped cache file whose header, table and checksum have been checked.
pub struct Mapped {
    map: Arc<Mmap>,
    data_start: usize,
    entries: HashMap<String, Entry>,
}

impl Mapped {
    /// Map `path` and check it whole. Any error means: build it again.
    pub fn open(path: &Path, padded: bool) -> std::result::Result<Self, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        // Sound while nobody writes the file in place: it lives in our private cache
        // directory and is only ever replaced whole by a rename, which leaves this mapping
        // on the old file.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| e.to_string())?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err("not a weights cache file".into());
        }
        let word = |at: usize| u32::from_le_bytes([map[at], map[at + 1], map[at + 2], map[at + 3]]);
        let long = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&map[at..at + 8]);
            u64::from_le_bytes(b) as usize
        };
        if word(8) != FORMAT {
            return Err(format!("format {} (this build reads {FORMAT})", word(8)));
        }
        if (word(12) & FLAG_PADDED != 0) != padded {
            return Err("padded for another CPU".into());
        }
        let (table_len, data_len) = (long(16), long(24));
        let want = HEADER
            .checked_add(table_len)
            .and_then(|n| n.checked_add(data_len));
        if want != Some(map.len()) {
            return Err(format!(
                "{} bytes long; the header says {want:?}",
                map.len()
            ));
        }
        if Sha256::digest(&map[HEADER..])[..] != map[32..64] {
            return Err("its checksum does not match: damaged".into());
        }
        let table: Vec<Entry> =
            serde_json::from_slice(map[HEADER..HEADER + table_len].trim_ascii_end())
                .map_err(|e| format!("its table: {e}"))?;
        let data_start = HEADER + table_len;
        for e in &table {
            let fits = e
                .offset
                .checked_add(e.len)
                .is_some_and(|end| end <= data_len);
            if !fits || e.offset % ALIGN != 0 || dtype_from(&e.dtype).is_none() {
                return Err(format!("its entry for {} is out of bounds", e.name));
            }
        }
        Ok(Self {
            map: Arc::new(map),
            data_start,
            entries: table.into_iter().map(|e| (e.name.clone(), e)).collect(),
        })
    }

    /// The tensor `name`: Q8_0 ones are served from the mapping, others (the norms, a few
    /// KiB) copied.
    pub fn tensor(&self, name: &str) -> Result<QTensor> {
        let Some(e) = self.entries.get(name) else {
            candle_core::bail!("no tensor {name} in the weights cache")
        };
        let dtype = dtype_from(&e.dtype)
            .ok_or_else(|| candle_core::Error::Msg(format!("unknown type {}", e.dtype)))?;
        let start = self.data_start + e.offset;
        let bytes = &self.map[start..start + e.len];
        let elems: usize = e.dims.iter().product();
        if elems / dtype.block_size() * dtype.type_size() != e.len {
            candle_core::bail!("{name}: {} bytes for {:?} {:?}", e.len, dtype, e.dims)
        }
        let storage = if dtype == GgmlDType::Q8_0 {
            QStorage::Cpu(Box::new(MappedQ8_0 {
                map: self.map.clone(),
                start,
                blocks: e.len / std::mem::size_of::<BlockQ8_0>(),
            }))
        } else {
            QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, dtype)?
        };
        QTensor::new(storage, e.dims.as_slice())
    }
}

/// Q8_0 blocks read in place from the mapping.
struct MappedQ8_0 {
    map: Arc<Mmap>,
    start: usize,
    blocks: usize,
}

impl MappedQ8_0 {
    fn blocks(&self) -> &[BlockQ8_0] {
        // The entry was checked to lie inside the mapping; its offset is a multiple of 64
        // from a page-aligned mapping, more than BlockQ8_0's alignment of 2, and every bit
        // pattern is a valid block (an f16 and 32 i8).
        let ptr = self.map[self.start..].as_ptr() as *const BlockQ8_0;
        unsafe { std::slice::from_raw_parts(ptr, self.blocks) }
    }
}

impl QuantizedType for MappedQ8_0 {
    fn dtype(&self) -> GgmlDType {
        GgmlDType::Q8_0
    }

    fn matmul_t(&self, mkn: (usize, usize, usize), lhs: &[f32], dst: &mut [f32]) -> Result<()> {
        k_quants::matmul(mkn, lhs, self.blocks(), dst)
    }

    fn matmul_t_f16(&self, mkn: (usize, usize, usize), lhs: &[f16], dst: &mut [f16]) -> Result<()> {
        k_quants::matmul_f16(mkn, lhs, self.blocks(), dst)
    }

    fn embedding(&self, ids: &[u32], rows: usize, hidden: usize) -> Result<CpuStorage> {
        let per_row = hidden / BlockQ8_0::BLCK_SIZE;
        if !hidden.is_multiple_of(BlockQ8_0::BLCK_SIZE) || rows * per_row != self.blocks {
            candle_core::bail!("{} blocks are not {rows} rows of {hidden}", self.blocks)
        }
        let blocks = self.blocks();
        let mut out = vec![0f32; ids.len() * hidden];
        for (dst, &id) in out.chunks_exact_mut(hidden).zip(ids) {
            let row = id as usize;
            if row >= rows {
                candle_core::bail!("token id {row} is out of range for {rows} rows")
            }
            BlockQ8_0::to_float(&blocks[row * per_row..(row + 1) * per_row], dst);
        }
        Ok(CpuStorage::F32(out))
    }

    fn dequantize(&self, elem_count: usize) -> Result<CpuStorage> {
        let mut out = vec![0f32; elem_count];
        BlockQ8_0::to_float(self.blocks(), &mut out);
        Ok(CpuStorage::F32(out))
    }

    fn storage_size_in_bytes(&self) -> usize {
        self.blocks * std::mem::size_of::<BlockQ8_0>()
    }

    fn as_ptr(&self) -> *const u8 {
        self.map[self.start..].as_ptr()
    }

    fn block_size(&self) -> usize {
        BlockQ8_0::BLCK_SIZE
    }

    // candle writes blocks only into storage it has just created (`qzeros`, when it
    // quantizes); a loaded model's weights are never written, and the mapping is read-only.
    fn from_float(&mut self, _xs: &[f32]) {}

    fn from_float_imatrix(&mut self, _xs: &[f32], _imatrix: &[f32], _n_per_row: usize) {}

    fn size(&self) -> usize {
        self.storage_size_in_bytes()
    }
}

/// How the weights were obtained, for the log and the status.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Mapped from an existing cache file.
    Mapped(PathBuf),
    /// Converted now, written, and mapped.
    Built(PathBuf),
    /// Read into memory: the cache could not be written (the reason).
    InMemory(String),
}

/// Map the cache file for `model` in `dir`, building it first when it is missing, from
/// another format, or damaged. `Err` only when the model itself cannot be read; a cache
/// that cannot be written gives `Ok(None)` with the reason, and the caller reads the model
/// into memory.
pub fn open_or_build(
    model: &Path,
    dir: &Path,
    padded: bool,
) -> std::result::Result<(Option<Mapped>, Source), String> {
    let sha = sha256_file(model).map_err(|e| e.to_string())?;
    let path = cache_path(dir, &sha, padded);
    match Mapped::open(&path, padded) {
        Ok(m) => return Ok((Some(m), Source::Mapped(path))),
        Err(why) if path.exists() => {
            tracing::warn!(path = %path.display(), %why, "rebuilding the local model's weights cache");
        }
        Err(_) => {}
    }
    let mut file = std::fs::File::open(model).map_err(|e| e.to_string())?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| e.to_string())?;
    let bytes = convert(content, file, padded).map_err(|e| e.to_string())?;
    let written = crate::files::create_private_dir_all(dir)
        .and_then(|()| crate::files::write_atomic(&path, &bytes, 0o600));
    drop(bytes);
    if let Err(e) = written {
        let why = format!("could not write {}: {e}", path.display());
        tracing::warn!(%why, "local model read into memory instead of mapped");
        return Ok((None, Source::InMemory(why)));
    }
    match Mapped::open(&path, padded) {
        Ok(m) => Ok((Some(m), Source::Built(path))),
        Err(why) => Ok((None, Source::InMemory(format!("{}: {why}", path.display())))),
    }
}
