//! The vector side of memory: every chunk's embedding in LMDB, searched exhaustively over
//! an int8 copy and re-ranked by exact cosine.
//!
//! Why not a tree forest (arroy, the first design): random-projection trees reached a
//! recall@10 of 0.42 with 24 trees and 0.80 with 96 on 100,000 hash-embedded chunks, while
//! costing most of the ingest time and several milliseconds per query (docs/benchmarks.md).
//! Scoring every vector in int8 reads 384 bytes per chunk, needs no build step, and with the
//! exact re-rank its recall against exact cosine is practically 1.
//!
//! Layout, all in the memory store's LMDB environment and so in the same transactions as the
//! chunk records:
//! - `vectors`: chunk id → the unit-length f32 vector (little-endian), the source of truth;
//! - `vector_slots`: chunk id → slot number;
//! - `vector_codes`: block number → one block of [`BLOCK_SLOTS`] slots: their chunk ids
//!   ([`EMPTY`] for a free slot), their scales, then the int8 codes dimension by dimension.
//!   Dimension-major blocks let a query touch only the dimensions where it is non-zero (a
//!   few-word query under the hash embedder has about 20), and the block's running sums stay
//!   in the L1 cache.
//! - the free slots and the next unused slot in `meta`, so deleted slots are reused.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use heed::types::Bytes;
use heed::{RoTxn, RwTxn};
use roaring::RoaringBitmap;

use super::store::{Dbs, Result};
use super::types::ChunkId;

/// Slots per block: 1,024 running sums (4 KiB) stay in L1 while a block is scored.
pub const BLOCK_SLOTS: usize = 1024;
/// The chunk id of a free slot (chunk ids start at 1 and are allocated upwards).
const EMPTY: u32 = u32::MAX;
const FREE_SLOTS_KEY: &str = "vector_free_slots";
const NEXT_SLOT_KEY: &str = "vector_next_slot";
/// Chunk ids whose vector was written or deleted since the arroy forest's last build
/// (`index.rs`); kept only once a forest exists, as until then a build takes everything.
const PENDING_KEY: &str = "ann_pending";
/// Candidates re-ranked by exact cosine per neighbour asked for, and at least this many more:
/// int8 rounding reorders near-ties only, so a small margin restores the exact order.
const RERANK_FACTOR: usize = 2;
const RERANK_MARGIN: usize = 16;

/// Store `items` (chunk id, vector), replacing any vector a chunk already has.
pub fn put_many(dbs: &Dbs, txn: &mut RwTxn<'_>, items: &[(ChunkId, &[f32])]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let dims = items[0].1.len();
    let (mut free, mut next) = load_slots(dbs, txn)?;
    let mut by_block: BTreeMap<u32, Vec<(usize, ChunkId, Quantized)>> = BTreeMap::new();
    for (id, vector) in items {
        let unit = unit_length(vector);
        dbs.vectors.put(txn, id, &f32_bytes(&unit))?;
        let slot = match dbs.vector_slots.get(txn, id)? {
            Some(slot) => slot,
            None => {
                let slot = match free.min() {
                    Some(slot) => {
                        free.remove(slot);
                        slot
                    }
                    None => {
                        next += 1;
                        next - 1
                    }
                };
                dbs.vector_slots.put(txn, id, &slot)?;
                slot
            }
        };
        let (block, index) = split_slot(slot);
        by_block
            .entry(block)
            .or_default()
            .push((index, *id, quantize(&unit)));
    }
    mark_pending(dbs, txn, items.iter().map(|(id, _)| *id))?;
    for (block, updates) in by_block {
        let mut bytes = match dbs.vector_codes.get(txn, &block)? {
            Some(existing) if existing.len() == block_len(dims) => existing.to_vec(),
            _ => empty_block(dims),
        };
        for (index, id, quantized) in updates {
            write_slot(&mut bytes, dims, index, id, &quantized);
        }
        dbs.vector_codes.put(txn, &block, &bytes)?;
    }
    save_slots(dbs, txn, &free, next)
}

