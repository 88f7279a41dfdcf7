#!/usr/bin/env bash
# Runs pytest (with the given arguments) against the collection as it was at COMMIT, to show
# that a test fails on the code before a fix:  tests/utils/against_commit.sh 121b05e tests/security/test_x.py
set -euo pipefail
cd "$(dirname "$0")/../.."
commit=$1; shift
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/ansible_collections/credops/pgauth"
git archive "$commit" | tar -C "$dir/ansible_collections/credops/pgauth" -xf -
eval "$(tests/lab/labctl env)"
PGAUTH_BUILD=$dir .venv/bin/pytest -q -p no:cacheprovider "$@"
