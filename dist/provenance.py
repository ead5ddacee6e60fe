#!/usr/bin/env python3
"""Provenance of one release archive as JSON on stdout (called by dist/build.sh).

What was built (archive and binary with their SHA-256), from what (git commit and whether
the tree had uncommitted changes, every dependency with its version, source and checksum from
Cargo.lock), with what (rustc and cargo versions, target, features, the release profile from
Cargo.toml, RUSTFLAGS) and when (SOURCE_DATE_EPOCH). Standard library only.
"""
import argparse
import datetime
import hashlib
import json
import os
import subprocess
import tomllib


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tool_version(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def main():
    p = argparse.ArgumentParser()
    for flag in ("archive", "binary", "target", "track", "commit", "dirty", "linkage", "rustflags"):
        p.add_argument("--" + flag, required=True)
    a = p.parse_args()

    with open("Cargo.toml", "rb") as f:
        manifest = tomllib.load(f)
    with open("Cargo.lock", "rb") as f:
        lock = tomllib.load(f)
    profiles = manifest.get("profile", {})
    release = {k: v for k, v in profiles.get("release", {}).items() if k != "package"}
    per_package = profiles.get("release", {}).get("package", {})
    epoch = int(os.environ["SOURCE_DATE_EPOCH"])

    dependencies = [
        {
            "name": pkg["name"],
            "version": pkg["version"],
            "source": pkg.get("source", "path"),
            "checksum": pkg.get("checksum"),
        }
        for pkg in lock["package"]
        if pkg["name"] != manifest["package"]["name"]
    ]
    doc = {
        "artifact": {
            "archive": os.path.basename(a.archive),
            "archiveSha256": sha256(a.archive),
            "binarySha256": sha256(a.binary),
            "binaryBytes": os.path.getsize(a.binary),
        },
        "package": {"name": manifest["package"]["name"], "version": manifest["package"]["version"]},
        "source": {"gitCommit": a.commit, "dirty": a.dirty == "true"},
        "build": {
            "track": a.track,
            "target": a.target,
            "features": ["edge"] if a.track == "edge" else [],
            "profile": "release",
            "profileSettings": release,
            "profilePerPackage": per_package,
            "rustflags": a.rustflags,
            "linkage": a.linkage,
            "rustc": tool_version("rustc", "-V"),
            "cargo": tool_version("cargo", "-V"),
            "sourceDateEpoch": epoch,
            "buildDate": datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "dependencies": dependencies,
    }
    print(json.dumps(doc, indent=2, sort_keys=False))


if __name__ == "__main__":
    main()