/// Remove the vectors of `ids`; ids without one are skipped.
pub fn delete_many(dbs: &Dbs, txn: &mut RwTxn<'_>, ids: &[ChunkId]) -> Result<()> {
    let (mut free, next) = load_slots(dbs, txn)?;
    mark_pending(dbs, txn, ids.iter().copied())?;
    let mut by_block: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for id in ids {
        dbs.vectors.delete(txn, id)?;
        if let Some(slot) = dbs.vector_slots.get(txn, id)? {
            dbs.vector_slots.delete(txn, id)?;
            free.insert(slot);
            let (block, index) = split_slot(slot);
            by_block.entry(block).or_default().push(index);
        }
    }
    if by_block.is_empty() {
        return Ok(());
    }
    for (block, indexes) in by_block {
        let Some(existing) = dbs.vector_codes.get(txn, &block)? else {
            continue;
        };
        let mut bytes = existing.to_vec();
        let Some(dims) = block_dims(bytes.len()) else {
            continue;
        };
        for index in indexes {
            write_slot(&mut bytes, dims, index, EMPTY, &Quantized::zero(dims));
        }
        dbs.vector_codes.put(txn, &block, &bytes)?;
    }
    save_slots(dbs, txn, &free, next)
}

/// Drop every vector (a forced rebuild, or a store written by an older schema).
pub fn clear(dbs: &Dbs, txn: &mut RwTxn<'_>) -> Result<()> {
    dbs.vectors.clear(txn)?;
    dbs.vector_slots.clear(txn)?;
    dbs.vector_codes.clear(txn)?;
    let meta = dbs.meta.remap_data_type::<Bytes>();
    meta.delete(txn, FREE_SLOTS_KEY)?;
    meta.delete(txn, NEXT_SLOT_KEY)?;
    meta.delete(txn, PENDING_KEY)?;
    // The forest indexes these vectors: it goes with them, and the next build starts afresh.
    dbs.ann.clear(txn)?;
    meta.delete(txn, super::index::LAST_BUILD_KEY)?;
    Ok(())
}

fn mark_pending(dbs: &Dbs, txn: &mut RwTxn<'_>, ids: impl Iterator<Item = ChunkId>) -> Result<()> {
    if dbs.meta.get(txn, super::index::LAST_BUILD_KEY)?.is_none() {
        return Ok(());
    }
    let mut pending = pending(dbs, txn)?;
    pending.extend(ids);
    let meta = dbs.meta.remap_data_type::<Bytes>();
    let mut bytes = Vec::with_capacity(pending.serialized_size());
    pending.serialize_into(&mut bytes)?;
    meta.put(txn, PENDING_KEY, &bytes)?;
    Ok(())
}

/// Chunk ids written or deleted since the arroy forest's last build.
pub fn pending(dbs: &Dbs, txn: &RoTxn<'_>) -> Result<RoaringBitmap> {
    let meta = dbs.meta.remap_data_type::<Bytes>();
    Ok(match meta.get(txn, PENDING_KEY)? {
        Some(bytes) => RoaringBitmap::deserialize_from(bytes)?,
        None => RoaringBitmap::new(),
    })
}

/// A build took every pending change into the forest.
pub fn clear_pending(dbs: &Dbs, txn: &mut RwTxn<'_>) -> Result<()> {
    dbs.meta
        .remap_data_type::<Bytes>()
        .delete(txn, PENDING_KEY)?;
    Ok(())
}

/// Exact cosine between a unit-length query and chunk `id`'s stored vector.
pub fn similarity(dbs: &Dbs, txn: &RoTxn<'_>, unit: &[f32], id: ChunkId) -> Result<Option<f32>> {
    Ok(dbs
        .vectors
        .get(txn, &id)?
        .map(|bytes| dot_bytes(unit, bytes)))
}

