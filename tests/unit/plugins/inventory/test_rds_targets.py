"""The rds_targets inventory plugin itself (it imports ansible, so it is tested outside
tests/unit/plugins/module_utils): its documentation, which files it takes, and the checks it
makes on its cache before reading it (review finding 2)."""
from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.credops.pgauth.plugins.doc_fragments import plugin_connection
from ansible_collections.credops.pgauth.plugins.inventory import rds_targets
from ansible_collections.credops.pgauth.plugins.module_utils import inventory_rds as m
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import AWS_OPTIONS

REGION = "eu-west-1"
CONNECT = {"sslmode": "verify-full", "dbname": "postgres"}
HOST_A = f"a.x.{REGION}.rds.amazonaws.com"


def _built(connect=None):
    """What the plugin builds for instance a (managed master) and a role secret by host."""
    connect = CONNECT if connect is None else connect
    instance = {"DBInstanceIdentifier": "a", "DBInstanceArn": f"arn:aws:rds:{REGION}:1:db:a",
                "Engine": "postgres", "EngineVersion": "16.3", "DBInstanceStatus": "available",
                "Endpoint": {"Address": HOST_A, "Port": 5432}, "MasterUsername": "master",
                "IAMDatabaseAuthenticationEnabled": True, "TagList": [],
                "MasterUserSecret": {"SecretArn": f"arn:sm:{REGION}:1:secret:rds!db-a"}}
    secret = {"name": "s", "arn": f"arn:aws:secretsmanager:{REGION}:1:secret:s-AbCdEf",
              "tags": {}, "created": 1.0,
              "fields": {"username": "app", "host": HOST_A, "port": None, "dbname": None,
                         "has_password": True}}
    records = m.databases([instance], [], REGION, {}, True)
    return m.build_hosts(records, [secret], connect, m.DEFAULT_SECRET_TAG,
                         m.DEFAULT_HOSTNAME_TEMPLATE)


def _tampered(change):
    hosts = json.loads(json.dumps(_built()))
    change(hosts[0]["vars"])
    return hosts


def test_the_plugin_takes_the_collections_aws_options_from_the_generated_fragment():
    """The inventory source takes the modules' AWS option names, aliases and AWS_* fallbacks
    from the one source (the option registry, through the generated plugin fragment)."""
    doc = yaml.safe_load(rds_targets.DOCUMENTATION)
    assert "credops.pgauth.plugin_connection.AWS" in doc["extends_documentation_fragment"]
    options = doc["options"]
    assert not set(options) & set(AWS_OPTIONS), "an AWS option written again by hand"
    fragment = yaml.safe_load(plugin_connection.ModuleDocFragment.AWS)["options"]
    for name, spec in AWS_OPTIONS.items():
        assert name in fragment, name
        assert fragment[name].get("aliases", []) == spec.get("aliases", []), name
        # reversed: ansible's config lets the last variable set win, env_fallback the first
        env = [e["name"] for e in fragment[name].get("env", [])]
        assert env[::-1] == spec.get("env", []), name
        assert fragment[name]["type"] == spec["type"], name
    assert "AWS_SECURITY_TOKEN" in [e["name"] for e in fragment["session_token"]["env"]]
    assert options["hostname_template"]["default"] == m.DEFAULT_HOSTNAME_TEMPLATE
    assert options["secret_tag"]["default"] == m.DEFAULT_SECRET_TAG
    assert options["filters"]["suboptions"]["engine"]["default"] == list(m.POSTGRES_ENGINES)


@pytest.mark.parametrize(("name", "accepted"), [
    ("prod.rds_targets.yml", True), ("prod.rds_targets.yaml", True), ("rds_targets.yml", True),
    ("rds_targets.yaml", True), ("prod.aws_rds.yml", False), ("rds_targets.json", False),
    ("myrds_targets.yml", False)])
