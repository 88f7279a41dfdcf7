"""The reliability harness runs on the lab, with the lab suite's fixtures and helpers, and
prints its tally at the end: `N faults injected, N converged, N credentials lost`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))

from labfixtures import admin, iam_lab, lab  # noqa: E402
from tally import FAULTS, MESSAGES, RESULTS, RESULTS_FILE, markdown, summary_lines  # noqa: E402

__all__ = ["admin", "iam_lab", "lab", "pytest_terminal_summary"]


def pytest_terminal_summary(terminalreporter) -> None:
    if MESSAGES or FAULTS:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "reliability.md").write_text(markdown())
    if MESSAGES:
        (RESULTS / "bad_input.json").write_text(json.dumps(MESSAGES, indent=1) + "\n")
    if not FAULTS:
        return
    terminalreporter.section("fault injection")
    for line in summary_lines():
        terminalreporter.write_line(line)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(FAULTS, indent=1) + "\n")
