"""PostgresTls and the TLS wiring: real certificates (the mock makes them, tools/mock_tls.py), what is
protected, what the pods mount, what stays out of the template's checksum, the dump job's verify-full, and
cert-manager's Certificate against its CRD."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from pulumi.runtime import rpc

from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_conf import TLS_MOUNT
from components.postgres_statefulset import PostgresStatefulSet
from components.postgres_tls import PostgresTls, TlsSite, certificate_spec
from components.postgres_tls_args import IssuerRef, TlsArgs, server_names
from tests.conftest import SECRET, STS, fixed_config, program_run, run_component, run_with
from tests.tools.test_render import _strict
from tools.mock_run import Registered, Run, plain

CRD = Path(__file__).resolve().parents[1] / "fixtures" / "cert-manager-1.21.1" / "cert-manager.io_certificates.yaml"
CRONJOB = "kubernetes:batch/v1:CronJob"
TLS_TYPES = ("tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert")
PROTECTED = {"pg-tls-ca-key", "pg-tls-ca", "pg-tls-secret"}
RENEWED = {"pg-tls-server-key", "pg-tls-server-request", "pg-tls-server-cert"}


@functools.cache
def _generated() -> Run:
    """A protected three-pod set with generated TLS, required, TLSv1.3 (one component run, shared)."""

    def program() -> None:
        tls = TlsArgs(required=True, min_protocol="TLSv1.3", validity_days=90, renew_before_days=10, ca_validity_days=1000)
        args = PostgresStatefulSetArgs(namespace="db", storage_class="fast", image="postgres:18.1", replicas=3, tls=tls)
        pg = PostgresStatefulSet("pg", args)
        pulumi.export("uri", pg.connection_uri)
        pulumi.export("ca", pg.ca_certificate)

    return run_component(program)


def _secret_data(run: Run) -> dict[str, str]:
    return dict(plain(run.one(SECRET, "pg-tls-secret").inputs["stringData"]))


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_the_server_certificate_names_every_service_and_pod_and_chains_to_the_ca() -> None:
    data = _secret_data(_generated())
    cert, ca = _cert(data["tls.crt"]), _cert(data["ca.crt"])
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(server_names("pg", "db"))
    assert {"pg", "pg.db.svc", "pg-ro.db.svc.cluster.local", "pg-hl.db", "*.pg-hl.db.svc.cluster.local"} <= set(sans)
    # A server certificate: signs the handshake, serverAuth, not a CA; signed by the CA (raises if not).
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90
    # The CA: a CA that signs certificates, for its own lifetime.
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days == 1000
    # The key is the certificate's, ECDSA P-256.
    key = serialization.load_pem_private_key(data["tls.key"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key() == cert.public_key()


def test_renewal_and_what_is_protected() -> None:
    run = _generated()
    tls = {r.name: r for r in run.resources if r.type.startswith("tls:")}
    assert set(tls) == (PROTECTED | RENEWED) - {"pg-tls-secret"}
    # A new CA breaks every client that trusts the old one: protected, never renewed early. The server's
    # certificate is replaced inside its window (unprotected, or a protected stack would refuse the renewal).
    for name in PROTECTED:
        assert run.one(SECRET if name == "pg-tls-secret" else tls[name].type, name).options.protect, name
    for name in RENEWED:
        assert not tls[name].options.protect, name
    assert "earlyRenewalHours" not in tls["pg-tls-ca"].inputs
    cert = plain(tls["pg-tls-server-cert"].inputs)
    assert (cert["validityPeriodHours"], cert["earlyRenewalHours"]) == (90 * 24, 10 * 24)
    assert sorted(cert["allowedUses"]) == ["digital_signature", "key_encipherment", "server_auth"]


def test_the_private_keys_stay_secret() -> None:
    run = _generated()
    secret = run.one(SECRET, "pg-tls-secret").inputs
    assert secret["type"] == "kubernetes.io/tls" and secret["metadata"]["name"] == "pg-tls"
    data = secret["stringData"]
    assert rpc.is_rpc_secret(data) or rpc.is_rpc_secret(data["tls.key"])
    # The CA's key reaches the certificates that it signs only as a secret.
    signed = run.one("tls:index/locallySignedCert:LocallySignedCert", "pg-tls-server-cert").inputs
    assert rpc.is_rpc_secret(signed["caPrivateKeyPem"])
    assert run.outputs["ca"] == _secret_data(run)["ca.crt"] and "ca" not in run.secret_outputs
    assert run.outputs["uri"].endswith("?sslmode=verify-full") and "uri" in run.secret_outputs


def _containers(sts: Registered) -> dict[str, dict[str, Any]]:
    spec = plain(sts.inputs["spec"]["template"]["spec"])
    return {c["name"]: c for c in [*spec["initContainers"], *spec["containers"]]}


def test_every_database_container_mounts_the_secret_read_only_and_the_server_serves_tls() -> None:
    run = _generated()
    for sts in run.of_type(STS):
        spec = plain(sts.inputs["spec"]["template"]["spec"])
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["tls"]["secret"] == {"secretName": "pg-tls", "defaultMode": 0o440}
        for name, c in _containers(sts).items():
            mount = [m for m in c["volumeMounts"] if m["name"] == "tls"]
            assert mount == [{"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}], name
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert (env["TLS_DIR"], env["TLS_REQUIRED"]) == (TLS_MOUNT, "true"), name
        args = _containers(sts)["postgres"]["args"]
        for parameter in ("ssl=on", f"ssl_cert_file={TLS_MOUNT}/tls.crt", f"ssl_key_file={TLS_MOUNT}/tls.key"):
            assert parameter in args
        assert "ssl_min_protocol_version=TLSv1.3" in args


def test_the_secret_is_ordered_before_the_sets_but_never_feeds_their_template() -> None:
    """A renewed certificate must not roll the pods (the sidecar reloads it) nor drag the sets along."""
    run = _generated()
    tls_urns = {r.urn for r in run.resources if r.type.startswith("tls:") or r.name == "pg-tls-secret"}
    for sts in run.of_type(STS):
        # depends_on the component: the SDK sends its children.
        assert tls_urns <= set(sts.dependencies)
        assert not tls_urns & {u for urns in sts.property_dependencies.values() for u in urns}
        annotations = sts.inputs["spec"]["template"]["metadata"]["annotations"]
        assert set(annotations) == {"checksum/secret", "checksum/scripts"}
    off = run_component(
        lambda: PostgresStatefulSet("pg", PostgresStatefulSetArgs(namespace="db", storage_class="f", image="postgres:18.1"))
    )
    on_sums = run.one(STS, "pg").inputs["spec"]["template"]["metadata"]["annotations"]["checksum/scripts"]
    assert off.one(STS, "pg").inputs["spec"]["template"]["metadata"]["annotations"]["checksum/scripts"] == on_sums
    assert not [r for r in off.resources if r.type.startswith("tls:") or "tls" in r.name]


def _program_with_tls() -> Run:
    """The whole program: the tests' prod with dumps, TLS on and required (test_urns' prod-tls: one run for both)."""
    config = fixed_config("prod")
    config["pgstack:tls"] = config["pgstack:tls"] | {"enabled": True, "required": True}
    return program_run(config, "prod")


def test_the_dump_job_verifies_the_server_with_only_the_ca_mounted() -> None:
    run = _program_with_tls()
    cron = plain(run.of_type(CRONJOB)[0].inputs)
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert volume["secret"] == {"secretName": "postgres-tls", "items": [{"key": "ca.crt", "path": "ca.crt"}], "defaultMode": 0o440}
    dump = next(c for c in [*(pod.get("initContainers") or []), *pod["containers"]] if c["name"] == "dump")
    env = {e["name"]: e.get("value") for e in dump["env"]}
    assert (env["PGSSLMODE"], env["PGSSLROOTCERT"]) == ("verify-full", f"{TLS_MOUNT}/ca.crt")
    assert {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True} in dump["volumeMounts"]
    # verify-full checks the host name: every host the dump connects to is a name of the certificate.
    data = plain(next(r for r in run.of_type(SECRET) if r.name == "postgres-tls-secret").inputs["stringData"])
    sans = _cert(data["tls.crt"]).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    hosts = [*env["BACKUP_HOSTS"].split(), env["PGHOST"]]
    assert len(hosts) == 3 and set(hosts) <= set(sans.get_values_for_type(x509.DNSName))


def test_a_dump_job_without_tls_prefers_and_mounts_no_tls() -> None:
    run = run_with({}, stack="prod")
    pod = plain(run.of_type(CRONJOB)[0].inputs)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "tls" not in {v["name"] for v in pod["volumes"]}
    dump = next(c for c in [*(pod.get("initContainers") or []), *pod["containers"]] if c["name"] == "dump")
    env = {e["name"]: e.get("value") for e in dump["env"]}
    assert (env["PGSSLMODE"], env["PGSSLROOTCERT"]) == ("prefer", "")


@functools.cache
def _crd_schema() -> dict[str, Any]:
    crd = yaml.load(CRD.read_text(), Loader=yaml.CSafeLoader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return dict(_strict(version["schema"]["openAPIV3Schema"]))


def test_cert_manager_writes_the_same_secret_with_a_certificate_its_crd_accepts() -> None:
    issuer = IssuerRef(name="internal-ca", kind="ClusterIssuer")

    def program() -> None:
        PostgresTls("pg-tls", TlsSite("pg", "db", "cluster.local", True), TlsArgs(issuer=issuer, validity_days=90, renew_before_days=10))

    run = run_component(program)
    assert not [r for r in run.resources if r.type.startswith("tls:") or r.type == SECRET]
    (cert,) = [r for r in run.resources if r.type == "kubernetes:cert-manager.io/v1:Certificate"]
    obj = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", **plain({k: v for k, v in cert.inputs.items() if k != "apiVersion"})}
    obj["kind"] = "Certificate"
    jsonschema.validate(obj, _crd_schema())
    spec = obj["spec"]
    assert spec["secretName"] == "pg-tls" and spec["dnsNames"] == server_names("pg", "db")
    assert (spec["duration"], spec["renewBefore"]) == ("2160h", "240h")
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert spec["issuerRef"] == {"name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_the_crd_check_can_fail() -> None:
    spec = certificate_spec("pg", ["pg"], TlsArgs(issuer=IssuerRef("ca")), IssuerRef("ca"))
    good = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "pg-tls"}, "spec": spec}
    jsonschema.validate(good, _crd_schema())
    for bad in ({"privateKey": {"algorithm": "EC"}}, {"dnsName": ["pg"]}, {"duration": 90}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(good | {"spec": spec | bad}, _crd_schema())


def test_an_existing_secret_is_mounted_and_nothing_is_created() -> None:
    def program() -> None:
        tls = TlsArgs(existing_secret="wildcard-tls")
        PostgresStatefulSet("pg", PostgresStatefulSetArgs(namespace="db", storage_class="f", image="postgres:18.1", tls=tls))

    run = run_component(program)
    assert not [r for r in run.resources if r.type.startswith("tls:") or r.name.startswith("pg-tls-")]
    spec = plain(run.one(STS, "pg").inputs["spec"]["template"]["spec"])
    assert {"name": "tls", "secret": {"secretName": "wildcard-tls", "defaultMode": 0o440}} in spec["volumes"]
    env = {e["name"]: e.get("value") for e in _containers(run.one(STS, "pg"))["postgres"]["env"]}
    assert (env["TLS_DIR"], env["TLS_REQUIRED"]) == (TLS_MOUNT, "false")