def test_verify_file(tmp_path, name, accepted):
    source = tmp_path / name
    source.write_text("plugin: credops.pgauth.rds_targets\n")
    assert bool(rds_targets.InventoryModule().verify_file(str(source))) is accepted


@pytest.mark.parametrize(("mode", "unsafe"), [
    (0o700, None), (0o755, None), (0o770, "writable by group or others"),
    (0o777, "writable by group or others"), (0o1777, "writable by group or others")])
def test_unsafe_cache_path_modes(tmp_path, mode, unsafe):
    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(mode)
    found = rds_targets.unsafe_cache_path(str(directory))
    assert (found is None) if unsafe is None else (unsafe in found)


def test_unsafe_cache_path_owner(tmp_path):
    import os
    assert rds_targets.unsafe_cache_path(str(tmp_path / "absent")) is None
    assert "not by the running user" in rds_targets.unsafe_cache_path(
        str(tmp_path), uid=os.geteuid() + 1)


def _inventory_with_cache(tmp_path, cache_dir, cached, file_mode=0o600):
    """ansible-inventory --list over a source with a jsonfile cache in cache_dir holding
    cached, and an AWS endpoint that is a closed port: it succeeds only from the cache."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    build = Path(__file__).resolve().parents[7]
    source = tmp_path / "fleet.rds_targets.yml"
    source.write_text(yaml.safe_dump({
        "plugin": "credops.pgauth.rds_targets", "region": REGION, "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(cache_dir),
        "cache_timeout": 3600, "endpoint_url": "http://127.0.0.1:9",
        "access_key": "k", "secret_key": "s",
        "aws_config": {"connect_timeout": 1, "retries": {"max_attempts": 1}}}))
    name = "credops.pgauth.rds_targets"
    key = f"{name}_k" + hashlib.sha256(f"{name}{source}".encode()).hexdigest()[:6]
    # as ansible-core 2.19's cache interposer writes it: an s1_ key, a JSON payload
    cache_file = cache_dir / f"ansible_inventory_s1_{key}"
    cache_file.write_text(json.dumps({"__payload__": json.dumps(cached)}))
    cache_file.chmod(file_mode)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(build), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "HOME": str(tmp_path)}
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i",
                           str(source), "--list"], capture_output=True, text=True, env=env,
                          check=False, timeout=120)
    return done, " ".join(done.stderr.split())


def _evil_cache():
    def poison(v):
        v["pgauth_target"].update(host="evil.example", sslrootcert="/tmp/evil-ca.pem")
    return _tampered(poison)


def test_a_safe_untampered_cache_is_used(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    done, stderr = _inventory_with_cache(tmp_path, cache_dir, _built())
    assert done.returncode == 0, stderr
    assert "a-app" in json.loads(done.stdout)["_meta"]["hostvars"]


def test_a_group_writable_cache_dir_is_ignored(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache_dir.chmod(0o770)
    done, stderr = _inventory_with_cache(tmp_path, cache_dir, _evil_cache())
    # the cache is not read: AWS is asked (a closed port here), never evil.example
    assert done.returncode != 0 and "evil.example" not in done.stdout
    assert "the inventory cache is ignored and not written" in stderr, stderr
    assert "writable by group or others" in stderr, stderr
    assert "cannot reach rds at http://127.0.0.1:9" in stderr, stderr


def test_a_group_writable_cache_file_is_ignored(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    done, stderr = _inventory_with_cache(tmp_path, cache_dir, _built(), file_mode=0o666)
    assert done.returncode != 0, stderr
    assert "the inventory cache is ignored" in stderr and "writable by group" in stderr


def test_a_tampered_record_in_a_safe_cache_is_dropped(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    done, stderr = _inventory_with_cache(tmp_path, cache_dir, _evil_cache())
    assert done.returncode != 0 and "evil.example" not in done.stdout
    assert "cached host 'a-app' dropped" in stderr, stderr
    assert "cannot reach rds at http://127.0.0.1:9" in stderr, stderr  # AWS asked again
