"""Run the client load against the current lab scenario's stores for a while and write its
report as JSON (for the molecule alternating scenario and bench/)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / ".build"))

from lab.loadclient import ClientLoad  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    env = os.environ
    meta = json.loads(Path(env["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
    options = {"region": env["AWS_REGION"], "endpoint_url": env["AWS_ENDPOINT_URL"],
               "access_key": env["AWS_ACCESS_KEY_ID"], "secret_key": env["AWS_SECRET_ACCESS_KEY"],
               "url": env["VAULT_ADDR"], "token": env["VAULT_TOKEN"], "validate_certs": True}
    target = meta["target"]
    load = ClientLoad(meta["stores"], options, {
        "host": target["host"], "port": target["port"], "dbname": target["dbname"],
        "sslmode": "verify-full", "sslrootcert": target["sslrootcert"]}, workers=args.workers)
    with load:
        time.sleep(args.seconds)
    Path(args.out + ".tmp").write_text(json.dumps(load.report(), indent=2))
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
