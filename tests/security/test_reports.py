"""Item 11 of the security review, the report parts: host names that collide in the report
directory, verify reading another path than the report action wrote, log and store text that
breaks out of the Markdown, and health URLs whose credentials end up in reports and output.

Each test runs ansible-playbook with the collection as a user does (the report action, the
verify role against the lab's PostgreSQL), as the attacker sets things up: an inventory with
look-alike host names, a symlink in the report directory, hostile lines in a log, a store
path holding Markdown and HTML, a health URL with user:password and a token."""
from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from labfixtures import BUILD

BIN = Path(sys.executable).parent
# Markdown and HTML that must stay text: a fence closer, the end of a <details> a viewer may
# wrap a report in, links (javascript: and a plain one, which no viewer filters), raw HTML
HOSTILE = ("``` </details> [link](javascript:alert(1)) [docs](https://evil.example/) "
           "<img src=x onerror=alert(1)> *bold* | cell")
HEALTH_PASSWORD = "s3cr3tpw"
HEALTH_TOKEN = "t0kenS3cret"


def run_playbook(tmp_path: Path, plays: list, inventory: dict, *args: str,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    number = len(list(tmp_path.glob("play-*.yml")))
    playbook, hosts = tmp_path / f"play-{number}.yml", tmp_path / f"inventory-{number}.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    hosts.write_text(yaml.safe_dump(inventory, sort_keys=False))
    full_env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
                **(env or {})}
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(hosts), str(playbook),
                           *args], capture_output=True, text=True, env=full_env, check=False,
                          cwd=tmp_path, timeout=600)


def local_inventory(hosts: list[str], group: str | None = None) -> dict:
    members = {"hosts": {host: {} for host in hosts}}
    return {"all": {"vars": {"ansible_connection": "local",
                             "ansible_python_interpreter": sys.executable},
                    **({"children": {group: members}} if group else members)}}


def report_play(runbook: str = "rotate", serial: int | None = None) -> dict:
    """Each host writes a report that names the host it was written for."""
    play = {"name": "reports", "hosts": "all", "gather_facts": False, "tasks": [{
        "name": "write the report", "credops.pgauth.report": {
            "runbook": runbook, "target": {"role": "app_user", "host": "db.internal"},
            "verdict": "healthy", "data": {"written_for": "{{ inventory_hostname }}"},
            "dir": "{{ report_dir }}"}}]}
    if serial:
        play["serial"] = serial
    return play


def reports_by_host(report_dir: Path, runbook: str = "rotate") -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(report_dir.rglob(f"{runbook}.json")):
        found.setdefault(json.loads(path.read_text())["written_for"], []).append(path)
    return found


# -- (a) one directory per host ------------------------------------------------------------

LOOK_ALIKES = ["db 1", "db/1", "db_1", "DB_1", "../escape", ".hidden"]


def test_look_alike_host_names_get_a_report_directory_each(tmp_path):
    """db 1, db/1 and db_1 all became db_1: one host's report replaced another's.  Every
    host must get its own directory, directly under the report directory, not hidden."""
    report_dir = tmp_path / "reports"
    done = run_playbook(tmp_path, [report_play()], local_inventory(LOOK_ALIKES),
                        "-e", f"report_dir={report_dir}")
    assert done.returncode == 0, done.stdout[-3000:]
    written = reports_by_host(report_dir)
    assert sorted(written) == sorted(LOOK_ALIKES), (
        f"hosts whose report was overwritten: {sorted(set(LOOK_ALIKES) - set(written))}")
    directories = {paths[0].parent for paths in written.values()}
    assert len(directories) == len(LOOK_ALIKES), "two hosts share a report directory"
    for host, paths in written.items():
        assert len(paths) == 1
        folder = paths[0].parent
        assert folder.parent == report_dir, f"{host!r} wrote outside the report directory"
        assert not folder.name.startswith(".") and ".." not in folder.name
        assert len(folder.name) <= 140
    assert not (tmp_path / "escape").exists()
    # a name that needs no change keeps it
    assert written["db_1"][0].parent.name == "db_1"


