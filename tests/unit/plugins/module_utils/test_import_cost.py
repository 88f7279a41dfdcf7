"""Issue 20's guards on the cost of a diagnose per target, none of them a timing: a module
process imports boto3/botocore and hvac only for a target that needs them, a gathering makes
one AWS client per service and settings, and the diagnose role stays at a few tasks a host
(each task costs a worker process and its templating on the controller)."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
import yaml

from ansible_collections.credops.pgauth.plugins.module_utils import aws

COLLECTION = pathlib.Path(aws.__file__).resolve().parents[2]
ROOT = COLLECTION.parents[2]  # the directory that holds ansible_collections/
HEAVY = ("boto3", "botocore", "hvac", "requests", "s3transfer")

PROBE = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


def imported_after(*modules: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after importing modules."""
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True,
                          text=True, check=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return set(json.loads(done.stdout))


MU = "ansible_collections.credops.pgauth.plugins.module_utils."


@pytest.mark.parametrize("module", [
    "ansible_collections.credops.pgauth.plugins.modules.pg_auth_facts",
    "ansible_collections.credops.pgauth.plugins.modules.pg_login_probe",
    MU + "facts", MU + "store_params", MU + "conflicts", MU + "rds_iam", MU + "logsources",
    MU + "store_file"])
def test_a_password_only_target_imports_no_aws_or_vault_library(module):
    loaded = imported_after(module)
    assert MU.split(".", maxsplit=1)[0] in loaded  # the probe itself works
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_store_backends_that_need_them_still_import_them():
    """The lazy import is no missing import: a Vault backend brings its library, and an AWS
    one brings botocore with its first client (test below)."""
    assert {"hvac", "requests"} <= imported_after(MU + "store_vault")


def test_call_errors_catch_a_real_failed_call_of_a_new_client():
    """Every AWS module catches call_errors() without importing botocore itself: the client
    made the names real before any call could raise."""
    code = ("from ansible_collections.credops.pgauth.plugins.module_utils import aws\n"
            "api = aws.client({'region': 'eu-west-1', 'endpoint_url': 'http://127.0.0.1:9',"
            " 'access_key': 'AKIDEXAMPLE', 'secret_key': 'x'}, 'secretsmanager', 1)\n"
            "try:\n    api.list_secrets()\nexcept aws.call_errors() as err:\n"
            "    print(type(err).__name__, aws.describe_aws_error(err, 'list_secrets',"
            " 'secretsmanager', 'http://127.0.0.1:9'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60, env={"PYTHONPATH": str(ROOT)})
    assert done.stdout.split(None, 1) == [
        "EndpointConnectionError", "cannot reach secretsmanager at http://127.0.0.1:9\n"]


def test_botocore_exceptions_match_nothing_until_botocore_is_imported():
    code = ("import sys; from ansible_collections.credops.pgauth.plugins.module_utils import "
            "aws; e = aws.botocore_exceptions(); before = e.ClientError.__module__; "
            "import botocore.exceptions; after = aws.botocore_exceptions().ClientError; "
            "print(before, after is botocore.exceptions.ClientError)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60, env={"PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == [aws.__name__, "True"]


PARAMS = {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9", "access_key": "AKIDEXAMPLE",
          "secret_key": "not-a-secret"}


def test_one_gathering_makes_one_client_per_service_and_settings():
    """Making a client sends nothing; within reuse_clients the second ask is the first
    client, outside it each ask is a new one (a unit test's Stubber stays its own)."""
    with aws.reuse_clients():
        first = aws.client(PARAMS, "secretsmanager")
        assert aws.client(PARAMS, "secretsmanager") is first
        assert aws.client(PARAMS, "secretsmanager", max_attempts=1) is not first
        assert aws.client({**PARAMS, "region": "eu-west-2"}, "secretsmanager") is not first
        assert aws.client(PARAMS, "sts") is not first
    assert aws.client(PARAMS, "secretsmanager") is not aws.client(PARAMS, "secretsmanager")


def test_making_a_client_leaves_the_retry_settings_as_they_were():
    """botocore rewrites the retries dict it is given; a one-shot check made after another
    client must still get max_attempts=1, not the default's 8 retries."""
    before = json.dumps(aws.RETRY_CONFIG, sort_keys=True)
    aws.client(PARAMS, "sts")
    one_shot = aws.client(PARAMS, "iam", max_attempts=1)
    assert json.dumps(aws.RETRY_CONFIG, sort_keys=True) == before
    # botocore counts the first call too: max_attempts=1 is 2 calls at most, not 9
    assert one_shot.meta.config.retries["total_max_attempts"] == 2


def test_an_unknown_profile_still_fails_when_the_session_is_made(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(aws.AwsError, match="AWS profile 'no-such-profile' not found"):
        aws.client({**PARAMS, "profile": "no-such-profile"}, "sts")


# the validation of the role's arguments, the facts module, the report, the summary; the
# fleet report is run_once (one per play, not per host)
MAX_TASKS_PER_HOST = 4


def test_the_diagnose_role_keeps_few_tasks_per_host():
    role = COLLECTION / "roles" / "diagnose"
    tasks = yaml.safe_load((role / "tasks" / "main.yml").read_text())
    per_host = [task for task in tasks if not task.get("run_once")]
    # ansible adds one validate_argument_spec task per host for meta/argument_specs.yml
    implicit = 1 if (role / "meta" / "argument_specs.yml").exists() else 0
    assert all("include_tasks" not in task and "import_tasks" not in task for task in tasks)
    assert len(per_host) + implicit <= MAX_TASKS_PER_HOST, [t.get("name") for t in per_host]
