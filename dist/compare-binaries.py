#!/usr/bin/env python3
"""Compare two release binaries on what a user waits for: startup (`status --json`),
memory search over a store of NOTES notes (default 2,000), and a compute-heavy sandbox run (SHA-256 over 1 MiB
on wasmi). Medians of N runs each, interleaved so load changes hit both alike; ratio is
B/A (above 1.10 means B is more than 10% slower).

    [NOTES=2000] python3 dist/compare-binaries.py BASELINE_BIN NEW_BIN [N]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAT = os.path.join(ROOT, "tests", "fixtures", "wasm", "sha256.wat")
WORDS = ("lighthouse harbour engine ledger orchard compiler violin glacier turbine "
         "parchment lantern falcon quarry meadow cipher beacon").split()


def note(i):
    return " ".join(WORDS[(i * k + k) % len(WORDS)] for k in range(1, 12)) + f" note {i}"


def run(binary, home, *args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_RS_")}
    env["NO_COLOR"] = "1"
    start = time.perf_counter()
    out = subprocess.run([binary, "--home", home, *args], input=stdin, capture_output=True,
                         env=env, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{binary} {' '.join(args)} failed: {out.stderr.decode()[-500:]}")
    return elapsed


def main():
    a, b = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    tmp = tempfile.mkdtemp()
    try:
        homes = {}
        lines = "".join(json.dumps({"id": i, "method": "memory.add", "params": {"text": note(i)}}) + "\n"
                        for i in range(int(os.environ.get("NOTES", "2000"))))
        for name, binary in (("A", a), ("B", b)):
            homes[name] = os.path.join(tmp, name)
            os.makedirs(homes[name])
            run(binary, homes[name], "--batch", stdin=lines.encode())
        cases = {
            "startup (status --json)": ["status", "--json"],
            "memory search": ["memory", "search", "harbour lantern cipher", "--json"],
            "sandbox run sha256 1 MiB (wasmi)": ["sandbox", "run", WAT, "--backend", "wasmi",
                                                 "--fuel", "0", "--timeout-ms", "60000"],
        }
        print(f"A = {a}\nB = {b}\nmedian of {n} runs, load {os.getloadavg()[0]:.1f} at start")
        print(f"| case | A ms | B ms | B/A |\n|---|---|---|---|")
        for label, args in cases.items():
            times = {"A": [], "B": []}
            for _ in range(n):
                for name, binary in (("A", a), ("B", b)):
                    times[name].append(run(binary, homes[name], *args) * 1000)
            ma, mb = statistics.median(times["A"]), statistics.median(times["B"])
            print(f"| {label} | {ma:.1f} | {mb:.1f} | {mb / ma:.2f} |")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
