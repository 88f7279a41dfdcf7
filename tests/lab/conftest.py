"""The lab's fixtures, shared with tests/reliability (see labfixtures.py)."""
from labfixtures import admin, iam_lab, lab, rds, secretsmanager, temp_role, vault

__all__ = ["admin", "iam_lab", "lab", "rds", "secretsmanager", "temp_role", "vault"]
