"""TlsArgs: the contract of PostgresTls (components/postgres_tls.py), and the pure functions TLS needs.

Where the server certificate comes from (one source): generated in the program (pulumi-tls, the default),
a cert-manager Issuer or ClusterIssuer (``issuer``), or a kubernetes.io/tls Secret that exists already
(``existing_secret``). Checked at construction like every Args (components/validation.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.naming import DEFAULT_CLUSTER_DOMAIN
from components.postgres_conf import TlsProtocol
from components.postgres_names import headless_service, read_only_service, tls_secret
from components.validation import check_literals, check_name, check_range, fail

TlsSource = Literal["generated", "cert-manager", "existing"]
IssuerKind = Literal["Issuer", "ClusterIssuer"]
# The key usages of the server certificate (pulumi-tls allowed_uses names, terraform-provider-tls
# internal/provider/common_cert.go keyUsages / extendedKeyUsages).
SERVER_USES = ("digital_signature", "key_encipherment", "server_auth")
CA_USES = ("cert_signing", "crl_signing", "digital_signature")


@dataclass(frozen=True)
class IssuerRef:
    """A cert-manager issuer (cert-manager.io/v1 Certificate spec.issuerRef)."""

    name: str
    kind: IssuerKind = "Issuer"
    group: Literal["cert-manager.io"] = "cert-manager.io"

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "name", self.name, "subdomain")


@dataclass(frozen=True)
class TlsArgs:
    """TLS on every connection: the source of the certificate, its lifetime and what the server accepts."""

    required: bool = False
    """Refuse connections without TLS (pg_hba hostnossl ... reject)."""
    min_protocol: TlsProtocol = "TLSv1.2"
    """ssl_min_protocol_version."""
    validity_days: int = 365
    """Lifetime of the server certificate (generated and cert-manager)."""
    renew_before_days: int = 30
    """Renew the server certificate this many days before it expires; less than validity_days."""
    ca_validity_days: int = 3650
    """Lifetime of the generated CA; at least validity_days."""
    issuer: IssuerRef | None = None
    """Take the certificate from this cert-manager issuer instead of generating it."""
    existing_secret: str | None = None
    """Take the certificate from this existing kubernetes.io/tls Secret (with ca.crt) in the namespace."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_range(self, "validity_days", self.validity_days, 1)
        check_range(self, "renew_before_days", self.renew_before_days, 1)
        check_range(self, "ca_validity_days", self.ca_validity_days, 1)
        if self.renew_before_days >= self.validity_days:
            fail(
                self,
                "renew_before_days",
                self.renew_before_days,
                f"fewer days than validity_days ({self.validity_days})",
                examples=(max(self.validity_days // 3, 1),),
                why="a certificate due for renewal as soon as it is issued would be replaced at every `pulumi up`",
                refs=("validity_days",),
            )
        if self.issuer is not None and self.existing_secret is not None:
            fail(
                self,
                "existing_secret",
                self.existing_secret,
                "None while issuer is set: one source of the certificate (generated, issuer or existing_secret)",
                refs=("issuer", "existing_secret"),
            )
        if self.existing_secret is not None:
            check_name(self, "existing_secret", self.existing_secret, "subdomain")
        if self.source == "generated" and self.ca_validity_days < self.validity_days:
            fail(
                self,
                "ca_validity_days",
                self.ca_validity_days,
                f"at least validity_days ({self.validity_days})",
                why="clients stop trusting a certificate once the CA that signed it has expired",
                refs=("validity_days",),
            )

    @property
    def source(self) -> TlsSource:
        if self.issuer is not None:
            return "cert-manager"
        return "generated" if self.existing_secret is None else "existing"

    def secret_name(self, name: str) -> str:
        """The Secret the pods mount: the existing one, else ``<name>-tls`` (generated or cert-manager's)."""
        return self.existing_secret or tls_secret(name)


def service_hosts(service: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> list[str]:
    """A Service's name in every form a client resolves: short, .<ns>, .<ns>.svc, .<ns>.svc.<domain>."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.{cluster_domain}"]


def server_names(name: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> list[str]:
    """The server certificate's DNS SANs: the read-write, read-only and headless Services in all their forms,
    and every pod through the headless Service (standbys connect to <pod>.<name>-hl.<ns>.svc.<domain>)."""
    services = [name, read_only_service(name), headless_service(name)]
    pods = f"*.{headless_service(name)}.{namespace}.svc.{cluster_domain}"
    return [host for svc in services for host in service_hosts(svc, namespace, cluster_domain)] + [pods]


def hours(days: int) -> int:
    return days * 24
