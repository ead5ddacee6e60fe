#!/usr/bin/env python3
"""Side-by-side baseline for the memory benchmark: the approach of the OpenClaw original.

SQLite FTS5 bm25() for text, brute-force cosine over a numpy matrix for vectors, fused by a
weighted sum of min-max-normalised scores. Reads DIR/{meta.json,chunks.jsonl,vectors.f32,
queries.jsonl} (written by the Rust benchmark), prints one JSON object on stdout.

Usage: python3 memory_baseline.py DIR [--limit-queries N]      (needs: pip install numpy)
"""
import argparse, ctypes, gc, json, math, platform, re, resource, sqlite3, sys, time
from pathlib import Path

import numpy as np

TOP_K, FINAL_K, WARMUP = 50, 10, 5
VECTOR_WEIGHT, TEXT_WEIGHT = 0.7, 0.3
WORD = re.compile(r"[^\W_]+")  # runs of Unicode letters/digits: never FTS5 syntax


def fail(msg):
    sys.exit(f"memory_baseline: error: {msg}")


def peak_rss_mib():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def current_rss_mib():
    """Resident set now (Linux only): what the search holds, without the inputs' peak."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return float("nan")


def log(msg):
    print(f"memory_baseline: {msg}", file=sys.stderr, flush=True)


def read_jsonl(path):
    """Yield (line number, object); a missing file or a bad line names itself."""
    if not path.is_file():
        fail(f"{path}: missing")
    with path.open("rb") as f:  # bytes: bad UTF-8 becomes a ValueError with a line number
        for n, line in enumerate(f, 1):
            try:
                obj = json.loads(line)
            except ValueError as e:
                fail(f"{path} line {n}: invalid JSON ({e})")
            if not isinstance(obj, dict):
                fail(f"{path} line {n}: expected a JSON object")
            yield n, obj


def load_inputs(d):
    meta_path = d / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        dim, count = meta["dimensions"], meta["count"]
        assert type(dim) is int and type(count) is int and dim > 0 and count > 0
    except FileNotFoundError:
        fail(f"{meta_path}: missing")
    except (ValueError, KeyError, TypeError, AssertionError):
        fail(f'{meta_path}: expected {{"dimensions": <int > 0>, "count": <int > 0>}}')
    ids, texts, seen = [], [], set()
    path = d / "chunks.jsonl"
    for n, obj in read_jsonl(path):
        cid, text = obj.get("id"), obj.get("text")
        if type(cid) is not int or not 0 <= cid < 2**32 or not isinstance(text, str):
            fail(f'{path} line {n}: expected {{"id": <u32>, "text": <string>}}')
        if cid in seen:  # the id is the FTS5 rowid / vector primary key
            fail(f"{path} line {n}: duplicate id {cid}")
        seen.add(cid); ids.append(cid); texts.append(text)
    if len(ids) != count:
        fail(f"{path}: {len(ids)} lines, but meta.json count is {count}")
    path = d / "vectors.f32"
    if not path.is_file():
        fail(f"{path}: missing")
    raw = path.read_bytes()
    if len(raw) != count * dim * 4:
        fail(f"{path}: {len(raw)} bytes, expected count*dimensions*4 = {count * dim * 4}")
    bad = np.flatnonzero(~np.isfinite(np.frombuffer(raw, "<f4")))
    if bad.size:
        fail(f"{path}: non-finite value in row {bad[0] // dim} (row = line of chunks.jsonl)")
    queries, path = [], d / "queries.jsonl"
    for n, obj in read_jsonl(path):
        text, vec = obj.get("text"), obj.get("vector")
        if not isinstance(text, str) or not isinstance(vec, list) or len(vec) != dim \
                or not all(type(x) in (int, float) and math.isfinite(x) for x in vec):
            fail(f'{path} line {n}: expected {{"text": <string>, "vector": [{dim} numbers]}}')
        q = np.asarray(vec, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        queries.append((text, q / norm if norm > 0 else q))  # cosine: unit query too
    if not queries:
        fail(f"{path}: no queries")
    return dim, ids, texts, raw, queries


def fts_query(text):
    """'Foo-bar, baz?' -> '"foo" OR "bar" OR "baz"' (deduplicated); None if no words."""
    words = dict.fromkeys(w.lower() for w in WORD.findall(text))
    return " OR ".join(f'"{w}"' for w in words) or None


def minmax(scores):
    """Scale to [0, 1]; a list whose scores are all equal scores 1 (all tie for best)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    return {k: (v - lo) / (hi - lo) if hi > lo else 1.0 for k, v in scores.items()}


