"""The tls: block (stacks/config/tls.py): defaults, the one rule only the config knows, and the mapping onto
TlsArgs (stacks/args.py; the Args' own rules through the config: tests/stacks/test_config_contract.py)."""

from __future__ import annotations

from typing import Any

import pytest

from components.postgres_tls_args import IssuerRef, TlsArgs
from stacks.args import dump_args, postgres_args, tls_args
from stacks.config import ConfigError, parse_settings


def _settings(tls: dict[str, Any], **other: Any) -> Any:
    return parse_settings({"tls": tls, **other})


def test_off_by_default_and_the_defaults_are_the_components() -> None:
    settings = parse_settings({})
    assert not settings.tls.enabled and tls_args(settings) is None
    assert postgres_args(settings, "postgres", "fast").tls is None
    on = tls_args(_settings({"enabled": True}))
    assert on == TlsArgs() and on.source == "generated"


@pytest.mark.parametrize(
    ("tls", "line"),
    [
        ({"required": True}, "pgstack:tls.required: got true; expected false while tls.enabled is false"),
        ({"enabled": True, "minProtocol": "TLSv1.1"}, "pgstack:tls.minProtocol: got \"TLSv1.1\"; expected 'TLSv1.2' or 'TLSv1.3'"),
        ({"enabled": True, "validityDays": 0}, "pgstack:tls.validityDays: got 0;"),
        ({"enabled": True, "certManager": {"issuerRef": {"name": "ca", "kind": "Vault"}}}, "pgstack:tls.certManager.issuerRef.kind"),
        ({"enabled": True, "certManager": {"issuerRef": {"name": "ca", "group": "x.io"}}}, "pgstack:tls.certManager.issuerRef.group"),
        ({"enabled": True, "existingSecret": "Not_A_Name"}, 'pgstack:tls.existingSecret: got "Not_A_Name"'),
    ],
)
def test_bad_tls_settings_are_refused_under_their_key(tls: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings(tls)
    assert line in str(refused.value)


def test_the_sources_map_onto_the_args_and_the_dump_job() -> None:
    dumps = {"backup": {"dumps": {}}}
    issuer = {"issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}
    settings = _settings({"enabled": True, "required": True, "minProtocol": "TLSv1.3", "certManager": issuer}, **dumps)
    args = tls_args(settings)
    assert args is not None and args.source == "cert-manager" and args.required and args.min_protocol == "TLSv1.3"
    assert args.issuer == IssuerRef("internal-ca", "ClusterIssuer") and args.secret_name("postgres") == "postgres-tls"
    assert dump_args(settings, "postgres", ["h"], {}).tls_secret == "postgres-tls"
    existing = _settings({"enabled": True, "existingSecret": "wildcard-tls"}, **dumps)
    assert dump_args(existing, "postgres", ["h"], {}).tls_secret == "wildcard-tls"
    assert dump_args(_settings({}, **dumps), "postgres", ["h"], {}).tls_secret is None
    days = tls_args(_settings({"enabled": True, "validityDays": 90, "renewBeforeDays": 7, "caValidityDays": 400}))
    assert days is not None and (days.validity_days, days.renew_before_days, days.ca_validity_days) == (90, 7, 400)
