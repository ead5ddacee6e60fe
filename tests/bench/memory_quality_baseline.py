#!/usr/bin/env python3
"""Baseline for the memory quality benchmark: SQLite FTS5 bm25() over whole pages.

Reads DIR/*.md (one page each, named as the Rust benchmark names them) and
DIR/questions.jsonl ({"question", "answers"}), prints a JSON list: for each question the
1-based rank of its first answer page among the first 10, or null. Python's own sqlite3
(FTS5, the porter stemmer over unicode61 tokens); no other packages.

Usage: python3 memory_quality_baseline.py DIR
"""
import json, re, sqlite3, sys
from pathlib import Path

WORD = re.compile(r"[^\W_]+")  # runs of letters/digits: never FTS5 syntax


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: memory_quality_baseline.py DIR")
    root = Path(sys.argv[1])
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE pages USING fts5(name UNINDEXED, body, tokenize='porter unicode61')")
    except sqlite3.OperationalError as e:
        sys.exit(f"memory_quality_baseline: this sqlite3 has no FTS5: {e}")
    for page in sorted(root.glob("*.md")):
        name = page.stem.replace(".", "/")
        db.execute("INSERT INTO pages VALUES (?, ?)", (name, page.read_text(encoding="utf-8")))
    ranks = []
    for line in (root / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        words = WORD.findall(q["question"])
        # Any word may match, as a search box does; bm25() ranks (lower is better).
        match = " OR ".join(f'"{w}"' for w in words)
        rows = db.execute(
            "SELECT name FROM pages WHERE pages MATCH ? ORDER BY bm25(pages) LIMIT 10", (match,)
        ).fetchall()
        names = [r[0] for r in rows]
        rank = next((i + 1 for i, n in enumerate(names) if n in q["answers"]), None)
        ranks.append(rank)
    print(json.dumps(ranks))


if __name__ == "__main__":
    main()
