"""What the fault-injection tests found, one record per fault, for the closing tally."""
from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / ".build" / "test-results"
RESULTS_FILE = RESULTS / "faults.json"
FAULTS: list[dict] = []
# bad-input case -> the message the run failed with, for docs/reliability.md
MESSAGES: dict[str, str] = {}


def record(fault: dict) -> None:
    FAULTS.append(fault)


def summary_lines() -> list[str]:
    lines = [f"{'fault':60} {'broken run':10} {'re-run':10} {'samples':>7} {'lost':>4}"]
    for fault in FAULTS:
        broken = "ok" if fault["broken_rc"] == 0 else "failed"
        lines.append(f"{fault['fault']:60} {broken:10} {fault['rerun_outcome'] or 'FAILED':10} "
                     f"{fault['samples']:>7} {fault['lost_samples']:>4}")
    converged = sum(1 for fault in FAULTS if fault["converged"])
    lost = sum(1 for fault in FAULTS if fault["lost"])
    lines.append(f"{len(FAULTS)} faults injected, {converged} converged, {lost} credentials lost")
    return lines