def test_a_host_name_longer_than_a_file_name_gets_a_bounded_directory(tmp_path):
    """A file name has at most 255 bytes: a longer host name could not have a report."""
    host = "db-" + "x" * 300
    report_dir = tmp_path / "reports"
    done = run_playbook(tmp_path, [report_play()], local_inventory([host]),
                        "-e", f"report_dir={report_dir}")
    assert done.returncode == 0, done.stdout[-1000:]
    (path,) = reports_by_host(report_dir)[host]
    assert path.parent.parent == report_dir and len(path.parent.name) <= 140


def test_a_symlink_planted_as_a_host_directory_is_not_followed(tmp_path):
    """Runbooks run as root: a symlink where a host's directory goes must not send the
    report (written by root) into another directory."""
    report_dir, elsewhere = tmp_path / "reports", tmp_path / "elsewhere"
    report_dir.mkdir()
    elsewhere.mkdir()
    (report_dir / "db1").symlink_to(elsewhere)
    done = run_playbook(tmp_path, [report_play()], local_inventory(["db1"]),
                        "-e", f"report_dir={report_dir}")
    assert list(elsewhere.iterdir()) == [], "the report was written through the symlink"
    assert done.returncode != 0
    assert "symlink" in done.stdout


# -- (b) verify reads the rotation of its own host -------------------------------------------

@pytest.fixture
def verify_setup(lab, temp_role, tmp_path):
    """A role of its own with a password, a file store holding it, an empty server log: the
    verify role's inputs, none of the lab's shared scenario state."""
    role = temp_role(f"sec_reports_{secrets.token_hex(4)}",
                     password=(password := "Pw-" + secrets.token_urlsafe(18)))
    target = {"host": lab["PGAUTH_LAB_PGHOST"], "port": int(lab["PGAUTH_LAB_PGPORT"]),
              "dbname": "postgres", "role": role, "sslmode": "verify-full",
              "sslrootcert": lab["PGAUTH_LAB_SSLROOTCERT"]}
    config = tmp_path / "app.yml"
    config.write_text(yaml.safe_dump({"database": {
        "username": role, "password": password, "host": target["host"],
        "port": target["port"], "dbname": "postgres", "sslmode": "verify-full"}}))
    config.chmod(0o600)
    log = tmp_path / "postgresql.log"
    log.write_text("")
    return {"pgauth_target": target,
            "pgauth_stores": [{"name": "app-config", "type": "file", "path": str(config),
                               "format": "yaml", "key": "database", "value_format": "json"}],
            "pgauth_admin": {"user": lab["PGAUTH_LAB_ADMIN_USER"],
                             "password": lab["PGAUTH_LAB_ADMIN_PASSWORD"]},
            "pgauth_logs": {"files": [str(log)]},
            "pgauth_report_dir": str(tmp_path / "reports"),
            "_secrets": {password, lab["PGAUTH_LAB_ADMIN_PASSWORD"]}}


def run_verify(lab: dict, tmp_path: Path, variables: dict, host: str, *args: str):
    variables = {key: value for key, value in variables.items() if not key.startswith("_")}
    vars_file = tmp_path / "verify-vars.yml"
    vars_file.write_text(yaml.safe_dump(variables))
    play = {"name": "verify", "hosts": "pgauth_targets", "gather_facts": False,
            "roles": [{"role": "credops.pgauth.verify"}]}
    return run_playbook(tmp_path, [play], local_inventory([host], group="pgauth_targets"),
                        "-e", f"@{vars_file}", *args, env=lab)


def host_report(report_dir: Path, host: str, runbook: str) -> Path:
    """The report the host wrote, found by what it holds (not by the directory rule)."""
    paths = reports_by_host(report_dir, "rotate").get(host) or []
    assert len(paths) == 1, f"{host!r} has no rotate report of its own"
    return paths[0].parent / f"{runbook}.json"


