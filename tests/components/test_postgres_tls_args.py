"""TlsArgs and the certificate's names (components/postgres_tls_args.py): pure, no Pulumi run."""

from __future__ import annotations

import pytest

from components.postgres_tls_args import IssuerRef, TlsArgs, server_names, service_hosts
from components.validation import ArgsError


def test_the_names_are_every_service_in_every_form_and_every_pod() -> None:
    assert service_hosts("pg-ro", "db", "example.org") == ["pg-ro", "pg-ro.db", "pg-ro.db.svc", "pg-ro.db.svc.example.org"]
    names = server_names("pg", "db")
    assert len(names) == len(set(names)) == 13
    assert names[:4] == ["pg", "pg.db", "pg.db.svc", "pg.db.svc.cluster.local"]
    assert "pg-hl.db.svc.cluster.local" in names and "pg-ro.db" in names
    # One wildcard label covers each pod's name through the headless Service (standbys' primary_conninfo).
    assert names[-1] == "*.pg-hl.db.svc.cluster.local"


def test_the_source_and_the_secret_the_pods_mount() -> None:
    assert (TlsArgs().source, TlsArgs().secret_name("pg")) == ("generated", "pg-tls")
    assert TlsArgs(issuer=IssuerRef("ca")).source == "cert-manager"
    assert TlsArgs(issuer=IssuerRef("ca")).secret_name("pg") == "pg-tls"
    assert (TlsArgs(existing_secret="mine").source, TlsArgs(existing_secret="mine").secret_name("pg")) == ("existing", "mine")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: TlsArgs(validity_days=30, renew_before_days=30), "renew_before_days"),
        (lambda: TlsArgs(validity_days=0), "validity_days"),
        (lambda: TlsArgs(renew_before_days=0), "renew_before_days"),
        (lambda: TlsArgs(validity_days=400, ca_validity_days=399), "ca_validity_days"),
        (lambda: TlsArgs(issuer=IssuerRef("ca"), existing_secret="mine"), "existing_secret"),
        (lambda: TlsArgs(existing_secret="Mine"), "existing_secret"),
        (lambda: TlsArgs(min_protocol="TLSv1.1"), "min_protocol"),  # type: ignore[arg-type]
        (lambda: IssuerRef("ca", kind="Vault"), "kind"),  # type: ignore[arg-type]
    ],
)
def test_each_rule_refuses(make: object, field: str) -> None:
    with pytest.raises(ArgsError) as refused:
        make()  # type: ignore[operator]
    assert refused.value.field == field


def test_a_ca_shorter_than_the_certificate_is_fine_when_the_program_makes_no_ca() -> None:
    assert TlsArgs(validity_days=400, ca_validity_days=30, existing_secret="mine").source == "existing"
