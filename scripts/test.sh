#!/usr/bin/env bash
# The one command that runs every test of Aegis on a fresh Debian machine (README "Run the tests").
# Installs what the tests need when it is missing, then runs the whole solution's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v dcmdump >/dev/null 2>&1 || need_pkgs+=(dcmtk)
command -v pg_ctl >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need_pkgs+=(postgresql)
command -v Orthanc >/dev/null 2>&1 || need_pkgs+=(orthanc orthanc-dicomweb)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)   # headless browser tests: scan HTML report, viewer e2e (playwright-core)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
command -v jing >/dev/null 2>&1 || need_pkgs+=(jing)   # RELAX NG validator: audit messages against the PS3.15 A.5.1 schema
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "Installing test dependencies: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
# Viewer e2e (tests/Aegis.Web.Tests/Viewer/ViewerBrowserTests.cs): its node package and the OHIF build, (re)fetched
# when missing or prepared by an older fetch-viewer.sh.
[ -d tests/Aegis.Web.Tests/Viewer/e2e/node_modules/playwright-core ] || (cd tests/Aegis.Web.Tests/Viewer/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
grep -qs 'crossorigin="use-credentials"' .cache/ohif-viewer/index.html || scripts/fetch-viewer.sh .cache/ohif-viewer
export TCP_NODELAY=1   # DCMTK peers otherwise stall on delayed ACKs

dotnet build Aegis.slnx -c Release -nologo -v q
# One test assembly at a time: several of them start real servers (aegis, PostgreSQL, Orthanc, DCMTK peers), and
# on a 2-core machine running them side by side only trades wall time for timeouts.
log=$(mktemp)
set +e
dotnet test Aegis.slnx -c Release --no-build -nologo -v q -m:1 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line for every assembly together.
awk '/Passed!|Failed!/ { for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1) } }
     END { gsub(",", "", p); printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$rc"
