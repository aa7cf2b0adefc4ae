#!/usr/bin/env bash
# DICOMweb beside Orthanc (docs/performance.md, "DICOMweb"): STOW-RS inst/s, QIDO-RS latency, WADO-RS study MB/s.
#
#   bench/archive/dicomweb.sh DATASET_DIR [COUNT]
#
# DATASET_DIR: Part 10 files (e.g. ../shared/bench/gen_dataset.py output); the first COUNT (default 200) are used.
# Starts a fresh `aegis serve` (bench/archive/aegis-bench-ctl.sh, HTTPS with its self-signed certificate, Basic auth
# of a technologist) and a fresh Orthanc (../shared/bench/orthanc_ctl.sh, plain HTTP, no auth), stores the same
# multipart body into each, then times the same queries and retrievals with curl. Both are stopped at the end.
# Env: AEGIS_DLL (Release aegis.dll, required), BENCH_DIR (default /tmp/aegis-bench-dicomweb), DPORT (default 11290;
#      HTTPS = DPORT+2), ORTHANC_HTTP (default 18142), QUERIES (default 50), RETRIEVES (default 3).
set -euo pipefail
DATA=${1:?usage: $0 DATASET_DIR [COUNT]}; COUNT=${2:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${AEGIS_SHARED:-}
if [ -z "$SHARED" ]; then # the nearest shared/ (with dicom-samples) above this checkout, as the tests find it
  d=$HERE; while [ "$d" != / ]; do [ -d "$d/shared/dicom-samples" ] && { SHARED=$d/shared; break; }; d=$(dirname "$d"); done
fi
[ -n "$SHARED" ] || { echo "shared/ not found above $HERE (set AEGIS_SHARED)" >&2; exit 2; }
W=${BENCH_DIR:-/tmp/aegis-bench-dicomweb}; DPORT=${DPORT:-11290}; OHTTP=${ORTHANC_HTTP:-18142}
QUERIES=${QUERIES:-50}; RETRIEVES=${RETRIEVES:-3}
PASS=Bench-Dicomweb-Stow-9x
mkdir -p "$W"
export BENCH_DIR=$W/aegis DPORT MOVE_PORT=$((DPORT + 5))
export BENCH_ORTHANC_DIR=$W/orthanc HTTP_PORT=$OHTTP DICOM_PORT=$((OHTTP + 1)) ORTHANC_TCP_NODELAY=1
cleanup() { "$HERE/aegis-bench-ctl.sh" stop >/dev/null 2>&1 || true; bash "$SHARED/bench/orthanc_ctl.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

# One multipart/related body with COUNT instances, shared by both servers.
BODY=$W/stow.body; BOUNDARY=bench-dicomweb-boundary
python3 - "$DATA" "$COUNT" "$BODY" "$BOUNDARY" <<'EOF'
import os, sys
data, count, body, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(data) for f in fs if f.endswith(".dcm"))[:count]
with open(body, "wb") as out:
    for f in files:
        out.write(b"--" + b + b"\r\nContent-Type: application/dicom\r\n\r\n")
        with open(f, "rb") as i: out.write(i.read())
        out.write(b"\r\n")
    out.write(b"--" + b + b"--\r\n")
print(len(files), "instances,", os.path.getsize(body), "bytes", file=sys.stderr)
EOF
N=$(python3 -c "import os,sys; print(min(int(sys.argv[2]), sum(1 for d,_,fs in os.walk(sys.argv[1]) for f in fs if f.endswith('.dcm'))))" "$DATA" "$COUNT")

"$HERE/aegis-bench-ctl.sh" reset
echo "$PASS" | dotnet "$AEGIS_DLL" user add tech --role technologist --password-stdin --data "$BENCH_DIR/data" >/dev/null
bash "$SHARED/bench/orthanc_ctl.sh" reset >/dev/null

A="https://127.0.0.1:$((DPORT + 2))/dicomweb"; O="http://127.0.0.1:$OHTTP/dicom-web"
acurl() { curl -sk -u "tech:$PASS" "$@"; }
ocurl() { curl -s "$@"; }
CT="Content-Type: multipart/related; type=\"application/dicom\"; boundary=$BOUNDARY"

stow() { # $1 = a|o, $2 = base
  local t; t=$("${1}curl" -o "$W/stow-$1.json" -w '%{http_code} %{time_total}' -H "$CT" --data-binary "@$BODY" "$2/studies")
  echo "$t"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r ac at < <(stow a "$A"); read -r oc ot < <(stow o "$O")
echo "STOW-RS $N instances, one request: Aegis HTTP $ac in ${at}s = $(python3 -c "print(round($N/$at,1))") inst/s; Orthanc HTTP $oc in ${ot}s = $(python3 -c "print(round($N/$ot,1))") inst/s"

STUDY=$(acurl -H 'Accept: application/dicom+json' "$A/studies?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["0020000D"]["Value"][0])')
PID=$(acurl -H 'Accept: application/dicom+json' "$A/studies?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["00100020"]["Value"][0])')

# QIDO-RS: the same URL QUERIES times in one curl (one connection, kept alive), mean time per request.
qido() { # $1 = a|o, $2 = url
  local urls=(); for _ in $(seq 1 "$QUERIES"); do urls+=(-o /dev/null "$2"); done
  "${1}curl" -H 'Accept: application/dicom+json' -w '%{time_total}\n' "${urls[@]}" |
    python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin]; v=v[1:] or v; print("mean %.2f ms, median %.2f ms" % (1000*statistics.mean(v), 1000*statistics.median(v)))'
}
for q in "studies?PatientID=$PID" "studies?StudyInstanceUID=$STUDY" "studies/$STUDY/instances"; do
  echo "QIDO-RS $q: Aegis $(qido a "$A/$q"); Orthanc $(qido o "$O/$q")"
done

# WADO-RS study as stored, RETRIEVES times, best MB/s.
wado() { # $1 = a|o, $2 = base
  for _ in $(seq 1 "$RETRIEVES"); do
    "${1}curl" -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*' -o /dev/null -w '%{size_download} %{time_total}\n' "$2/studies/$STUDY"
  done | python3 -c 'import sys; r=[tuple(map(float,l.split())) for l in sys.stdin]; s,t=min(r,key=lambda x:x[1]); print("%.0f MB in %.2f s = %.1f MB/s (best of %d)" % (s/1e6, t, s/1e6/t, len(r)))'
}
echo "WADO-RS study $STUDY: Aegis $(wado a "$A"); Orthanc $(wado o "$O")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
