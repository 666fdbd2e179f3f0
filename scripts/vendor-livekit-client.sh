#!/usr/bin/env bash
# Refresh the vendored livekit-client under static/vendor/livekit-client/ from the npm registry.
#
#   scripts/vendor-livekit-client.sh            # the pinned version below
#   scripts/vendor-livekit-client.sh 2.23.1     # another version (then update the pin here)
#
# The browser pages import the self-contained ESM build, saved as `livekit-client.esm.js` (no bare
# imports, no workers): a `.js` name, because module scripts need a JavaScript MIME type and
# Python's mimetypes does not know `.mjs` on every system. The UMD build is kept beside it for
# anyone who needs a classic script.
# The package is fetched with `npm pack` into a temp directory, its integrity is checked by npm,
# and only the built files, the LICENSE and a VERSION file are copied: no node_modules, no CDN.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${1:-2.23.0}"
DEST=static/vendor/livekit-client

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "livekit-client@${VERSION}" >/dev/null)
tarball=$(ls "$tmp"/livekit-client-*.tgz)
tar -xzf "$tarball" -C "$tmp"
pkg="$tmp/package"

actual=$(node -p "require('$pkg/package.json').version")
if [[ "$actual" != "$VERSION" ]]; then
  echo "npm returned livekit-client $actual, expected $VERSION" >&2
  exit 1
fi
for f in dist/livekit-client.esm.mjs dist/livekit-client.umd.js LICENSE; do
  [[ -f "$pkg/$f" ]] || { echo "livekit-client $VERSION has no $f; the vendoring layout changed" >&2; exit 1; }
done
# The ESM build must stay self-contained: a bare import would fail in the browser at run time.
if grep -qE "^import .* from ['\"][^./]|^import ['\"][^./]" "$pkg/dist/livekit-client.esm.mjs"; then
  echo "livekit-client $VERSION's ESM build imports other packages; it cannot be served as is" >&2
  exit 1
fi

rm -rf "$DEST"
mkdir -p "$DEST"
# Drop the trailing sourceMappingURL: the maps (about 5 MB) are not vendored, and a dangling
# reference only produces 404s in the developer tools.
sed -e 's#//\# sourceMappingURL=livekit-client\.esm\.mjs\.map$##' "$pkg/dist/livekit-client.esm.mjs" >"$DEST/livekit-client.esm.js"
sed -e 's#//\# sourceMappingURL=livekit-client\.umd\.js\.map$##' "$pkg/dist/livekit-client.umd.js" >"$DEST/livekit-client.umd.js"
cp "$pkg/LICENSE" "$DEST/LICENSE"
sha=$(sha512sum "$tarball" | cut -d' ' -f1)
cat >"$DEST/VERSION" <<META
livekit-client $VERSION (Apache-2.0), from the npm registry via scripts/vendor-livekit-client.sh
tarball sha512: $sha
files: dist/livekit-client.esm.mjs (as livekit-client.esm.js), dist/livekit-client.umd.js, LICENSE (sourceMappingURL comments removed)
META
echo "Vendored livekit-client $VERSION into $DEST"