def hybrid_search(conn, matrix, row_ids, text, qvec):
    """Top FINAL_K chunk ids for one query: bm25 top 50 + cosine top 50, fused."""
    text_scores, match = {}, fts_query(text)
    if match:  # bm25() is lower-is-better: negate so that higher is better, like cosine
        for rowid, score in conn.execute(
                "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
                " ORDER BY s LIMIT ?", (match, TOP_K)):
            text_scores[rowid] = -score
    sims = matrix @ qvec  # rows are unit vectors, so this is cosine similarity
    k = min(TOP_K, sims.shape[0])
    top = np.argpartition(sims, sims.shape[0] - k)[-k:]  # unordered top k, O(N)
    vec_scores = dict(zip(row_ids[top].tolist(), sims[top].tolist()))
    t, v = minmax(text_scores), minmax(vec_scores)
    fused = {c: VECTOR_WEIGHT * v.get(c, 0.0) + TEXT_WEIGHT * t.get(c, 0.0)
             for c in t.keys() | v.keys()}
    return sorted(fused, key=lambda c: (-fused[c], c))[:FINAL_K]  # ties: lower id first


def nearest_rank(sorted_vals, p):
    return sorted_vals[max(1, math.ceil(p / 100 * len(sorted_vals))) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--limit-queries", type=int, metavar="N")
    args = ap.parse_args()
    if args.limit_queries is not None and args.limit_queries < 1:
        ap.error("--limit-queries must be >= 1")
    if not args.dir.is_dir():
        fail(f"{args.dir}: not a directory")
    log("reading inputs (untimed)")
    dim, ids, texts, raw, queries = load_inputs(args.dir)
    queries = queries[: args.limit_queries]
    count = len(ids)
    gc.collect(); gc.freeze()  # keep the harness's own objects out of GC passes while timing

    db = args.dir / "baseline.sqlite"
    for p in (db, Path(f"{db}-journal"), Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    log(f"ingesting {count} chunks into {db} (peak RSS after reading inputs: "
        f"{peak_rss_mib():.0f} MiB)")
    stride, view = dim * 4, memoryview(raw)
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)  # explicit BEGIN/COMMIT below
    conn.execute("BEGIN")  # schema and all rows in one transaction, one commit
    conn.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text)")
    conn.execute("CREATE TABLE vectors (id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
    conn.executemany("INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)", zip(ids, texts))
    # Input rows are already little-endian f32, the BLOB format: slices bind without copying.
    conn.executemany("INSERT INTO vectors (id, vec) VALUES (?, ?)",
                     ((cid, view[i * stride:(i + 1) * stride]) for i, cid in enumerate(ids)))
    conn.execute("COMMIT")
    insert_s = time.perf_counter() - t0
    log(f"inserted in {insert_s:.3f} s (peak RSS so far {peak_rss_mib():.0f} MiB)")
    del view, raw, texts, ids  # free the harness's input copies (untimed) before loading
    try:  # and give the freed heap back to the OS (glibc), so "RSS now" below is meaningful
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
    t0 = time.perf_counter()
    # What a brute-force search holds in memory: every vector, read back from the BLOBs.
    matrix, row_ids, row = np.empty((count, dim), np.float32), np.empty(count, np.int64), 0
    cur = conn.execute("SELECT id, vec FROM vectors ORDER BY id")
    while batch := cur.fetchmany(4096):  # batched: bounded extra memory, little per-row cost
        n = len(batch)
        row_ids[row:row + n] = [b[0] for b in batch]
        matrix[row:row + n] = np.frombuffer(b"".join(b[1] for b in batch), "<f4").reshape(n, dim)
        row += n
    ingest_s = insert_s + time.perf_counter() - t0
    log(f"ingest {ingest_s:.3f} s; RSS now {current_rss_mib():.0f} MiB; "
        f"{WARMUP} warm-up + {len(queries)} timed queries")

    for i in range(WARMUP):  # warm caches (SQLite pages, numpy, branch predictors)
        hybrid_search(conn, matrix, row_ids, *queries[i % len(queries)])
    times = []
    for text, qvec in queries:
        t0 = time.perf_counter()
        hybrid_search(conn, matrix, row_ids, text, qvec)
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    times.sort()
    print(json.dumps({
        "ingestChunksPerSec": round(count / ingest_s, 1),
        "searchP50Ms": round(nearest_rank(times, 50), 3),
        "searchP99Ms": round(nearest_rank(times, 99), 3),
        "queries": len(times), "count": count, "dimensions": dim,
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "numpy": np.__version__,
        "peakRssMiB": round(peak_rss_mib(), 1),
    }))


if __name__ == "__main__":
    main()
