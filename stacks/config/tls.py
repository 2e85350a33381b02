"""The tls: block: TLS on every connection to the database, and where the server certificate comes from.

The cross-field rules (renewal before expiry, one source, the CA outliving the certificate) are the Args'
(components/postgres_tls_args.py TlsArgs), said under these keys by stacks/config/contract.py; only what
the Args cannot see is checked here (required without enabled: TLS off has no Args).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.postgres_conf import TlsProtocol
from components.postgres_tls_args import IssuerKind
from stacks.config.errors import FieldError
from stacks.config.formats import DnsSubdomain, Model


class IssuerRefSettings(Model):
    """The cert-manager issuer that signs the server certificate."""

    name: DnsSubdomain
    """Name of the Issuer (in the database's namespace) or ClusterIssuer."""
    kind: IssuerKind = "Issuer"
    """Issuer (namespaced, in the database's namespace) or ClusterIssuer."""
    group: Literal["cert-manager.io"] = "cert-manager.io"
    """The issuer's API group: cert-manager.io (external issuers are not supported)."""


class CertManagerSettings(Model):
    """Take the server certificate from cert-manager: a Certificate writing the Secret <name>-tls."""

    issuerRef: IssuerRefSettings
    """The issuer that signs it; its CA is what clients must trust (the Secret's ca.crt)."""


class TlsSettings(Model):
    """TLS on every connection: clients, standbys and the dump job (verify-full against the stack's CA)."""

    enabled: bool = False
    """Serve TLS (ssl=on); turning it on or off restarts the pods one at a time."""
    required: bool = False
    """Refuse connections without TLS (hostssl only); needs enabled."""
    minProtocol: TlsProtocol = "TLSv1.2"
    """The oldest TLS version the server accepts: TLSv1.2 or TLSv1.3."""
    validityDays: int = Field(365, ge=1)
    """Lifetime of the server certificate, in days (generated or cert-manager)."""
    renewBeforeDays: int = Field(30, ge=1)
    """Renew the server certificate this many days before it expires: the first `pulumi up` in that window does."""
    caValidityDays: int = Field(3650, ge=1)
    """Lifetime of the generated CA, in days; never renewed early (a new CA breaks every client that trusts the old one)."""
    certManager: CertManagerSettings | None = None
    """Take the certificate from cert-manager instead of generating it; null: not."""
    existingSecret: DnsSubdomain | None = None
    """Take the certificate from this kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) in the namespace; null: not."""

    @model_validator(mode="after")
    def _required_needs_enabled(self) -> TlsSettings:
        if self.required and not self.enabled:
            raise FieldError("required", self.required, "false while tls.enabled is false: TLS must be on to be required")
        return self
