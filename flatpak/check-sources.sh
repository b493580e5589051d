#!/usr/bin/env bash
# Exit 1, naming the crates that differ, when flatpak/cargo-sources.json no
# longer matches Cargo.lock. Offline; needs only python3. Fix with
# flatpak/regenerate-sources.sh and commit the JSON.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec python3 "$here/cargo-sources.py" --lock "$here/../Cargo.lock" -o "$here/cargo-sources.json" --check
