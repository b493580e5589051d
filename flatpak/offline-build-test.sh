#!/usr/bin/env bash
# Rehearse the Flatpak build's offline cargo step without flatpak-builder.
#
#   flatpak/offline-build-test.sh [MESON_SETUP_OPTION...]   # default -Dclient=true
#   flatpak/offline-build-test.sh -Dclient=false
#
# flatpak-builder lays out flatpak/cargo-sources.json in the module's
# source dir (cargo/vendor/NAME-VERSION unpacked from each .crate, inline
# .cargo-checksum.json files, and cargo/config replacing crates.io), then
# runs meson with no network. This script does the same thing by hand:
#   1. copies the work tree (tracked and untracked, minus ignored files)
#      into a temporary source dir;
#   2. fetches the .crate files with `cargo fetch` into a throwaway
#      CARGO_HOME (this is the only step that uses the network);
#   3. lays out every source of cargo-sources.json, checking each crate's
#      sha256 against the JSON, the way flatpak-builder does;
#   4. runs meson setup/compile with the manifest's options inside a network
#      namespace with no network (unshare -n, when permitted), so a crate
#      missing from cargo-sources.json fails here as it would in Flatpak;
#   5. runs the built binaries with --version.
# It catches a stale or wrong cargo-sources.json and a meson.build that
# does not detect the vendored sources. It does not test the GNOME runtime.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
work=$(mktemp -d "${TMPDIR:-/tmp}/komunikator-offline.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/src
[ $# -gt 0 ] || set -- -Dclient=true

echo "==> copying the work tree to $src"
mkdir -p "$src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
  | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$src"
rm -rf "$src/cargo"

echo "==> cargo fetch (network) into a throwaway CARGO_HOME"
CARGO_HOME=$work/fetch-home cargo fetch --locked --manifest-path "$src/Cargo.toml" >/dev/null

echo "==> laying out flatpak/cargo-sources.json"
python3 - "$here/cargo-sources.json" "$work/fetch-home" "$src" <<'EOF'
import glob, hashlib, io, json, os, sys, tarfile
sources_json, fetch_home, src = sys.argv[1:]
sources = json.load(open(sources_json))
crates = 0
for s in sources:
    dest = os.path.join(src, s["dest"])
    os.makedirs(dest, exist_ok=True)
    if s["type"] == "inline":
        with open(os.path.join(dest, s["dest-filename"]), "w") as f:
            f.write(s["contents"])
        continue
    if s["type"] != "archive":
        sys.exit(f"unexpected source type {s['type']}")
    name = s["url"].rsplit("/", 1)[1]
    found = glob.glob(os.path.join(fetch_home, "registry", "cache", "*", name))
    if not found:
        sys.exit(f"{name}: listed in cargo-sources.json but cargo fetch did not fetch it "
                 "(cargo-sources.json is stale: run flatpak/regenerate-sources.sh)")
    data = open(found[0], "rb").read()
    if hashlib.sha256(data).hexdigest() != s["sha256"]:
        sys.exit(f"{name}: sha256 differs from cargo-sources.json")
    # flatpak-builder unpacks archives with strip-components=1.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            m.name = parts[1]
            tar.extract(m, dest)
    crates += 1
print(f"laid out {crates} crates")
EOF

netns=()
if unshare -n true 2>/dev/null; then
  netns=(unshare -n)
  echo "==> building with no network (unshare -n)"
else
  echo "==> building (unshare -n not permitted: relying on --offline)"
fi
"${netns[@]}" env CARGO_HOME="$src/cargo" meson setup "$work/build" "$src" \
  --prefix=/app --buildtype=release -Doffline=true -Dclippy=disabled "$@" >"$work/setup.log" \
  || { cat "$work/setup.log"; exit 1; }
grep -q "Vendored cargo sources found" "$work/setup.log" \
  || { echo "meson did not detect the vendored sources in cargo/" >&2; exit 1; }
"${netns[@]}" meson compile -C "$work/build"

for bin in komunikator-server komunikator; do
  [ -x "$work/build/$bin" ] || continue
  echo "==> $bin --version: $("$work/build/$bin" --version)"
done
echo "offline build from cargo-sources.json: OK"