/// The `count` chunks among `ids` most similar to `query`, by exact cosine; ids without a
/// vector (deleted) are skipped.
pub fn nearest_among(
    dbs: &Dbs,
    txn: &RoTxn<'_>,
    query: &[f32],
    count: usize,
    ids: &RoaringBitmap,
) -> Result<Vec<(ChunkId, f32)>> {
    let unit = unit_length(query);
    let mut found = Vec::with_capacity(ids.len() as usize);
    for id in ids {
        if let Some(similarity) = similarity(dbs, txn, &unit, id)? {
            found.push((id, similarity));
        }
    }
    found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    found.truncate(count);
    Ok(found)
}

pub fn get(dbs: &Dbs, txn: &RoTxn<'_>, id: ChunkId) -> Result<Option<Vec<f32>>> {
    Ok(dbs.vectors.get(txn, &id)?.map(f32s))
}

pub fn contains(dbs: &Dbs, txn: &RoTxn<'_>, id: ChunkId) -> Result<bool> {
    Ok(dbs.vector_slots.get(txn, &id)?.is_some())
}

pub fn len(dbs: &Dbs, txn: &RoTxn<'_>) -> Result<u64> {
    Ok(dbs.vector_slots.len(txn)?)
}

/// Chunk ids that have a vector.
pub fn ids(dbs: &Dbs, txn: &RoTxn<'_>) -> Result<RoaringBitmap> {
    let mut ids = RoaringBitmap::new();
    for entry in dbs.vector_slots.iter(txn)? {
        ids.insert(entry?.0);
    }
    Ok(ids)
}

/// Every stored vector, in chunk id order.
pub fn all(dbs: &Dbs, txn: &RoTxn<'_>) -> Result<Vec<(ChunkId, Vec<f32>)>> {
    let mut out = Vec::new();
    for entry in dbs.vectors.iter(txn)? {
        let (id, bytes) = entry?;
        out.push((id, f32s(bytes)));
    }
    Ok(out)
}

/// The `count` chunks most similar to `query` by cosine, best first: every int8 code scored,
/// the best few re-ranked with the stored f32 vectors. `allowed` restricts the chunks.
pub fn nearest(
    dbs: &Dbs,
    txn: &RoTxn<'_>,
    query: &[f32],
    count: usize,
    allowed: Option<&RoaringBitmap>,
) -> Result<Vec<(ChunkId, f32)>> {
    let unit = unit_length(query);
    let weights = query_weights(&unit);
    if count == 0 || weights.is_empty() {
        return Ok(Vec::new());
    }
    let keep = count * RERANK_FACTOR + RERANK_MARGIN;
    // A min-heap of the best `keep` approximate scores so far.
    let mut best: BinaryHeap<Reverse<(Score, ChunkId)>> = BinaryHeap::with_capacity(keep + 1);
    let mut sums = [0i32; BLOCK_SLOTS];
    for entry in dbs.vector_codes.iter(txn)? {
        let (_, bytes) = entry?;
        let Some(block) = Block::parse(bytes, unit.len()) else {
            continue; // written with other dimensions: the embedder identity check reports it
        };
        block.score(&weights, &mut sums);
        for (index, sum) in sums.iter().enumerate() {
            let id = block.id(index);
            if id == EMPTY || allowed.is_some_and(|a| !a.contains(id)) {
                continue;
            }
            let score = Score(*sum as f32 * block.scale(index));
            if best.len() < keep {
                best.push(Reverse((score, id)));
            } else if best.peek().is_some_and(|worst| score > worst.0.0) {
                best.pop();
                best.push(Reverse((score, id)));
            }
        }
    }
    let mut exact = Vec::with_capacity(best.len());
    for Reverse((_, id)) in best {
        if let Some(vector) = dbs.vectors.get(txn, &id)? {
            exact.push((id, dot_bytes(&unit, vector)));
        }
    }
    exact.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    exact.truncate(count);
    Ok(exact)
}

