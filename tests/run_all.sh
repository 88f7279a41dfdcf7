#!/usr/bin/env bash
# `make test`: every suite, in two lanes that run side by side, each against its own lab (one
# lab suite keeps about one core busy: two use the machine's two).  The labs go down at the
# end even when a step fails.  Prints one closing line `N passed, N failed`: pytest-based
# suites count their tests, every other step counts as one.
set -u
cd "$(dirname "$0")/.."
results=.build/test-results
rm -rf "$results"; mkdir -p "$results"

# the second lab: its own directory, ports 10 above the first lab's (OpenBao also takes its
# port + 1 for its cluster listener; PgBouncer's defaults to the PostgreSQL port + 1000)
LANE2_ENV=(PGAUTH_LAB_DIR="$PWD/.lab-lane2"
           PGAUTH_LAB_PGPORT=$(( ${PGAUTH_LAB_PGPORT:-55432} + 10 ))
           PGAUTH_LAB_MOTO_PORT=$(( ${PGAUTH_LAB_MOTO_PORT:-55000} + 10 ))
           PGAUTH_LAB_VAULT_PORT=$(( ${PGAUTH_LAB_VAULT_PORT:-58200} + 10 ))
           PGAUTH_LAB_PGBOUNCER_PORT=$(( ${PGAUTH_LAB_PGBOUNCER_PORT:-$(( ${PGAUTH_LAB_PGPORT:-55432} + 1000 ))} + 10 )))
trap 'make -s lab-down >/dev/null 2>&1; env "${LANE2_ENV[@]}" make -s lab-down >/dev/null 2>&1; true' EXIT

count_pytest() {  # sums "N passed / N failed / N error" over every pytest summary line
  local log=$1
  grep -E '^(=+ )?[0-9]+ (passed|failed|errors?)(,.*)? in [0-9.]+s' "$log" | awk '
    { for (i = 1; i < NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i
        if ($(i+1) ~ /^(failed|errors?)/) f += $i } }
    END { print p + 0, f + 0 }'
}

step() {  # step NAME pytest|single COMMAND...   (its tally goes to $results/NAME.tally)
  local name=$1 kind=$2; shift 2
  local log="$results/$name.log" started rc p=0 f=0
  started=$(date +%s)
  echo "=== $name: $*"
  "$@" > >(tee "$log") 2>&1
  rc=$?
  sleep 0.1  # let tee finish writing
  local took=$(( $(date +%s) - started ))
  if [ "$kind" = pytest ]; then
    read -r p f < <(count_pytest "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  elif [ "$rc" -eq 0 ]; then p=1; else f=1; fi
  echo "$p $f" > "$results/$name.tally"
  if [ "$rc" -eq 0 ]; then echo "=== $name: ok (${took}s)"; else
    echo "=== $name: FAILED rc=$rc (${took}s; log $log)"; echo "$name" >> "$results/failed-steps"; fi
}

step ruff single make -s ruff
step changelog single make -s changelog
step collection single make -s collection
# from here the copy in .build is shared by both lanes: no step may rebuild it
export PGAUTH_BUILT=1

lane2() {
  export "${LANE2_ENV[@]}"
  step lint single make -s lint
  step sanity single make -s sanity
  step units pytest make -s units
  step lab-up-2 single make -s lab-up
  step reliability pytest make -s reliability
  step integration single make -s integration
}
lane2 > "$results/lane2.out" 2>&1 &
lane2_pid=$!

step lab-up single make -s lab-up
step lab-test pytest make -s lab-test
step security pytest make -s security
step molecule single make -s molecule

echo "=== waiting for the second lane (lint, sanity, units, reliability, integration)"
wait "$lane2_pid"
echo "=== the second lane's output:"
cat "$results/lane2.out"

passed=0; failed=0
for tally in "$results"/*.tally; do
  read -r p f < "$tally"
  passed=$((passed + p)); failed=$((failed + f))
done
echo
[ -s "$results/failed-steps" ] && echo "failed steps: $(tr '\n' ' ' < "$results/failed-steps")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
