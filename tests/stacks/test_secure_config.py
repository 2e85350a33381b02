"""Secret config in the form the Pulumi CLI writes it: `secure:` values in the stack file.

`pulumi config set --secret --path backupTarget.url ...` stores `url: {secure: v1:...}` inside the object, and
`pulumi config set --secret dumpS3 '<json>'` stores the whole key as one `secure:` value. Offline (no passphrase)
each is "set, value unknown here": the render and the tests run with SECRET_UNKNOWN in its place, as a secret.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from stacks.config import SECRET_UNKNOWN
from tests.conftest import program_run
from tools.mock_run import plain
from tools.render import render
from tools.stack_files import ROOT, secret_config_keys, stack_config

# The passphrase provider's ciphertext shape (v1:<nonce>:<ciphertext>, base64), as `pulumi config set --secret` writes it.
CIPHER = "v1:4bUEBPdf1J+0Bcv9:g6yFdcOPOeyvZKZ4Ycq1Nx8uUW5nEvKuGQ=="
# Appended to prod's stack file: the nested --path layout for the backup target (the README's command), a
# top-level secure value for dumpS3 (with backup.dumps.s3Remote, which needs it), and the salt the passphrase
# provider writes at the top of the file.
BACKUP_TARGET_SECURE = f"""\
  pgstack:backupTarget:
    url:
      secure: {CIPHER}
    credentials:
      AWS_ACCESS_KEY_ID:
        secure: {CIPHER}
      AWS_SECRET_ACCESS_KEY:
        secure: {CIPHER}
"""
DUMP_S3_SECURE = f"""\
  pgstack:dumpS3:
    secure: {CIPHER}
"""
SALT = "encryptionsalt: v1:qwbDGz3Mt2Q=:v1:9TQ/LbqhEjGHm/2Y:ZVpM4yRgGQl+5dG0A3d7xNs0u7c5qA==\n"
RELEASE = "kubernetes:helm.sh/v3:Release"
RECURRING_JOB = "kubernetes:longhorn.io/v1beta2:RecurringJob"


def secure_stack_file(prod_text: str, dump_s3: bool = True) -> str:
    """prod's stack file with the backup target set as secrets, and the dumps copied to S3 with secret credentials."""
    if not dump_s3:
        return prod_text + BACKUP_TARGET_SECURE + SALT
    text = prod_text.replace("      storageSize: 40Gi\n", "      storageSize: 40Gi\n      s3Remote: pg-dumps/prod\n")
    assert "s3Remote" in text, "Pulumi.prod.yaml changed: place s3Remote under backup.dumps again"
    return text + BACKUP_TARGET_SECURE + DUMP_S3_SECURE + SALT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.sec.yaml").write_text(secure_stack_file((ROOT / "Pulumi.prod.yaml").read_text()))
    return tmp_path


def test_secure_values_read_as_set_and_secret(project: Path) -> None:
    config = stack_config("sec", project)
    assert config["pgstack:backupTarget"] == {
        "url": SECRET_UNKNOWN,
        "credentials": {"AWS_ACCESS_KEY_ID": SECRET_UNKNOWN, "AWS_SECRET_ACCESS_KEY": SECRET_UNKNOWN},
    }
    assert config["pgstack:dumpS3"] == SECRET_UNKNOWN
    assert secret_config_keys(config) == ["pgstack:backupTarget", "pgstack:dumpS3"]

    run = program_run(config, "sec")
    # The target counts as set: the nightly volume backup is scheduled, and its URL stays a secret.
    assert sorted(plain(j.inputs)["spec"]["task"] for j in run.of_type(RECURRING_JOB)) == ["backup", "snapshot"]
    values = run.one(RELEASE, "longhorn-release").inputs["values"]
    assert rpc.is_rpc_secret(values)
    assert plain(values)["defaultBackupStore"]["backupTarget"] == SECRET_UNKNOWN
    # dumpS3 as a whole: the dumps' S3 Secret exists, its content secret.
    (s3,) = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.name == "dumps-s3"]
    assert rpc.is_rpc_secret(s3.inputs["stringData"])
    assert CIPHER not in json.dumps([plain(r.inputs) for r in run.resources], default=str)


def test_the_render_renders_a_stack_with_secure_values(project: Path, tmp_path: Path) -> None:
    written = render("sec", tmp_path / "out", project)
    names = {p.name for p in written}
    assert {"recurringjob-longhorn-system-longhorn-postgres-backup.yaml", "secret-longhorn-system-longhorn-backup-target.yaml"} <= names
    assert not [p for p in written if CIPHER in p.read_text()]
