"""Throw-away TLS material for the stand-in: a private CA and a server certificate it signed.

Tests use it to prove a client verifies certificates: ``verify=<ca_path>`` must succeed and
``verify=True`` (the system trust store) must fail. ``cryptography`` (shipped with Airflow) is
imported only when certificates are made, so importing this module stays cheap.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

__all__ = ["TLSFiles", "make_self_signed"]


@dataclass(frozen=True)
class TLSFiles:
    """Paths (plain ``str``: requests ignores a ``Path`` given as ``verify``) of the generated PEM files."""

    ca_path: str
    cert_path: str
    key_path: str

    def server_context(self) -> ssl.SSLContext:
        """An SSLContext to pass as ``PartnerOSStandIn(tls=...)``."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client SSLContext that trusts only the generated CA."""
        return ssl.create_default_context(cafile=self.ca_path)


def make_self_signed(
    tmpdir: str | os.PathLike[str],
    hostnames: Iterable[str] = ("127.0.0.1", "localhost"),
    *,
    days: int = 30,
) -> TLSFiles:
    """Write ``ca.pem``, ``server.pem`` and ``server-key.pem`` into ``tmpdir``.

    The server certificate names every entry of ``hostnames`` (IP addresses become IP SANs) and
    carries the extensions strict verifiers require (key usage, EKU serverAuth, key identifiers).
    EC P-256 keys keep generation at a few milliseconds.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = list(hostnames)
    if not names:
        raise ValueError("make_self_signed needs at least one hostname.")
    out = Path(tmpdir)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    not_before, not_after = now - timedelta(days=1), now + timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PartnerOS stand-in"),
            x509.NameAttribute(NameOID.COMMON_NAME, "PartnerOS stand-in test CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())

    def issued_by_ca(subject: x509.Name, subject_key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        """A certificate for ``subject`` from the test CA, valid from yesterday for ``days``."""
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(subject_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
        )

    def key_usage(*, issues_certificates: bool) -> x509.KeyUsage:
        """Signatures for both certificates; certificate and CRL signing for the CA only."""
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=issues_certificates,
            crl_sign=issues_certificates,
            encipher_only=False,
            decipher_only=False,
        )

    ca_cert = (
        issued_by_ca(ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(issues_certificates=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        issued_by_ca(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]), key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(issues_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_path, cert_path, key_path = out / "ca.pem", out / "server.pem", out / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return TLSFiles(str(ca_path), str(cert_path), str(key_path))
