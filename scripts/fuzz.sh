#!/usr/bin/env bash
# Fuzzes the parsers of Aegis (issue 9): scripts/fuzz.sh HARNESS|all SECONDS
#
# Builds tools/Aegis.Fuzz, instruments Aegis.Dicom.dll and Aegis.Dicom.Network.dll with SharpFuzz, and runs each
# harness under AFL++ for SECONDS, seeded from tools/Aegis.Fuzz/corpus/HARNESS. Exits non-zero on any finding (a crash =
# an exception the parser must not throw, a hang over 2 s, an allocation over budget) and copies the inputs to
# tools/Aegis.Fuzz/findings/HARNESS/. Installs afl++ (apt) and the sharpfuzz tool when they are missing.
# Environment: FUZZ_OUT (default artifacts/fuzz) holds the build, AFL's queues and results.tsv; FUZZ_KEEP=1 resumes
# the previous queue of a harness instead of starting from the seeds (for long campaigns run in several sittings).
set -euo pipefail
cd "$(dirname "$0")/.."

HARNESSES=(part10 pdu association json xml multipart)
usage() { echo "usage: $0 HARNESS|all SECONDS   (harnesses: ${HARNESSES[*]})" >&2; exit 2; }
[ $# -eq 2 ] || usage
target=$1 seconds=$2
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || usage
if [ "$target" = all ]; then selected=("${HARNESSES[@]}")
else [[ " ${HARNESSES[*]} " == *" $target "* ]] || usage; selected=("$target"); fi

out=${FUZZ_OUT:-artifacts/fuzz}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v afl-fuzz >/dev/null 2>&1; then
  echo "Installing afl++"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq afl++ >/dev/null
fi
sharpfuzz=$out/tools/sharpfuzz
if [ ! -x "$sharpfuzz" ]; then
  echo "Installing SharpFuzz.CommandLine 2.3.0"
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$out/tools" >/dev/null
fi

# Build, then instrument a fresh copy: sharpfuzz rewrites the assembly in place and refuses to do it twice.
dotnet build tools/Aegis.Fuzz -c Release -nologo -v q -o "$out/build" | { grep -E "error|rror\(s\)" || true; }
rm -rf "$out/bin"
cp -r "$out/build" "$out/bin"
for dll in Aegis.Dicom.dll Aegis.Dicom.Network.dll; do
  "$sharpfuzz" "$out/bin/$dll" >/dev/null
done

# A fresh root machine: no CPU frequency governor to check, core dumps go to a file (core_pattern is not a pipe, or
# AFL tells us), no free core to bind to when other work runs (AFL_NO_AFFINITY), the target is the dotnet host, not an
# AFL-compiled binary (AFL_SKIP_BIN_CHECK: SharpFuzz speaks the fork server protocol itself).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 AFL_FAST_CAL=1
if [[ $(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo core) == \|* ]]; then
  echo "note: core_pattern is a pipe ($(cat /proc/sys/kernel/core_pattern)); AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES is set" >&2
fi

status=0
results=$out/results.tsv
[ -f "$results" ] || printf 'date\tharness\tseconds\texecs\texecs_per_sec\tpaths\tedges\tcrashes\thangs\n' >"$results"
for h in "${selected[@]}"; do
  seeds=tools/Aegis.Fuzz/corpus/$h
  queue=$out/afl/$h
  input=$seeds
  if [ "${FUZZ_KEEP:-0}" = 1 ] && [ -d "$queue/default/queue" ]; then input=-; export AFL_AUTORESUME=1; else rm -rf "$queue"; fi
  mkdir -p "$queue"
  # The seeds must pass on their own first (also with the 2 s budget), or AFL would stop on them. Replays use the
  # uninstrumented build: instrumented code writes to AFL's shared memory, which only exists under afl-fuzz.
  if ! FUZZ_FINDINGS_DIR="tools/Aegis.Fuzz/findings/$h" dotnet "$out/build/Aegis.Fuzz.dll" "$h" --run "$seeds" >"$queue/seeds.log" 2>&1; then
    cat "$queue/seeds.log"; echo "FINDING in the seed corpus of $h (copied to tools/Aegis.Fuzz/findings/$h)" >&2; status=1
    continue
  fi
  echo "== $h: fuzzing for $seconds s"
  # -t 10000: a hang (over 2 s) is detected by the harness's own watchdog and reported as a crash; AFL's timeout is
  # only a backstop, since AFL killing the in-process SharpFuzz target ends the campaign. -m none: the .NET runtime
  # reserves far more address space than AFL's default allows; allocation is bounded by the harness's budget instead.
  afl-fuzz -i "$input" -o "$queue" -t 10000 -m none -V "$seconds" -- dotnet "$out/bin/Aegis.Fuzz.dll" "$h" >"$queue/afl.log" 2>&1 || {
    tail -30 "$queue/afl.log"; echo "afl-fuzz failed for $h" >&2; status=1; continue; }
  stats=$queue/default/fuzzer_stats
  stat() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
  # Every crash and hang is replayed with the uninstrumented build (which times a slow input twice against the same
  # 2 s): exceptions reproduce exactly; a "hang" that does not was the machine being busy (2 cores shared with
  # builds), is listed, and does not fail the run.
  crashes=0 hangs=0
  mkdir -p "$queue/confirmed"
  while IFS= read -r f; do
    if dotnet "$out/build/Aegis.Fuzz.dll" "$h" --run "$f" >>"$queue/replay.log" 2>&1; then
      echo "   not reproduced outside AFL (machine load?): $f"
    else
      case $f in */hangs/*) hangs=$((hangs + 1)) ;; *) crashes=$((crashes + 1)) ;; esac
      cp "$f" "$queue/confirmed/$(basename "$(dirname "$f")")-$(basename "$f" | tr ':,' '_-')"
    fi
  done < <(find "$queue/default/crashes" "$queue/default/hangs" -type f -name 'id:*')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$h" "$(stat run_time)" "$(stat execs_done)" "$(stat execs_per_sec)" \
    "$(stat corpus_count)" "$(stat edges_found)" "$crashes" "$hangs" >>"$results"
  echo "   execs $(stat execs_done) ($(stat execs_per_sec)/s), paths $(stat corpus_count), edges $(stat edges_found), crashes $crashes, hangs $hangs"
  if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
    status=1
    mkdir -p "tools/Aegis.Fuzz/findings/$h"
    cp "$queue"/confirmed/* "tools/Aegis.Fuzz/findings/$h/"
    echo "   FINDINGS copied to tools/Aegis.Fuzz/findings/$h (reproduce: dotnet $out/build/Aegis.Fuzz.dll $h --run FILE)"
  fi
done
exit $status
