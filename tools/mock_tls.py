"""The pulumi-tls provider's side under the mocks (tools/mock_run.py): real keys, requests and certificates.

The SDK's mocks return a resource's inputs as its state, so pulumi-tls would give no PEMs and the tests could
check no certificate. Here each registration's inputs make what the provider would (terraform-provider-tls
internal/provider: resource_private_key.go, resource_self_signed_cert.go, resource_cert_request.go,
resource_locally_signed_cert.go, common_cert.go createCertificate), with `cryptography`: the key algorithm and
curve, the subject, the DNS names, the validity, allowed_uses as key usage and extended key usage, is_ca.

ECDSA P-256 (what the program asks for) costs well under a millisecond a key. The same name and inputs give the
same state within a process, as the provider keeps a resource whose inputs did not change: two runs of one
config agree (whatever their password seed), so a diff (tools/changes.py) shows only what the config changed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
TLS_TYPES = frozenset({PRIVATE_KEY, SELF_SIGNED, CERT_REQUEST, LOCALLY_SIGNED})

# common_cert.go keyUsages and extendedKeyUsages (the ones a certificate of ours can ask for).
_KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
_CA_USAGES = {"cert_signing": "key_cert_sign", "crl_signing": "crl_sign"}
_EXTENDED = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
_CURVES: dict[str, ec.EllipticCurve] = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}
_SUBJECT = {"commonName": NameOID.COMMON_NAME, "organization": NameOID.ORGANIZATION_NAME}

_CACHE: dict[str, dict[str, Any]] = {}


def tls_state(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The state pulumi-tls would return for this registration: its inputs plus what it computes."""
    key = json.dumps([type_, name, inputs], sort_keys=True, default=str)
    if key not in _CACHE:
        make = {PRIVATE_KEY: _private_key, SELF_SIGNED: _self_signed, CERT_REQUEST: _cert_request, LOCALLY_SIGNED: _locally_signed}
        _CACHE[key] = dict(inputs) | make[type_](inputs, name)
    return dict(_CACHE[key])


def _private_key(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    if inputs.get("algorithm") != "ECDSA":
        raise NotImplementedError(f"the TLS mock makes ECDSA keys only, not {inputs.get('algorithm')}")
    curve = _CURVES[str(inputs.get("ecdsaCurve") or "P224")]  # the provider's default curve is P224
    # Below every curve's order (the smallest, P-224's, is above 2^223): a valid private value.
    key = ec.derive_private_key(int.from_bytes(hashlib.sha256(name.encode()).digest()) % (2**222) + 1, curve)
    # pulumi-tls: private_key_pem in the SEC 1 "EC PRIVATE KEY" form for ECDSA, pkcs8 beside it.
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"privateKeyPem": pem.decode(), "privateKeyPemPkcs8": pkcs8.decode(), "publicKeyPem": public.decode()}


def _name(subject: Any) -> x509.Name:
    items = subject[0] if isinstance(subject, list) else subject or {}
    return x509.Name([x509.NameAttribute(oid, str(items[k])) for k, oid in _SUBJECT.items() if items.get(k)])


def _load_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _cert_request(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
    if inputs.get("dnsNames"):
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in inputs["dnsNames"]]), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode(), "keyAlgorithm": "ECDSA"}


def _usages(inputs: dict[str, Any], is_ca: bool) -> list[tuple[x509.ExtensionType, bool]]:
    uses = [str(u) for u in inputs.get("allowedUses") or []]
    flags = {f: f in uses for f in _KEY_USAGES} | {v: k in uses for k, v in _CA_USAGES.items()}
    found: list[tuple[x509.ExtensionType, bool]] = []
    if any(flags.values()):
        found.append((x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), True))
    extended = [_EXTENDED[u] for u in uses if u in _EXTENDED]
    if extended:
        found.append((x509.ExtendedKeyUsage(extended), False))
    found.append((x509.BasicConstraints(ca=is_ca, path_length=None), True))
    return found


def _certificate(inputs: dict[str, Any], subject: x509.Name, public: Any, issuer: x509.Name, signer: Any) -> dict[str, Any]:
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    end = start + datetime.timedelta(hours=int(inputs["validityPeriodHours"]))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    is_ca = bool(inputs.get("isCaCertificate"))
    for extension, critical in _usages(inputs, is_ca):
        builder = builder.add_extension(extension, critical=critical)
    if is_ca or inputs.get("setSubjectKeyId"):
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    return {"builder": builder, "signer": signer, "start": start, "end": end}


def _signed(parts: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    cert = parts["builder"].sign(parts["signer"], hashes.SHA256())
    early = int(inputs.get("earlyRenewalHours") or 0)
    return {
        "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": parts["start"].isoformat().replace("+00:00", "Z"),
        "validityEndTime": parts["end"].isoformat().replace("+00:00", "Z"),
        "readyForRenewal": parts["end"] - datetime.timedelta(hours=early) <= parts["start"],
    }


def _self_signed(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    subject = _name(inputs.get("subject"))
    builder = _certificate(inputs, subject, key.public_key(), subject, key)
    if inputs.get("dnsNames"):
        sans = x509.SubjectAlternativeName([x509.DNSName(n) for n in inputs["dnsNames"]])
        builder["builder"] = builder["builder"].add_extension(sans, critical=False)
    return _signed(builder, inputs) | {"keyAlgorithm": "ECDSA"}


def _locally_signed(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    ca_key = _load_key(inputs["caPrivateKeyPem"])
    parts = _certificate(inputs, csr.subject, csr.public_key(), ca.subject, ca_key)
    # The request's SANs are copied into the certificate (resource_locally_signed_cert.go: template from the CSR).
    for extension in csr.extensions:
        parts["builder"] = parts["builder"].add_extension(extension.value, critical=extension.critical)
    authority = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    parts["builder"] = parts["builder"].add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(authority), critical=False
    )
    return _signed(parts, inputs) | {"caKeyAlgorithm": "ECDSA"}