/// Exact cosine against every stored vector (for measuring recall and for tests).
pub fn nearest_exact(
    dbs: &Dbs,
    txn: &RoTxn<'_>,
    query: &[f32],
    count: usize,
) -> Result<Vec<(ChunkId, f32)>> {
    let unit = unit_length(query);
    let mut all = Vec::new();
    for entry in dbs.vectors.iter(txn)? {
        let (id, bytes) = entry?;
        all.push((id, dot_bytes(&unit, bytes)));
    }
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(count);
    Ok(all)
}

/// An approximate score, totally ordered so it can sit in a heap.
#[derive(Clone, Copy)]
struct Score(f32);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A vector as int8 codes times one scale: `x[j] ≈ codes[j] * scale`.
struct Quantized {
    scale: f32,
    codes: Vec<i8>,
}

impl Quantized {
    fn zero(dims: usize) -> Self {
        Self {
            scale: 0.0,
            codes: vec![0; dims],
        }
    }
}

fn quantize(vector: &[f32]) -> Quantized {
    let max = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return Quantized::zero(vector.len());
    }
    Quantized {
        scale: max / 127.0,
        codes: vector
            .iter()
            .map(|x| (x / max * 127.0).round() as i8)
            .collect(),
    }
}

/// The query as (dimension, int16 weight) pairs for its non-zero dimensions. Weights stay
/// within ±127 so that weight × code fits in an i16 (|127 × 127| < 2^15).
fn query_weights(unit: &[f32]) -> Vec<(usize, i16)> {
    let max = unit.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return Vec::new();
    }
    unit.iter()
        .enumerate()
        .map(|(j, x)| (j, (x / max * 127.0).round() as i16))
        .filter(|(_, w)| *w != 0)
        .collect()
}

/// A borrowed block: ids, scales, then codes dimension by dimension.
struct Block<'a> {
    ids: &'a [u8],
    scales: &'a [u8],
    codes: &'a [u8],
}

impl<'a> Block<'a> {
    fn parse(bytes: &'a [u8], dims: usize) -> Option<Self> {
        if bytes.len() != block_len(dims) {
            return None;
        }
        let (ids, rest) = bytes.split_at(4 * BLOCK_SLOTS);
        let (scales, codes) = rest.split_at(4 * BLOCK_SLOTS);
        Some(Self { ids, scales, codes })
    }

    fn id(&self, index: usize) -> u32 {
        u32::from_le_bytes(word(self.ids, index))
    }

    fn scale(&self, index: usize) -> f32 {
        f32::from_le_bytes(word(self.scales, index))
    }

    /// `sums[i]` = Σ weight[j] × code[j][i] over the query's non-zero dimensions.
    fn score(&self, weights: &[(usize, i16)], sums: &mut [i32; BLOCK_SLOTS]) {
        sums.fill(0);
        for &(dim, weight) in weights {
            let column = &self.codes[dim * BLOCK_SLOTS..(dim + 1) * BLOCK_SLOTS];
            // Written so the compiler vectorises it: i8 → i16 multiply, i32 accumulate.
            for (sum, &code) in sums.iter_mut().zip(column) {
                *sum += i32::from(weight * i16::from(code as i8));
            }
        }
    }
}

fn word(bytes: &[u8], index: usize) -> [u8; 4] {
    let mut out = [0; 4];
    out.copy_from_slice(&bytes[4 * index..4 * index + 4]);
    out
}

fn block_len(dims: usize) -> usize {
    BLOCK_SLOTS * (8 + dims)
}

fn block_dims(len: usize) -> Option<usize> {
    (len.is_multiple_of(BLOCK_SLOTS) && len / BLOCK_SLOTS >= 8).then(|| len / BLOCK_SLOTS - 8)
}

fn empty_block(dims: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; block_len(dims)];
    for index in 0..BLOCK_SLOTS {
        bytes[4 * index..4 * index + 4].copy_from_slice(&EMPTY.to_le_bytes());
    }
    bytes
}

