#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: report
short_description: Write a runbook's report (JSON and Markdown) and hand its verdict to AWX
version_added: 0.1.0
description:
  - Runs on the controller (an action plugin; no module process). Writes
    C(<dir>/<host directory>/<runbook>.json) and C(<runbook>.md), returns a short summary to print,
    and attaches the verdict and finding ids to the play stats (as M(ansible.builtin.set_stats)
    would), so AWX workflow nodes can branch on them.
  - The report is the JSON of DESIGN section 4, C({runbook, target, generated_at, verdict,
    findings}), plus the keys of O(data). It must never hold a secret; the runbooks pass
    only what the modules return, and the modules return no secret.
  - Reports are written in check mode too. They are the runbook's output, not a change to
    the systems it looks at.
  - The host directory's name is P(credops.pgauth.report_host_dir#filter) of the host name.
    That is the name itself when it is made only of lower-case letters, digits and C(_),
    C(.), C(@), C(:) and C(-) (and does not start with C(.) or C(-), holds no C(..), is at
    most 128 characters long and does not end like a hashed name), otherwise a readable form
    followed by C(-) and 8 hexadecimal digits of the SHA-256 of the exact name (C(db 1)
    becomes C(db_1-4e0107b2)). No two host names share a directory, and a name is never a
    path.
  - The host directory is refused when it is a symlink or not a directory (the runbooks run
    as root); files are written to a new file and renamed over the old one, never through a
    symlink. O(dir) itself may be a symlink.
  - In the Markdown, text that came from logs, stores, servers or the inventory is escaped,
    or set in code spans and fences longer than any run of backticks in it, and kept on one
    line, so it cannot close a code block or add HTML or links.
options:
  runbook:
    description: The runbook the report is for; also the files' base name.
    type: str
    required: true
    choices: [diagnose, rotate, verify, remediate]
  target:
    description: The C(pgauth_target) the runbook ran against.
    type: dict
    required: true
  verdict:
    description: The overall outcome.
    type: str
    required: true
    choices: [healthy, degraded, broken]
  findings:
    description:
      - Findings, as the P(credops.pgauth.findings#filter) filter returns them.
    type: list
    elements: dict
    default: []
  data:
    description: More top-level keys for the report (steps, checks, timings).
    type: dict
    default: {}
  dir:
    description: The report directory; each host gets a subdirectory.
    type: path
    default: ./pgauth-reports
  metrics_file:
    description:
      - Also write the report as metrics in the node_exporter textfile-collector format
        (docs/metrics.md), atomically and world-readable (no secret is in it).
      - A directory (one that exists, or a path ending in C(/)) gets one file per host and
        runbook, C(pgauth_<host>_<runbook>.prom); a file name may contain C({host}) and
        C({runbook}). Point node_exporter's C(--collector.textfile.directory) at it.
    type: path
  host:
    description:
      - The host the report is for; its subdirectory's name is made from it as described
        above. Defaults to C(inventory_hostname).
    type: str
extends_documentation_fragment:
  - credops.pgauth.attributes
attributes:
  check_mode:
    support: full
    details: Writes the report in check mode as well; it changes nothing else.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action:
    support: full
    description: Runs on the controller.
    details: The report directory is on the controller.
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Write the diagnose report
  credops.pgauth.report:
    runbook: diagnose
    target: "{{ pgauth_target }}"
    verdict: "{{ findings | credops.pgauth.verdict }}"
    findings: "{{ findings }}"
    dir: "{{ pgauth_report_dir }}"
  register: diagnose_report

- name: Print the summary
  ansible.builtin.debug:
    msg: "{{ diagnose_report.summary }}"
"""

RETURN = r"""
paths:
  description: The JSON and Markdown files written.
  returned: success
  type: list
  elements: str
report:
  description: The report, as written to the JSON file.
  returned: success
  type: dict
verdict:
  description: The verdict.
  returned: success
  type: str
summary:
  description: Lines to print at the end of the run, the verdict and each finding's fix.
  returned: success
  type: list
  elements: str
"""
