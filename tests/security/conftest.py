"""The security suite: each test performs one attack from the security review for real, on
the lab where it needs a server, with the lab suite's fixtures and helpers."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))

from labfixtures import admin, iam_lab, lab, temp_role, vault  # noqa: E402

__all__ = ["admin", "iam_lab", "lab", "temp_role", "vault"]