def test_verify_reads_the_rotation_of_a_host_with_an_unsafe_name(lab, tmp_path, verify_setup):
    """verify starts its log window at the host's last rotation (rotate.json).  It looked
    for it at <report_dir>/<inventory_hostname>/, which for 'db/1' is db/1/rotate.json, while
    the report action wrote db_1...: the window silently fell back to 15 minutes."""
    host = "db/1"
    report_dir = Path(verify_setup["pgauth_report_dir"])
    done = run_playbook(tmp_path, [report_play()], local_inventory([host]),
                        "-e", f"report_dir={report_dir}")
    assert done.returncode == 0, done.stdout[-3000:]
    rotation = json.loads(host_report(report_dir, host, "rotate").read_text())
    verified = run_verify(lab, tmp_path, verify_setup, host)
    assert verified.returncode == 0, verified.stdout[-4000:]
    verify_json = host_report(report_dir, host, "verify")
    assert verify_json.exists(), "verify wrote its report somewhere else than rotate's"
    since = json.loads(verify_json.read_text())["since"]
    assert since is not None
    assert (dt.datetime.fromisoformat(since)
            == dt.datetime.fromisoformat(rotation["generated_at"])), (
        f"verify's window starts at {since}, not at the rotation ({rotation['generated_at']})")


# -- (c) Markdown -------------------------------------------------------------------------------

def markdown_tokens(text: str) -> list:
    from markdown_it import MarkdownIt
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    # markdown-it drops javascript: links itself; GitHub, IDEs and AWX viewers differ, so
    # any link syntax counts here
    parser.validateLink = lambda url: True
    found = []
    for token in parser.parse(text):
        found.append(token)
        found += token.children or []
    return found


def assert_inert(markdown: str, expected_fences: int | None = None) -> None:
    """No HTML, no link, every fence intact (its JSON parses), the hostile text shown."""
    tokens = markdown_tokens(markdown)
    kinds = {token.type for token in tokens}
    assert not kinds & {"html_block", "html_inline"}, "raw HTML from the report's data"
    assert not kinds & {"link_open", "image"}, "a link from the report's data"
    fences = [token for token in tokens if token.type == "fence"]
    if expected_fences is not None:
        assert len(fences) == expected_fences, "a fence was closed early or opened"
    for fence in fences:
        if fence.info == "json":
            json.loads(fence.content)
    shown = " ".join(token.content for token in tokens
                     if token.type in ("text", "code_inline", "fence"))
    for part in ("```", "</details>", "[link](javascript:alert(1))", "<img src=x"):
        assert part in shown, f"{part!r} is not shown as text"


def hostile_report() -> dict:
    """Every field render_markdown shows, holding text a log, a store or a server chose."""
    from ansible_collections.credops.pgauth.plugins.module_utils.report import build_report
    finding = {"id": "store_unreadable`x", "severity": "critical", "title": "# " + HOSTILE,
               "evidence": {"error": HOSTILE + "\n```\n</details>", HOSTILE: [HOSTILE]},
               "fix": {"command": f"echo '{HOSTILE}'\n````\n</details>", "manual": HOSTILE},
               "folded": [{"id": HOSTILE, "title": HOSTILE, "evidence": {"line": HOSTILE}}]}
    second = {"id": "x", "severity": "warning", "title": "1. " + HOSTILE, "evidence": {},
              "fix": {"manual": "\n```\n" + HOSTILE}, "folded": []}
    facts = {"admin_error": HOSTILE + "\r\n```",
             "role": {"exists": True, "can_login": HOSTILE, "valid_until": "\n```\n"},
             "iam": {"iam_enabled": True, "connect_arn": "arn:``" + HOSTILE},
             "stores": [{"store": HOSTILE, "version": "\n```\n</details>"}],
             "probes": [{"store": HOSTILE, "ok": False, "category": HOSTILE,
                         "message": "\n```\n" + HOSTILE}]}
    return build_report(
        "diagnose", {"role": HOSTILE, "host": "\n```\n" + HOSTILE}, "broken", [finding, second],
        {"errors": ["\n```\n" + HOSTILE], "facts": facts, "timings": {HOSTILE: 1},
         "checks": [{"check": HOSTILE, "ok": False, "severity": "critical",
                     "detail": "\n```\n" + HOSTILE}],
         "steps": [{"step": "```\n</details>" + HOSTILE, "status": "````````"}],
         HOSTILE: HOSTILE})