fn write_slot(bytes: &mut [u8], dims: usize, index: usize, id: ChunkId, quantized: &Quantized) {
    bytes[4 * index..4 * index + 4].copy_from_slice(&id.to_le_bytes());
    let scales = 4 * BLOCK_SLOTS;
    bytes[scales + 4 * index..scales + 4 * index + 4]
        .copy_from_slice(&quantized.scale.to_le_bytes());
    let codes = 8 * BLOCK_SLOTS;
    for (dim, code) in quantized.codes.iter().take(dims).enumerate() {
        bytes[codes + dim * BLOCK_SLOTS + index] = *code as u8;
    }
}

fn split_slot(slot: u32) -> (u32, usize) {
    (slot / BLOCK_SLOTS as u32, slot as usize % BLOCK_SLOTS)
}

fn load_slots(dbs: &Dbs, txn: &RoTxn<'_>) -> Result<(RoaringBitmap, u32)> {
    let meta = dbs.meta.remap_data_type::<Bytes>();
    let free = match meta.get(txn, FREE_SLOTS_KEY)? {
        Some(bytes) => RoaringBitmap::deserialize_from(bytes)?,
        None => RoaringBitmap::new(),
    };
    let next = match meta.get(txn, NEXT_SLOT_KEY)? {
        Some(bytes) if bytes.len() == 4 => u32::from_le_bytes(word(bytes, 0)),
        _ => 0,
    };
    Ok((free, next))
}

fn save_slots(dbs: &Dbs, txn: &mut RwTxn<'_>, free: &RoaringBitmap, next: u32) -> Result<()> {
    let meta = dbs.meta.remap_data_type::<Bytes>();
    let mut bytes = Vec::with_capacity(free.serialized_size());
    free.serialize_into(&mut bytes)?;
    meta.put(txn, FREE_SLOTS_KEY, &bytes)?;
    meta.put(txn, NEXT_SLOT_KEY, &next.to_le_bytes())?;
    Ok(())
}

pub fn unit_length(vector: &[f32]) -> Vec<f32> {
    let mut unit = vector.to_vec();
    super::embed::l2_normalize(&mut unit);
    unit
}

