"""What the fault-injection tests found, one record per fault, for the closing tally."""
from __future__ import annotations

import re
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
    # a server fault at a boundary is its own state; a kill point's state is the point's
    states = {(fault["strategy"], fault.get("state"), fault["fault"].split(" after ")[0])
              for fault in FAULTS}
    lines.append(f"{len(FAULTS)} faults injected, {converged} converged, {lost} credentials lost, "
                 f"{len(states)} distinct states")
    return lines


def _message(text: str) -> str:
    """The readable part of a failed task's output: its msg, or its first argument error."""
    errors = re.search(r'"argument_errors": \[(.*?)\]', text)
    if errors:
        return "; ".join(item.replace('\\"', '"') for item in
                         re.findall(r'"((?:[^"\\]|\\.)*)"', errors.group(1)))
    found = re.search(r'"msg": "((?:[^"\\]|\\.)*)"', text)
    return found.group(1).replace('\\"', '"') if found else text


def markdown() -> str:
    """The tables docs/reliability.md shows, from this session's results."""
    lines = []
    if FAULTS:
        lines += ["| fault | broken run | re-run | samples: held / unknown / lost | converged |",
                  "|---|---|---|---|---|"]
        for fault in FAULTS:
            broken = "finished" if fault["broken_rc"] == 0 else "failed"
            lines.append(f"| {fault['fault']} | {broken} | {fault['rerun_outcome']} | "
                         f"{fault['held_samples']} / {fault['unknown_samples']} / "
                         f"{fault['lost_samples']} | {'yes' if fault['converged'] else 'NO'} |")
        lines += ["", summary_lines()[-1], ""]
    if MESSAGES:
        lines += ["| case | the error |", "|---|---|"]
        for case, text in sorted(MESSAGES.items()):
            message = _message(text).replace("|", "\\|")
            lines.append(f"| `{case}` | {message[:220]} |")
    return "\n".join(lines) + "\n"