def test_hostile_text_in_any_report_field_stays_text():
    """The renderer itself, field by field (the playbook test below takes the real path)."""
    from ansible_collections.credops.pgauth.plugins.module_utils.report import render_markdown
    markdown = render_markdown(hostile_report())
    # the fix command's fence and the two JSON sections (steps, and the key named HOSTILE)
    assert_inert(markdown, expected_fences=3)


def test_a_hostile_log_line_and_store_error_stay_text_in_verify_md(lab, tmp_path, verify_setup):
    """A client gets lines into the server log (a DETAIL with a crafted pg_hba rule) and an
    app's config names a store path: both reach verify.md.  They must not close a fence or
    become HTML or links there."""
    host = "db1"
    role = verify_setup["pgauth_target"]["role"]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    Path(verify_setup["pgauth_logs"]["files"][0]).write_text(
        f'{stamp} [4242] FATAL:  password authentication failed for user "{role}"\n'
        f'{stamp} [4242] DETAIL:  Connection matched file "/etc/postgresql/pg_hba.conf" '
        f'line 7: "host all all 0.0.0.0/0 scram-sha-256 {HOSTILE}"\n')
    missing = tmp_path / HOSTILE.replace("/", "_") / "app.yml"
    verify_setup["pgauth_stores"].append({"name": "app-missing", "type": "file",
                                          "path": str(missing), "format": "yaml",
                                          "key": "database", "value_format": "json"})
    verified = run_verify(lab, tmp_path, {**verify_setup, "pgauth_verify_since": "10m"}, host)
    assert verified.returncode != 0, "verify passed with a failed login in the log"
    report = tmp_path / "reports" / host / "verify.md"
    markdown = report.read_text()
    assert "details" in markdown and "onerror" in markdown, "the hostile text did not get there"
    assert_inert(markdown)


# -- (d) health URLs with credentials ------------------------------------------------------------

class HealthServer:
    """A tiny application health endpoint on loopback: answers 200, records each request's
    path and Authorization header."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((self.path, self.headers.get("Authorization")))
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HealthServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_health_url_credentials_stay_out_of_the_report_and_the_output(lab, tmp_path,
                                                                      verify_setup):
    """pgauth_health_urls with user:password@ and ?token=: the checks, verify.json/.md and
    the -vvv output (AWX job events) show neither, and the application still gets both."""
    host = "db1"
    with HealthServer() as server:
        urls = [f"http://monitor:{HEALTH_PASSWORD}@127.0.0.1:{server.port}/health",
                f"http://127.0.0.1:{server.port}/ready?token={HEALTH_TOKEN}&verbose=1"]
        verified = run_verify(lab, tmp_path, {**verify_setup, "pgauth_health_urls": urls},
                              host, "-vvv")
    assert verified.returncode == 0, verified.stdout[-4000:]
    folder = tmp_path / "reports" / host
    texts = {"the -vvv output": verified.stdout + verified.stderr,
             "verify.json": (folder / "verify.json").read_text(),
             "verify.md": (folder / "verify.md").read_text()}
    basic = base64.b64encode(f"monitor:{HEALTH_PASSWORD}".encode()).decode()
    for where, text in texts.items():
        for secret in (HEALTH_PASSWORD, HEALTH_TOKEN, basic, *verify_setup["_secrets"]):
            assert secret not in text, f"a health URL's credential appears in {where}"
    checks = {check["check"]: check for check in json.loads(texts["verify.json"])["checks"]}
    shown = [f"health:http://***@127.0.0.1:{server.port}/health",
             f"health:http://127.0.0.1:{server.port}/ready?token=***&verbose=1"]
    assert all(checks.get(name, {}).get("ok") for name in shown), sorted(checks)
    # the credentials were still used: the basic-auth header, and the token in the query
    assert ("/health", f"Basic {basic}") in server.seen, server.seen
    assert (f"/ready?token={HEALTH_TOKEN}&verbose=1", None) in server.seen, server.seen
