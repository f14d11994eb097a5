"""Certificates and keys for the loopback control plane, made locally with `cryptography`."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Identities the control plane needs. kwok stands in for every kubelet, so it is a cluster admin.
CLIENTS = {
    "admin": ("kubernetes-admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "kwok": ("kwok-controller", ["system:masters"]),
    # How the apiserver authenticates to real kubelets (logs, exec, port-forward).
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ["system:masters"]),
}
SERVICE_IP = "10.96.0.1"
FRONT_PROXY_CLIENT = "front-proxy-client"
_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class Pki:
    """Paths of the files `create_pki` wrote."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca.crt")


def _name(common_name: str, organizations: list[str] | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations or []]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _sign(subject, issuer, public_key, issuer_key, extensions) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf(directory: Path, name: str, subject, ca_cert, ca_key, usage, sans=None) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    extensions = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
        (x509.ExtendedKeyUsage([usage]), False),
    ]
    if sans:
        extensions.append((x509.SubjectAlternativeName(sans), False))
    cert = _sign(subject, ca_cert.subject, key.public_key(), ca_key, extensions)
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / f"{name}.key", key)


def _ca(directory: Path, name: str, common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    cert = _sign(
        subject,
        subject,
        key.public_key(),
        key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (x509.KeyUsage(True, False, False, False, False, True, True, False, False), True),
        ],
    )
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / f"{name}.key", key)
    return cert, key


def create_pki(directory: Path, extra_ips: tuple[str, ...] = ()) -> Pki:
    """Write a CA, the apiserver's serving certificate (valid for `extra_ips` too), one client
    certificate per identity in CLIENTS and the service-account signing key pair into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _ca(directory, "ca", "catalog-platform-test-ca")

    sans = [
        x509.DNSName(dns)
        for dns in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", SERVICE_IP, *extra_ips)]
    _leaf(
        directory,
        "apiserver",
        _name("kube-apiserver"),
        ca_cert,
        ca_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        sans,
    )
    for file_name, (user, groups) in CLIENTS.items():
        _leaf(
            directory,
            file_name,
            _name(user, groups),
            ca_cert,
            ca_key,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        )

    # The aggregation layer: the apiserver proxies to extension apiservers (metrics-server) with
    # this client certificate, and they trust the user it names only from this CA (kept apart from
    # the cluster CA, as kubeadm does, so no other client certificate can assert a user).
    proxy_ca_cert, proxy_ca_key = _ca(directory, "front-proxy-ca", "catalog-platform-test-front-proxy-ca")
    _leaf(
        directory,
        FRONT_PROXY_CLIENT,
        _name(FRONT_PROXY_CLIENT),
        proxy_ca_cert,
        proxy_ca_key,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )

    # The service-account token signer must be RSA or ECDSA; RSA is what kubeadm makes.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(directory / "sa.key", sa_key)
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return Pki(directory)


def issue_client_certificate(pki: Pki, directory: Path, name: str, user: str, groups: list[str]) -> None:
    """Write `name`.crt/.key into `directory`: a client certificate for `user` in `groups`, signed
    by `pki`'s CA (a real node's kubelet is system:node:<name> in system:nodes)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.path("ca.key").read_bytes(), password=None)
    directory.mkdir(parents=True, exist_ok=True)
    _leaf(directory, name, _name(user, groups), ca_cert, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH)


def issue_serving_certificate(pki: Pki, directory: Path, name: str, host: str, ips: list[str]) -> None:
    """Write `name`.crt/.key into `directory`: a serving certificate for `host` and `ips` signed by
    `pki`'s CA (a real node's kubelet, so its clients verify it instead of skipping TLS checks)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.path("ca.key").read_bytes(), password=None)
    directory.mkdir(parents=True, exist_ok=True)
    sans = [x509.DNSName(host), *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)]
    _leaf(directory, name, _name(host), ca_cert, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, sans)
