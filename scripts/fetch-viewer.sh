#!/usr/bin/env bash
# Fetches the prebuilt OHIF viewer (@ohif/app on npm, the package's dist/ folder) and unpacks it where
# `aegis serve` serves it at /viewer: by default DIR/viewer of the data folder (./aegis-data/viewer), or
# Aegis:Http:ViewerDirectory. Not committed to git (about 210 MB unpacked).
#
#   scripts/fetch-viewer.sh [DEST]          OHIF_VERSION=3.13.2 by default
#
# npm checks the tarball against the registry's sha512 integrity. The build is made for "/" (asset URLs and
# webpack's public path); it is rebased to "/viewer/" here, its service worker is left out (it would cache
# DICOMweb responses, i.e. patient data, in the browser), and its app-config.js is removed: Aegis generates
# one per request that points at our DICOMweb root and our OpenID Connect provider.
set -euo pipefail
VERSION="${OHIF_VERSION:-3.13.2}"
DEST="${1:-./aegis-data/viewer}"
command -v npm >/dev/null || { echo "fetch-viewer: npm is required (apt-get install -y npm)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-viewer: downloading @ohif/app@$VERSION from npm ..."
(cd "$work" && npm pack "@ohif/app@$VERSION" --silent >/dev/null)
tarball="$(ls "$work"/ohif-app-*.tgz)"
tar -xzf "$tarball" -C "$work"
dist="$work/package/dist"
[ -f "$dist/index.html" ] || { echo "fetch-viewer: @ohif/app@$VERSION has no dist/index.html" >&2; exit 1; }

# Rebase from / to /viewer/.
sed -i -e 's#window.PUBLIC_URL="/"#window.PUBLIC_URL="/viewer/"#g' \
       -e 's#href="/#href="/viewer/#g' -e 's#src="/#src="/viewer/#g' \
       -e 's#<script[^>]*init-service-worker.js"></script>##g' "$dist/index.html"
# Every webpack runtime carries the public path: the app's, and those of the web workers (histogram, compute,
# polySeg, interpolation, the image decoders) that load their own chunks; the stylesheets name fonts from the root.
bundle="$(ls "$dist"/app.bundle.*.js | head -n 1)"
grep -lF '__webpack_require__.p = "/";' "$dist"/*.js | xargs -r sed -i 's#__webpack_require__.p = "/";#__webpack_require__.p = "/viewer/";#'
grep -q '__webpack_require__.p = "/viewer/";' "$bundle" || { echo "fetch-viewer: could not rebase the webpack public path in $bundle" >&2; exit 1; }
! grep -lF '__webpack_require__.p = "/";' "$dist"/*.js || { echo "fetch-viewer: a webpack runtime above is still rooted at /" >&2; exit 1; }
sed -i 's#url(/#url(/viewer/#g' "$dist"/*.css
# The web app manifest is fetched without cookies unless asked to send them; without, it gets the login page.
sed -i 's#<link rel="manifest" href=#<link rel="manifest" crossorigin="use-credentials" href=#' "$dist/index.html"
[ -f "$dist/manifest.json" ] && sed -i 's#"/assets/#"/viewer/assets/#g' "$dist/manifest.json"
grep -q 'window.PUBLIC_URL="/viewer/"' "$dist/index.html" || { echo "fetch-viewer: could not rebase index.html" >&2; exit 1; }
# silent-refresh.html loads a script from a CDN; the viewer renews with refresh tokens instead, and the CSP forbids other hosts.
sed -i 's#<script src="https://[^"]*"></script>##g' "$dist/silent-refresh.html"
rm -f "$dist/app-config.js" "$dist/sw.js" "$dist/init-service-worker.js" "$dist/_headers" "$dist/_redirects" "$dist/serve.json"
find "$dist" -name '*.map' -delete
echo "$VERSION" > "$dist/OHIF_VERSION"

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.new"
cp -a "$dist" "$DEST.new"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
echo "fetch-viewer: OHIF $VERSION installed in $DEST ($(du -sh "$DEST" | cut -f1))"
