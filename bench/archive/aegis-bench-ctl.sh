#!/usr/bin/env bash
# start|stop|reset a throw-away `aegis serve` for ../shared/bench/bench_dicom.py (docs/performance.md, "Archive").
# reset = stop, wipe the data folder, start, register BENCHSCU (store/find/get/move) and BENCHSCP (C-MOVE destination).
# Env: AEGIS_DLL (path of aegis.dll, Release), BENCH_DIR (data + pid, default /tmp/aegis-bench),
#      DPORT (DICOM port, default 11190; TLS = DPORT+1, HTTPS = DPORT+2), MOVE_PORT (default 11113).
set -u
W=${BENCH_DIR:-/tmp/aegis-bench}; DLL=${AEGIS_DLL:?set AEGIS_DLL to a Release aegis.dll}
DPORT=${DPORT:-11190}; MOVE_PORT=${MOVE_PORT:-11113}
mkdir -p "$W"
export TCP_NODELAY=1
stop() {
  [ -f "$W/pid" ] || return 0
  local p; p=$(cat "$W/pid")
  kill "$p" 2>/dev/null; while kill -0 "$p" 2>/dev/null; do sleep 0.2; done
  rm -f "$W/pid"
}
start() {
  mkdir -p "$W/data"
  AEGIS_ADMIN_PASSWORD="Bench-$(head -c 9 /dev/urandom | base64 | tr -dc A-Za-z0-9)-9x" \
    Aegis__Dicom__Port=$DPORT Aegis__Dicom__TlsPort=$((DPORT + 1)) Aegis__Http__Port=$((DPORT + 2)) \
    setsid dotnet "$DLL" serve --data "$W/data" >>"$W/serve.log" 2>&1 </dev/null &
  echo $! >"$W/pid"
  for _ in $(seq 1 120); do
    curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$((DPORT + 2))/health" 2>/dev/null | grep -q 200 && break
    sleep 0.5
  done
  dotnet "$DLL" ae add BENCHSCU --host 127.0.0.1 --allow echo,store,find,get,move --data "$W/data" >/dev/null
  # A C-MOVE destination must be registered with a port and allowed to receive (store).
  dotnet "$DLL" ae add BENCHSCP --host 127.0.0.1 --port "$MOVE_PORT" --allow echo,store --data "$W/data" >/dev/null
}
case ${1:-} in
  start) start ;;
  stop) stop ;;
  reset) stop; rm -rf "$W/data"; start ;;
  *) echo "usage: $0 start|stop|reset" >&2; exit 2 ;;
esac
