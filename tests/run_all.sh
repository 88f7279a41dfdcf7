#!/usr/bin/env bash
# `make test`: every suite, in order, against one lab; the lab goes down at the
# end even when a step fails.  Prints one closing line `N passed, N failed`:
# pytest-based suites count their tests, every other step counts as one.
set -u
cd "$(dirname "$0")/.."
results=.build/test-results
rm -rf "$results"; mkdir -p "$results"
passed=0; failed=0; failed_steps=()
trap 'make -s lab-down >/dev/null 2>&1 || true' EXIT

count_pytest() {  # sums "N passed / N failed / N error" over every pytest summary line
  local log=$1
  grep -E '^(=+ )?[0-9]+ (passed|failed|errors?)(,.*)? in [0-9.]+s' "$log" | awk '
    { for (i = 1; i < NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i
        if ($(i+1) ~ /^(failed|errors?)/) f += $i } }
    END { print p + 0, f + 0 }'
}

step() {  # step NAME pytest|single COMMAND...
  local name=$1 kind=$2; shift 2
  local log="$results/$name.log" started rc
  started=$(date +%s)
  echo "=== $name: $*"
  "$@" > >(tee "$log") 2>&1
  rc=$?
  sleep 0.1  # let tee finish writing
  local took=$(( $(date +%s) - started ))
  if [ "$kind" = pytest ]; then
    read -r p f < <(count_pytest "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
  elif [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  if [ "$rc" -eq 0 ]; then echo "=== $name: ok (${took}s)"; else
    echo "=== $name: FAILED rc=$rc (${took}s; log $log)"; failed_steps+=("$name"); fi
}

step ruff single make -s ruff
step changelog single make -s changelog
step lint single make -s lint
step sanity single make -s sanity
step units pytest make -s units
step lab-up single make -s lab-up
step lab-test pytest make -s lab-test
step reliability pytest make -s reliability
step security pytest make -s security
step integration single make -s integration
step molecule single make -s molecule

echo
[ ${#failed_steps[@]} -eq 0 ] || echo "failed steps: ${failed_steps[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
