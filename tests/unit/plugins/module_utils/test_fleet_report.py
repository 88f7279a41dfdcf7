"""fleet_report: hostile values are escaped in both pages, rows are ordered by verdict, and
broken or oversized reports are listed, not read."""
from __future__ import annotations

import json

from markdown_it import MarkdownIt

from ansible_collections.credops.pgauth.plugins.module_utils.fleet_report import (
    MAX_REPORT_BYTES,
    collect,
    render_html,
    render_md,
)

HOSTILE = '<script>alert(1)</script>|`x`**b**'


def report(verdict: str, **finding) -> dict:
    return {"verdict": verdict, "generated_at": "2026-12-01T00:00:00+00:00",
            "target": {"role": HOSTILE, "host": "db", "dbname": "app"},
            "findings": [finding] if finding else []}


def write(base, host: str, text: str) -> None:
    (base / host).mkdir()
    (base / host / "diagnose.json").write_text(text)


def test_order_escaping_and_bad_reports(tmp_path):
    write(tmp_path, "a-healthy", json.dumps(report("healthy")))
    write(tmp_path, "b-broken", json.dumps(report("broken", id="store_password_mismatch",
                                                  title=HOSTILE, fix={"command": HOSTILE})))
    write(tmp_path, "c-degraded", json.dumps(report("degraded", id="x",
                                                    fix={"manual": HOSTILE})))
    write(tmp_path, "d-garbage", "{not json")
    write(tmp_path, "e-huge", " " * (MAX_REPORT_BYTES + 10))
    (tmp_path / "f-link").symlink_to(tmp_path / "b-broken")
    rows = collect(str(tmp_path), "diagnose")
    assert [r["host"] for r in rows] == ["d-garbage", "e-huge", "b-broken", "c-degraded",
                                         "a-healthy"]
    assert {r["verdict"] for r in rows[:2]} == {"unknown"}
    page = render_html(rows, "diagnose", "now")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert page.count("<script>") == 1  # the page's own sorting script only
    markdown = render_md(rows, "diagnose", "now")
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script>" not in html
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    assert sum(1 for t in tokens if t.type == "tr_open") == 6  # the | did not split a row
