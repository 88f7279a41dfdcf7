"""moto_server with the lab's corrections, so the stand-in behaves like AWS.

Secrets Manager: moto's UpdateSecretVersionStage moves the AWSCURRENT label
but GetSecretValue without a stage keeps returning the old version (it reads
an internal default that only PutSecretValue/RotateSecret update).  AWS
returns the version that carries AWSCURRENT, and rotations depend on that.
"""
from __future__ import annotations

import sys

from moto import server
from moto.secretsmanager.models import SecretsManagerBackend

_original_update_stage = SecretsManagerBackend.update_secret_version_stage


def _update_stage_and_default(self, secret_id, version_stage, remove_from_version_id,
                              move_to_version_id):
    result = _original_update_stage(self, secret_id, version_stage, remove_from_version_id,
                                    move_to_version_id)
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].set_default_version_id(move_to_version_id)
    return result


SecretsManagerBackend.update_secret_version_stage = _update_stage_and_default

if __name__ == "__main__":
    server.main(sys.argv[1:])
