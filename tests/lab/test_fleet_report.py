"""The fleet report (issue 21) for a 10-host diagnose with mixed verdicts: index.md parses as
Markdown with a row per host, index.html holds no secret, and headless Chromium renders it
with the broken hosts on top and the fix commands in the page."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
import yaml
from labfixtures import lab_client, scenario
from runbooks import BIN, BUILD, assert_no_leak, lab_secrets

CHROMIUM = shutil.which("chromium")
COLORS = {"broken": (0xF4, 0xB6, 0xBC), "degraded": (0xFD, 0xE8, 0xA6),
          "healthy": (0xC8, 0xE6, 0xD0)}


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA PNG, with zlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(
        width * channels)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for x in range(stride):
            left = cur[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                cur[x] = (cur[x] + left) & 0xFF
            elif kind == 2:
                cur[x] = (cur[x] + up) & 0xFF
            elif kind == 3:
                cur[x] = (cur[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                cur[x] = (cur[x] + pred) & 0xFF
        rows.append(bytes(b for i, b in enumerate(cur) if i % channels < 3))
        previous = cur
    return width, height, rows


def first_row_with(rows: list[bytes], color: tuple[int, int, int]) -> int | None:
    needle = bytes(color) * 20  # a run of pixels: a row background, not an antialiased edge
    return next((y for y, row in enumerate(rows) if needle in row), None)


def inventory(meta: dict, tmp_path: Path, lab: dict) -> dict:
    """10 hosts on the lab: 5 healthy, 2 degraded (the password also in a plaintext ECS
    variable), 3 broken (a config file with a stale password)."""
    target, good = meta["target"], meta["stores"][0]
    password = json.loads(lab_client(lab, "secretsmanager").get_secret_value(
        SecretId=good["secret_id"])["SecretString"])["password"]
    family = f"fleet-{os.getpid()}"
    lab_client(lab, "ecs").register_task_definition(family=family, containerDefinitions=[
        {"name": "api", "image": "x", "memory": 64,
         "environment": [{"name": "DB_PASSWORD", "value": password}]}])
    hosts = {}
    for number in range(1, 11):
        name = f"db-{number:02d}"
        stores = [good]
        if number in (3, 6, 9):
            env = tmp_path / f"{name}.env"
            env.write_text("DB_PASSWORD=stale-" + "x" * 20 + "\n")
            env.chmod(0o600)
            stores = [{"name": "app-env", "type": "file", "path": str(env), "format": "dotenv",
                       "key": "DB_PASSWORD", "value_format": "password"}]
        elif number in (4, 8):
            stores = [good, {"name": "ecs-api", "type": "aws_ecs_task_definition",
                             "family": family, "container": "api", "variable": "DB_PASSWORD"}]
        hosts[name] = {"pgauth_target": target, "pgauth_stores": stores}
    return {"all": {"children": {"pgauth_targets": {"hosts": hosts}}}}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium (Debian) missing")
def test_a_ten_host_fleet_report(lab, tmp_path):
    reports = tmp_path / "reports"
    with scenario("healthy") as meta:
        (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory(meta, tmp_path, lab)))
        (tmp_path / "vars.yml").write_text(yaml.safe_dump({
            "pgauth_admin": {"user": lab["PGAUTH_LAB_ADMIN_USER"],
                             "password": lab["PGAUTH_LAB_ADMIN_PASSWORD"]},
            "pgauth_report_dir": str(reports)}))
        run = subprocess.run(
            [str(BIN / "ansible-playbook"), "credops.pgauth.diagnose", "-i",
             str(tmp_path / "inventory.yml"), "-e", f"@{tmp_path / 'vars.yml'}", "--forks", "10"],
            capture_output=True, text=True, check=False, cwd=tmp_path,
            env={**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD),
                 "ANSIBLE_NOCOLOR": "1"})
        secrets = lab_secrets(lab)
    assert run.returncode == 0, run.stdout[-3000:]
    page, markdown = (reports / "index.html").read_text(), (reports / "index.md").read_text()
    assert_no_leak({"index.html": page, "index.md": markdown}, secrets)

    from markdown_it import MarkdownIt
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    cells = [t.content for t in tokens if t.type == "inline"]
    verdicts = [cell for cell in cells if cell in ("**broken**", "**degraded**", "**healthy**")]
    assert verdicts == ["**broken**"] * 3 + ["**degraded**"] * 2 + ["**healthy**"] * 5
    assert sum(1 for t in tokens if t.type == "tr_open") == 11  # header + one per host

    profile = tmp_path / "chromium-profile"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1100"]
    url = (reports / "index.html").as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    order = [line.split('class="', 1)[1].split('"', 1)[0] for line in dom.split("<tr")[2:]]
    assert order == ["broken"] * 3 + ["degraded"] * 2 + ["healthy"] * 5, order
    assert dom.count("ansible-playbook credops.pgauth.rotate") >= 3  # the broken hosts' fix
    shot = tmp_path / "fleet.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120,
                   check=True)
    _width, _height, rows = png_pixels(shot.read_bytes())
    tops = {verdict: first_row_with(rows, color) for verdict, color in COLORS.items()}
    assert None not in tops.values(), tops  # each kind of row is on screen
    assert tops["broken"] < tops["degraded"] < tops["healthy"], tops
    if os.environ.get("PGAUTH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["PGAUTH_KEEP_SCREENSHOT"])
