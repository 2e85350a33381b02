"""The cnpg: block and postgres.engine / postgres.migrateFrom: defaults, forms, and their refusals by key."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError, ignored_settings_warnings, parse_settings

SOURCE = {"host": "postgres-0.postgres-hl.old.svc.cluster.local", "passwordSecret": "old-credentials"}


def test_defaults() -> None:
    settings = parse_settings({}, "dev")
    assert settings.postgres.engine == "statefulset" and settings.postgres.migrateFrom is None
    assert (settings.cnpg.install, settings.cnpg.chartVersion, settings.cnpg.namespace) == (True, "0.29.0", "cnpg-system")
    source = parse_settings({"postgres": {"engine": "cloudnative-pg", "migrateFrom": SOURCE}}, "dev").postgres.migrateFrom
    assert source is not None
    assert (source.port, source.user, source.passwordKey, source.sslMode) == (5432, "replicator", "replication-password", "prefer")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"postgres": {"engine": "cnpg"}}, "postgres.engine"),
        ({"cnpg": {"chartVersion": "v0.29.0"}}, "cnpg.chartVersion"),
        ({"cnpg": {"namespace": "CNPG"}}, "cnpg.namespace"),
        ({"cnpg": {"instal": True}}, "cnpg.instal"),
        ({"postgres": {"engine": "cloudnative-pg", "migrateFrom": {**SOURCE, "sslMode": "disable"}}}, "postgres.migrateFrom.sslMode"),
        ({"postgres": {"engine": "cloudnative-pg", "migrateFrom": {"host": SOURCE["host"]}}}, "postgres.migrateFrom.passwordSecret"),
        ({"postgres": {"engine": "cloudnative-pg", "migrateFrom": {**SOURCE, "passwordKey": "a/b"}}}, "postgres.migrateFrom.passwordKey"),
    ],
)
def test_refused_under_its_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"pgstack:{key}: "):
        parse_settings(raw, "dev")


def test_a_cnpg_block_on_a_statefulset_stack_warns() -> None:
    assert ignored_settings_warnings(parse_settings({}, "dev")) == []
    assert ignored_settings_warnings(parse_settings({"postgres": {"engine": "cloudnative-pg"}, "cnpg": {"install": False}}, "dev")) == []
    assert ignored_settings_warnings(parse_settings({"cnpg": {"install": True, "namespace": "cnpg-system"}}, "dev")) == []
    [warning] = ignored_settings_warnings(parse_settings({"cnpg": {"install": False}}, "dev"))
    assert warning == "pgstack:cnpg: never applied while postgres.engine is statefulset; remove it here"
