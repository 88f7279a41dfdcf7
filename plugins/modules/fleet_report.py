#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Write one page over every host's report - index.html and index.md
version_added: 0.2.0
description:
  - Runs on the controller (an action plugin; no module process). Reads
    C(<dir>/<host directory>/<runbook>.json) of every host directory in O(dir) and writes
    C(<dir>/index.html) and C(<dir>/index.md) - a row per host with its verdict, the first
    finding, the command that fixes it, when the runbook ran and links to the host's
    reports, broken hosts first.
  - The HTML needs no JavaScript (the rows are sorted by verdict, then host); a few lines of
    inline script let a reader sort by another column. A Content-Security-Policy allows
    nothing else. Every value is escaped, and comes from a report, which holds no secret.
  - The diagnose and verify roles run it once per play (C(run_once)), after every host wrote
    its report, when C(pgauth_fleet_report) is true (the default); with the linear strategy
    that is after all of them.
  - Host directories that are symlinks, and reports that are not valid JSON or larger than
    4 MiB, are not read (the latter are listed as C(unknown)).
options:
  dir:
    description: The report directory (C(pgauth_report_dir)).
    type: path
    default: ./pgauth-reports
  runbook:
    description: Whose reports to list.
    type: str
    choices: [diagnose, verify]
    default: diagnose
extends_documentation_fragment:
  - credops.pgauth.attributes
attributes:
  check_mode:
    support: full
    details: The index is written in check mode too, like the reports.
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
- name: One page over the fleet
  credops.pgauth.fleet_report:
    dir: "{{ pgauth_report_dir }}"
    runbook: diagnose
  run_once: true
"""

RETURN = r"""
paths:
  description: The index files written.
  returned: success
  type: list
  elements: str
hosts:
  description: How many host reports are listed.
  returned: success
  type: int
verdicts:
  description: Hosts per verdict.
  returned: success
  type: dict
"""
