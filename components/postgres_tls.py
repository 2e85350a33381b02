"""PostgresTls: the server certificate of a PostgreSQL set, in the Secret ``<name>-tls`` the pods mount.

Registered by PostgresStatefulSet as its child (new URNs only: no existing resource moves). One source:

- generated (pulumi-tls): an ECDSA P-256 CA, and a server certificate it signs for the set's names
  (components/postgres_tls_args.py server_names). The CA key and certificate are protected like the
  credentials Secret: a new CA breaks every client that trusts the old one, so it is never renewed early
  and a change that would replace it is refused on a protected stack. The server key, request and
  certificate are not: the certificate is replaced by the first `pulumi up` inside its renewal window, and the
  Secret's content updates in place (kubernetes:enableSecretMutable). terraform-provider-tls (read at 4.0.4, the
  copy in pulumi/pulumi-terraform-bridge pkg/pf/tests/internal/tlsshim/vendor, commit 59de6c66; the release under
  pulumi-tls 5.6.2 not checked) internal/provider/common_cert.go:253-296 modifyPlanIfCertificateReadyForRenewal:
  the plan of every update compares now with validity_end_time - early_renewal_hours and, inside the window,
  marks ready_for_renewal unknown and RequiresReplace (no refresh needed; resource_locally_signed_cert.go:288).
  validity_period_hours and allowed_uses replace too (resource_locally_signed_cert.go:72-75;
  resource_self_signed_cert.go:60-63 for the CA: so caValidityDays replaces the CA), early_renewal_hours does not.
- cert-manager: a cert-manager.io/v1 Certificate whose issuer writes the same Secret and renews it.
- existing: nothing is created; the pods mount that Secret.

The Secret stays out of the pod template's checksum: a renewed certificate reaches the running server
through the password-sync sidecar, which hashes the mounted files and reloads PostgreSQL (components/scripts/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.postgres_names import instance_labels, tls_secret
from components.postgres_tls_args import CA_USES, SERVER_USES, IssuerRef, TlsArgs, hours, server_names

CERTIFICATE_API = "cert-manager.io/v1"
# pulumi-tls ECDSA keys: algorithm and curve names as the provider takes them (resource_private_key.go).
ECDSA, P256 = "ECDSA", "P256"


def certificate_spec(name: str, dns_names: list[str], args: TlsArgs, issuer: IssuerRef) -> dict[str, Any]:
    """The cert-manager Certificate's spec (cert-manager.io/v1, checked against the CRD in tests/fixtures/)."""
    return {
        "secretName": tls_secret(name),
        "secretTemplate": {"labels": instance_labels(name)},
        "commonName": name,
        "dnsNames": dns_names,
        "duration": f"{hours(args.validity_days)}h",
        "renewBefore": f"{hours(args.renew_before_days)}h",
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": ["digital signature", "key encipherment", "server auth"],
        "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
    }


@dataclass(frozen=True)
class TlsSite:
    """Where the certificate is for: the set's name and namespace (known strings: they are its SANs)."""

    set_name: str
    namespace: str
    cluster_domain: str
    protect: bool


class PostgresTls(pulumi.ComponentResource):
    """The TLS Secret of a set (generated or cert-manager's), or nothing for an existing Secret."""

    ca_certificate: pulumi.Output[str | None]
    secret_name: pulumi.Output[str]

    def __init__(self, name: str, site: TlsSite, args: TlsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:PostgresTls", name, None, opts)
        set_name, namespace, cluster_domain = site.set_name, site.namespace, site.cluster_domain
        self._set, self._namespace, self._args, self._protect = set_name, namespace, args, site.protect
        self.dns_names = server_names(set_name, namespace, cluster_domain)
        ca: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        # What the certificate-expiry alert reads (components/postgres_monitoring_args.py): the generated
        # certificate's end of validity, or the name of cert-manager's Certificate; neither for an existing Secret.
        self.not_after: pulumi.Output[str] | None = None
        self.certificate_name: str | None = None
        if args.source == "generated":
            ca = self._generated(name)
        elif args.issuer is not None:
            self.certificate = k8s.apiextensions.CustomResource(
                f"{name}-certificate",
                api_version=CERTIFICATE_API,
                kind="Certificate",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=tls_secret(set_name), namespace=namespace, labels=instance_labels(set_name)),
                spec=certificate_spec(set_name, self.dns_names, args, args.issuer),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.certificate_name = tls_secret(set_name)
        # The CA a client trusts: generated here, or the Secret's ca.crt (the issuer's CA) otherwise.
        self.ca_certificate = ca
        self.secret_name = pulumi.Output.from_input(args.secret_name(set_name))
        self.register_outputs({"ca_certificate": self.ca_certificate, "secret_name": self.secret_name})

    def _generated(self, name: str) -> pulumi.Output[str | None]:
        args, set_name = self._args, self._set
        guarded = pulumi.ResourceOptions(parent=self, protect=self._protect)
        # Explicitly unprotected (children inherit protect): the renewal replaces these at the first `pulumi up`
        # inside the window, on a protected stack too.
        child = pulumi.ResourceOptions(parent=self, protect=False)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm=ECDSA, ecdsa_curve=P256, opts=guarded)
        # No early_renewal_hours: the CA is replaced only once it has expired, and only where protect allows.
        ca_cert = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            set_subject_key_id=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{set_name} CA", organization="pgstack"),
            validity_period_hours=hours(args.ca_validity_days),
            allowed_uses=list(CA_USES),
            opts=guarded,
        )
        key = tls.PrivateKey(f"{name}-server-key", algorithm=ECDSA, ecdsa_curve=P256, opts=child)
        request = tls.CertRequest(
            f"{name}-server-request",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=set_name, organization="pgstack"),
            dns_names=self.dns_names,
            opts=child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-server-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca_cert.cert_pem,
            validity_period_hours=hours(args.validity_days),
            early_renewal_hours=hours(args.renew_before_days),
            allowed_uses=list(SERVER_USES),
            opts=child,
        )
        self.not_after = cert.validity_end_time
        # Mocks ignore the provider's additional_secret_outputs: the key is marked secret here, never trusted to be.
        private_key: pulumi.Output[str] = pulumi.Output.secret(key.private_key_pem)
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=tls_secret(set_name), namespace=self._namespace, labels=instance_labels(set_name)),
            type="kubernetes.io/tls",
            string_data={"tls.crt": cert.cert_pem, "tls.key": private_key, "ca.crt": ca_cert.cert_pem},
            opts=guarded,
        )
        return pulumi.Output.unsecret(ca_cert.cert_pem)
