"""The TLS mock (tools/mock_tls.py) on its own: what each pulumi-tls registration gets back."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tools.mock_tls import CERT_REQUEST, LOCALLY_SIGNED, PRIVATE_KEY, SELF_SIGNED, tls_state


def _key(name: str) -> dict[str, str]:
    return tls_state(PRIVATE_KEY, name, {"algorithm": "ECDSA", "ecdsaCurve": "P256"})


def test_keys_are_real_of_the_curve_asked_and_stable_per_name_and_inputs() -> None:
    state = _key("a")
    key = serialization.load_pem_private_key(state["privateKeyPem"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert state["privateKeyPem"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert _key("a") == state and _key("b")["privateKeyPem"] != state["privateKeyPem"]
    other = tls_state(PRIVATE_KEY, "a", {"algorithm": "ECDSA", "ecdsaCurve": "P384"})
    assert serialization.load_pem_private_key(other["privateKeyPem"].encode(), password=None).curve.name == "secp384r1"  # type: ignore[union-attr]


def test_a_ca_signs_a_request_into_a_certificate_with_the_requested_names_and_uses() -> None:
    ca_key, key = _key("ca"), _key("server")
    ca = tls_state(
        SELF_SIGNED,
        "ca",
        {
            "privateKeyPem": ca_key["privateKeyPem"],
            "isCaCertificate": True,
            "subject": {"commonName": "t CA"},
            "validityPeriodHours": 48,
            "allowedUses": ["cert_signing", "crl_signing"],
        },
    )
    csr = tls_state(CERT_REQUEST, "req", {"privateKeyPem": key["privateKeyPem"], "subject": {"commonName": "t"}, "dnsNames": ["a", "*.b"]})
    inputs = {
        "certRequestPem": csr["certRequestPem"],
        "caCertPem": ca["certPem"],
        "caPrivateKeyPem": ca_key["privateKeyPem"],
        "validityPeriodHours": 24,
        "earlyRenewalHours": 24,
        "allowedUses": ["digital_signature", "client_auth"],
    }
    signed = tls_state(LOCALLY_SIGNED, "cert", inputs)
    cert, authority = (x509.load_pem_x509_certificate(s["certPem"].encode()) for s in (signed, ca))
    cert.verify_directly_issued_by(authority)
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["a", "*.b"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # Renewal is due from validity_end - early_renewal_hours: at once here.
    assert signed["readyForRenewal"] is True and ca["readyForRenewal"] is False