fn f32_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn dot_bytes(unit: &[f32], bytes: &[u8]) -> f32 {
    unit.iter()
        .zip(bytes.chunks_exact(4))
        .map(|(x, b)| x * f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::store::Store;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    const DIMS: usize = 48;

    fn random_vector(rng: &mut StdRng, nonzero: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIMS];
        for _ in 0..nonzero {
            v[rng.random_range(0..DIMS)] = rng.random_range(-1.0f32..1.0);
        }
        v
    }

    fn store_with(count: u32, rng: &mut StdRng) -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let vectors: Vec<Vec<f32>> = (0..count).map(|_| random_vector(rng, DIMS)).collect();
        let items: Vec<(ChunkId, &[f32])> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u32 + 1, v.as_slice()))
            .collect();
        store
            .write(|txn| put_many(&store.dbs, txn, &items))
            .unwrap();
        (tmp, store)
    }

    #[test]
    fn search_finds_the_exact_cosine_neighbours_across_blocks() {
        let mut rng = StdRng::seed_from_u64(7);
        let (_tmp, store) = store_with(3 * BLOCK_SLOTS as u32 + 17, &mut rng);
        let txn = store.read_txn().unwrap();
        let mut same = 0;
        let queries = 60;
        for q in 0..queries {
            // Dense queries and sparse ones (a few-word query under the hash embedder).
            let query = random_vector(&mut rng, if q % 2 == 0 { DIMS } else { 4 });
            let exact = nearest_exact(&store.dbs, &txn, &query, 10).unwrap();
            let found = nearest(&store.dbs, &txn, &query, 10, None).unwrap();
            assert_eq!(found.len(), 10);
            for (id, similarity) in &found {
                let truth = get(&store.dbs, &txn, *id).unwrap().unwrap();
                let expected = dot_bytes(&unit_length(&query), &f32_bytes(&truth));
                assert!(
                    (similarity - expected).abs() < 1e-5,
                    "scores are exact cosines"
                );
            }
            let exact_ids: Vec<u32> = exact.iter().map(|h| h.0).collect();
            let found_ids: Vec<u32> = found.iter().map(|h| h.0).collect();
            same += usize::from(exact_ids == found_ids);
        }
        assert!(
            same >= queries * 95 / 100,
            "{same}/{queries} identical top-10 lists"
        );
    }

    #[test]
    fn deleted_vectors_are_never_found_and_their_slots_are_reused() {
        let mut rng = StdRng::seed_from_u64(8);
        let count = BLOCK_SLOTS as u32 + 100;
        let (_tmp, store) = store_with(count, &mut rng);
        let blocks_before = store
            .read(|txn| Ok::<_, crate::memory::store::StoreError>(store.dbs.vector_codes.len(txn)?))
            .unwrap();
        let doomed: Vec<u32> = (1..=count).filter(|id| id % 3 == 0).collect();
        store
            .write(|txn| delete_many(&store.dbs, txn, &doomed))
            .unwrap();
        let txn = store.read_txn().unwrap();
        assert_eq!(
            len(&store.dbs, &txn).unwrap(),
            u64::from(count) - doomed.len() as u64
        );
        for _ in 0..20 {
            let query = random_vector(&mut rng, DIMS);
            for (id, _) in nearest(&store.dbs, &txn, &query, 50, None).unwrap() {
                assert!(id % 3 != 0, "deleted chunk {id} was found");
            }
        }
        drop(txn);
        // As many new vectors as were deleted fill the freed slots: no new block.
        let fresh: Vec<Vec<f32>> = doomed
            .iter()
            .map(|_| random_vector(&mut rng, DIMS))
            .collect();
        let items: Vec<(ChunkId, &[f32])> = fresh
            .iter()
            .enumerate()
            .map(|(i, v)| (count + 1 + i as u32, v.as_slice()))
            .collect();
        store
            .write(|txn| put_many(&store.dbs, txn, &items))
            .unwrap();
        let txn = store.read_txn().unwrap();
        assert_eq!(store.dbs.vector_codes.len(&txn).unwrap(), blocks_before);
        let (id, similarity) = nearest(&store.dbs, &txn, &fresh[5], 1, None).unwrap()[0];
        assert_eq!((id, (similarity * 1e4).round()), (count + 6, 1e4));
    }

    #[test]
    fn a_replaced_vector_keeps_one_slot_and_filters_restrict_the_hits() {
        let mut rng = StdRng::seed_from_u64(9);
        let (_tmp, store) = store_with(200, &mut rng);
        let target = random_vector(&mut rng, DIMS);
        store
            .write(|txn| put_many(&store.dbs, txn, &[(42, target.as_slice())]))
            .unwrap();
        let txn = store.read_txn().unwrap();
        assert_eq!(len(&store.dbs, &txn).unwrap(), 200);
        assert_eq!(
            nearest(&store.dbs, &txn, &target, 1, None).unwrap()[0].0,
            42
        );
        let allowed: RoaringBitmap = (100..=120).collect();
        let hits = nearest(&store.dbs, &txn, &target, 10, Some(&allowed)).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|(id, _)| allowed.contains(*id)));
        assert!(
            nearest(&store.dbs, &txn, &[0.0; DIMS], 10, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn quantized_codes_round_trip_within_half_a_step() {
        let vector = unit_length(&[0.5, -0.25, 0.125, 0.0, -1.0]);
        let q = quantize(&vector);
        for (x, code) in vector.iter().zip(&q.codes) {
            assert!((x - f32::from(*code) * q.scale).abs() <= q.scale / 2.0 + 1e-6);
        }
        assert!(
            query_weights(&[0.0; 4]).is_empty(),
            "a zero query scores nothing"
        );
        assert_eq!(split_slot(BLOCK_SLOTS as u32 + 3), (1, 3));
        assert_eq!(block_dims(block_len(384)), Some(384));
        assert_eq!(block_dims(17), None);
    }
}
