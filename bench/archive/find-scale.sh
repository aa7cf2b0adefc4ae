#!/usr/bin/env bash
# C-FIND latency at index scale (issue 4): ingest a data set of many small instances (bench/archive/gen_small.py,
# default 100,000) into a fresh `aegis serve` and into Orthanc (Debian build, defaults, SQLite), each over 4 storescu
# associations, then run ../shared/bench/bench_dicom.py's `find` test (exact PatientID, PatientName wildcard, StudyDate
# range; match counts checked against the manifest) against each. Run from the project root:
#
#   /usr/bin/python3 bench/archive/gen_small.py --out /work/scale-100k
#   bench/archive/find-scale.sh /work/scale-100k [OUTDIR]
set -euo pipefail
DS=$(cd "$1" && pwd); OUT=${2:-artifacts/find-scale}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
BENCH=$(cd ../shared/bench && pwd)
export TCP_NODELAY=1 ORTHANC_TCP_NODELAY=1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ingest() { # port aec label
  local t0 t1 n
  n=$(find "$DS" -name '*.dcm' | wc -l)
  t0=$(date +%s.%N)
  find "$DS" -name '*.dcm' | sort | xargs -n 2500 -P 4 storescu -aet BENCHSCU -aec "$2" 127.0.0.1 "$1" >"$OUT/$3-ingest.log" 2>&1 || true
  t1=$(date +%s.%N)
  echo "$3: ingested $n files in $(python3 -c "print(round($t1-$t0,1))") s ($(python3 -c "print(round($n/($t1-$t0),1))") inst/s), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.txt"
}
find_bench() { # port aec label
  /usr/bin/python3 "$BENCH/bench_dicom.py" --host 127.0.0.1 --port "$1" --aec "$2" --aet BENCHSCU --dicomweb-url "" \
    --dataset "$DS" --tests find --label "$3" --json "$OUT/$3-find.json" --work "$OUT/work-$3" 2>&1 | tee "$OUT/$3-find.txt"
}

dotnet build src/Aegis.Server -c Release -nologo -v q >/dev/null
AEGIS="dotnet src/Aegis.Server/bin/Release/net10.0/aegis.dll"
DATA=$(mktemp -d /tmp/find-scale-aegis.XXXX); DP=$(free_port); HP=$(free_port); TP=$(free_port)
AEGIS_ADMIN_PASSWORD="Bench-$(head -c 9 /dev/urandom | base64 | tr -dc A-Za-z0-9)-7x" Aegis__Dicom__Port=$DP Aegis__Dicom__TlsPort=$TP \
  Aegis__Http__Port=$HP $AEGIS serve --data "$DATA" >"$OUT/aegis.log" 2>&1 & SPID=$!
trap 'kill $SPID 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sk -o /dev/null "https://127.0.0.1:$HP/health" && break; sleep 0.5; done
$AEGIS ae add BENCHSCU --host 127.0.0.1 --allow echo,store,find,get,move --data "$DATA" >/dev/null
ingest "$DP" AEGIS aegis
find_bench "$DP" AEGIS aegis
kill $SPID; wait $SPID 2>/dev/null || true; rm -rf "$DATA"

OD=$(mktemp -d /tmp/find-scale-orthanc.XXXX); OP=$(free_port)
BENCH_ORTHANC_DIR="$OD" DICOM_PORT=$OP HTTP_PORT=$(free_port) MOVE_PORT=$(free_port) "$BENCH/orthanc_ctl.sh" start >/dev/null 2>&1
ingest "$OP" ORTHANC orthanc
find_bench "$OP" ORTHANC orthanc
BENCH_ORTHANC_DIR="$OD" "$BENCH/orthanc_ctl.sh" stop >/dev/null 2>&1 || true; rm -rf "$OD"
/usr/bin/python3 "$BENCH/report.py" "$OUT/aegis-find.json" "$OUT/orthanc-find.json" | tee "$OUT/report.md" || true
