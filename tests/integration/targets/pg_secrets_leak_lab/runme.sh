#!/usr/bin/env bash
# Passwords set, changed and probed by the PostgreSQL modules must appear nowhere:
# not in -vvv output, not in registered results, not in the server's statement log.
set -eu
config=../../integration_config.yml
pglog=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['lab_env']['PGAUTH_LAB_PGLOG'])" "$config")
# The random hex parts are what the greps look for: they survive JSON or shell escaping
# of the quotes around them, which a search for the whole password would miss.
hex1=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
hex2=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
LEAK_PW1="leak1-$hex1"
LEAK_PW2="leak2'\"\\\$-$hex2"
export LEAK_PW1 LEAK_PW2
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
offset=$(stat -c %s "$pglog")

ansible-playbook leak.yml -i "$INVENTORY_PATH" -e @"$config" \
  -e "leak_results_file=$workdir/results.json" -vvv "$@" > "$workdir/output.txt" 2>&1 \
  || { tail -n 60 "$workdir/output.txt"; exit 1; }
tail -c +"$((offset + 1))" "$pglog" > "$workdir/server.log"

grep -q "leak_role" "$workdir/server.log" || { echo "the server log shows none of the test's statements"; exit 1; }
grep -q '"password_changed": true' "$workdir/results.json" || { echo "results file incomplete"; exit 1; }
for name in output.txt results.json server.log; do
  for secret in "$hex1" "$hex2"; do
    if grep -qF -- "$secret" "$workdir/$name"; then
      echo "LEAK: a password appears in $name"; exit 1
    fi
  done
done
echo "no password in -vvv output ($(wc -l < "$workdir/output.txt") lines), results, or server log ($(wc -l < "$workdir/server.log") lines)"
