#!/usr/bin/env bash
# ingest-ab.sh DLL [associations]: start `aegis serve` (DLL) on a fresh data folder, C-STORE the perf dataset (600 CT from
# gen_dataset.py, as in ../shared/acceptance/perf-ingest) over N storescu associations; print server CPU ms and inst/s.
# Also prints the time to a healthy server and the server's CPU up to then.
# WARM=1 first stores WARM_DATASET (another seed) to measure a JIT-warm server; PERF=1 records `perf` samples.
DLL=$1; NA=${2:-4}
export TCP_NODELAY=1
WORK=${WORK:-/tmp/aegis-ab}; mkdir -p $WORK
DS=${DATASET:-/tmp/aegis-acceptance/perf-dataset}
FILES=$(find "$DS" -name '*.dcm' | sort); NF=$(echo "$FILES" | wc -l)
fp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
export ${EXTRAENV:-DUMMY=1}
DATA=$(mktemp -d $WORK/data.XXXX); DPORT=$(fp); TPORT=$(fp); HPORT=$(fp)
ts=$(date +%s.%N)
AEGIS_ADMIN_PASSWORD="Bench-$RANDOM$RANDOM-Zq9x" Aegis__Dicom__Port=$DPORT Aegis__Dicom__TlsPort=$TPORT Aegis__Http__Port=$HPORT DOTNET_PerfMapEnabled=${PERF:-0} dotnet $DLL serve --data $DATA >$DATA.log 2>&1 &
SPID=$!
for _ in $(seq 1 120); do curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:$HPORT/health 2>/dev/null | grep -q 200 && break; sleep 0.5; done
th=$(date +%s.%N); cs=$(awk '{print $14+$15}' /proc/$SPID/stat)
dotnet $DLL ae add BENCHSCU --host 127.0.0.1 --allow echo,store --data $DATA >/dev/null
[ -n "${WARM:-}" ] && { find ${WARM_DATASET:-/tmp/aegis-ab-warm} -name "*.dcm" | sort > $WORK/warm.lst; for i in 0 1 2 3; do awk -v i=$i "NR%4==i" $WORK/warm.lst | xargs storescu -aet BENCHSCU -aec AEGIS 127.0.0.1 $DPORT >/dev/null 2>&1 & done; for j in $(jobs -p); do [ "$j" = "$SPID" ] || wait $j; done; }
[ -n "${PERF:-}" ] && { perf record -F 499 -g -p $SPID -o $WORK/perf.data >/dev/null 2>&1 & PPID2=$!; sleep 0.5; }
c0=$(awk '{print $14+$15}' /proc/$SPID/stat)
t0=$(date +%s.%N)
for i in $(seq 0 $((NA-1))); do echo "$FILES" | awk -v i=$i -v n=$NA 'NR%n==i' | xargs storescu -v -aet BENCHSCU -aec AEGIS 127.0.0.1 $DPORT >$DATA.st.$i 2>&1 & done
for j in $(jobs -p); do [ "$j" = "$SPID" ] || [ "$j" = "${PPID2:-x}" ] || wait $j; done
t1=$(date +%s.%N)
c1=$(awk '{print $14+$15}' /proc/$SPID/stat)
ok=$(cat $DATA.st.* | grep -c 'Received Store Response (Success')
[ -n "${PERF:-}" ] && { kill -INT $PPID2; sleep 2; }
sleep 3.5
kill $SPID; wait $SPID 2>/dev/null
echo "start=$(python3 -c "print(round($th-$ts,2))")s startcpu=$((cs*10))ms cpu=$(( (c1-c0)*10 ))ms ok=$ok/$NF rate=$(python3 -c "print(round($NF/($t1-$t0),1))") inst/s"
grep PROF $DATA.log | tail -1
grep -i "max.*pdu\|error\|warn" $DATA.log | head -5
rm -rf $DATA $DATA.*
