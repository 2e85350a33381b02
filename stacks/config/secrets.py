"""Secret config (backupTarget, dumpS3): models whose messages never echo a value, and parse_secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stacks.config.errors import PROJECT, ConfigError, FieldError, such_as
from stacks.config.formats import Model
from stacks.config.runbooks import BACKUP_TARGET_SECRET
from stacks.config.schema import Settings

# ---------------------------------------------------------------- secret config

# Keys Longhorn reads from the backup target's Secret (Longhorn docs, "Set up backup target";
# not in the reference files, which hold the chart and the CRDs).
LONGHORN_CREDENTIAL_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINTS",
    "AWS_CERT",
    "VIRTUAL_HOSTED_STYLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "CIFS_USERNAME",
    "CIFS_PASSWORD",
    "AZBLOB_ACCOUNT_NAME",
    "AZBLOB_ACCOUNT_KEY",
    "AZBLOB_ENDPOINT",
    "AZBLOB_CERT",
)


# A `secure:` value of a stack file where the value cannot be read: the offline render and the tests have no
# passphrase (tools/mock_run.py puts this in its place). Under the CLI the program gets the decrypted value
# instead. It stands for "set, value unknown here": every string field of the secret models accepts it (no
# colon, so a URL parser reads it as a host), and the checks that need the real value skip it.
SECRET_UNKNOWN = "<secret set in the stack file>"


def _unknown_passes(value: Any, handler: Callable[[Any], Any]) -> Any:
    """A string field's validation, skipped for SECRET_UNKNOWN (a dict field still refuses it, as it refuses
    the JSON text the CLI hands over for a `secure:` object)."""
    return value if value == SECRET_UNKNOWN else handler(value)


class BackupTargetSecret(Model):
    """pgstack:backupTarget (secret): the cluster's Longhorn backup target and its credentials."""

    url: str = Field(pattern=r"^(s3|nfs|cifs|azblob)://\S+$")
    """Longhorn's backup target URL: s3://bucket@region/prefix, nfs://, cifs:// or azblob://."""
    credentials: dict[str, str] = Field(default_factory=dict)
    """The keys Longhorn reads from the target's Secret; an s3:// target needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    _url_unknown = field_validator("url", mode="wrap")(_unknown_passes)

    @model_validator(mode="after")
    def _known_keys(self) -> BackupTargetSecret:
        unknown = sorted(set(self.credentials) - set(LONGHORN_CREDENTIAL_KEYS))
        if unknown:
            raise FieldError(
                f"credentials.{unknown[0]}", "(hidden)", f"one of the keys Longhorn reads: {', '.join(LONGHORN_CREDENTIAL_KEYS)}"
            )
        if self.url.startswith("s3://") and not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(self.credentials):
            raise FieldError("credentials", "(hidden)", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for an s3:// target")
        return self


class DumpS3Secret(Model):
    """pgstack:dumpS3 (secret): where rclone copies the dumps (backup.dumps.s3Remote names the bucket)."""

    provider: str = Field("AWS", pattern=r"^[A-Za-z0-9]+$")
    """rclone's S3 provider: AWS, Minio, Ceph, Cloudflare, ..."""
    accessKeyId: str = Field(min_length=1)
    """S3 access key id."""
    secretAccessKey: str = Field(min_length=1)
    """S3 secret access key."""
    endpoint: str | None = Field(None, pattern=r"^(https?://)?[A-Za-z0-9.-]+(:\d+)?/?$")
    """S3 endpoint, a host with an optional http:// or https:// and :port, no path; null: the provider's default."""
    region: str | None = Field(None, pattern=r"^[a-z0-9-]+$")
    """S3 region, lowercase letters, digits and '-' (us-east-1); null: the provider's default."""
    _unknown = field_validator("provider", "accessKeyId", "secretAccessKey", "endpoint", "region", mode="wrap")(_unknown_passes)


class Secrets(Model):
    """Secret config: plain here, wrapped in pulumi.Output.secret wherever it leaves the program."""

    backupTarget: BackupTargetSecret | None = None
    """The cluster's Longhorn backup target and its credentials, set on the stack that installs Longhorn."""
    dumpS3: DumpS3Secret | None = None
    """The S3 account rclone copies the dumps and archives WAL with: set when backup.dumps.s3Remote or backup.wal is."""


SECRET_KEYS: tuple[str, ...] = tuple(Secrets.model_fields)
SECRET_MODELS: dict[str, type[Model]] = {"backupTarget": BackupTargetSecret, "dumpS3": DumpS3Secret}


def unknown_object(model: type[Model]) -> dict[str, str]:
    """A secret object set as a whole (`pulumi config set --secret <key> '<json>'`) and not readable here:
    its required fields unknown, the others at their defaults."""
    return {name: SECRET_UNKNOWN for name, f in model.model_fields.items() if f.is_required()}


# What each secret field's pattern accepts, in words: a secret's message shows neither its value nor a regex.
SECRET_FORMS: dict[tuple[str, ...], str] = {
    ("backupTarget", "url"): "s3://, nfs://, cifs:// or azblob:// and the target (Longhorn's backup target URL), "
    + such_as("s3://backups@us-east-1/", "nfs://nfs.example.com:/backups"),
    ("dumpS3", "provider"): f"rclone's S3 provider name, letters and digits, {such_as('AWS', 'Minio')}",
    ("dumpS3", "endpoint"): "a host with an optional http:// or https:// and :port, no path, "
    + such_as("https://s3.example.com", "minio.local:9000"),
    ("dumpS3", "region"): f"lowercase letters, digits and '-', {such_as('us-east-1')}",
}


def parse_secrets(raw: dict[str, Any], settings: Settings) -> Secrets:
    """Validate secret config without ever echoing a value: errors name the key and the form only."""
    try:
        secrets = Secrets.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            key = ".".join([*map(str, err["loc"]), *([ctx_error.key] if isinstance(ctx_error, FieldError) and ctx_error.key else [])])
            accepted = ctx_error.accepted if isinstance(ctx_error, FieldError) else err["msg"].replace("Input should be ", "")
            accepted = SECRET_FORMS.get(tuple(map(str, err["loc"])), accepted) if err["type"] == "string_pattern_mismatch" else accepted
            lines.append(f"{PROJECT}:{key}: invalid (value hidden: secret); expected {accepted}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    secret_entry = f"secret/{settings.longhorn.namespace}/{BACKUP_TARGET_SECRET}"
    if secrets.backupTarget is None and secret_entry in settings.adopt:
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:adopt: got {json.dumps(secret_entry)}; expected it only with "
            f"{PROJECT}:backupTarget set (without a target this stack registers no such Secret)"
        )
    if secrets.backupTarget is not None and not settings.longhorn.install:
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:backupTarget: set on a stack that does not install Longhorn; expected it "
            "on the stack with longhorn.install true (the backup target is the cluster's)"
        )
    dumps, wal = settings.backup.dumps, settings.backup.wal
    wants_s3 = dumps is not None and dumps.s3Remote is not None
    # The WAL archive uses the same account; without it archiving stays off (the program warns, and the policy
    # pack's production-wal-archiving refuses a production stack without archiving).
    wal_s3 = wal is not None and wal.s3Remote is not None
    if (wants_s3 and secrets.dumpS3 is None) or (not (wants_s3 or wal_s3) and secrets.dumpS3 is not None):
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:dumpS3: {'missing' if wants_s3 else 'set'} while backup.dumps.s3Remote is "
            f"{'set' if wants_s3 else 'unset'}{'' if wants_s3 else ' and backup.wal is off'}; expected both or neither"
        )
    return secrets
