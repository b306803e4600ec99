"""Certificates for the local broker's TLS listeners, made with ``openssl`` and ``keytool``.

:func:`ensure_broker_tls` fills a broker's ``tls/`` folder once: a private CA, the broker's
certificate (SAN ``localhost`` and ``127.0.0.1``) in a PKCS12 keystore, a PKCS12 truststore with
the CA (the mutual-TLS listener checks client certificates against it), and one client
certificate with its key, signed by the CA, for clients of that listener. The stores' password is
random, kept in ``tls/store-password``.

The other functions make the same kinds of files for anyone: tests use them for a second CA, a
client certificate the broker does not trust, and keys encrypted as PKCS#8 or in OpenSSL's
traditional format.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from connector.kafka.local_broker.errors import BrokerStartError

DAYS = 825
_KEY = "rsa:2048"


@dataclass(frozen=True)
class CertificateFiles:
    """A PEM certificate and its unencrypted PEM private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class BrokerTls:
    """The files of a broker's ``tls/`` folder."""

    folder: Path

    @property
    def ca(self) -> CertificateFiles:
        return CertificateFiles(self.folder / "ca.pem", self.folder / "ca.key")

    @property
    def broker(self) -> CertificateFiles:
        return CertificateFiles(self.folder / "broker.pem", self.folder / "broker.key")

    @property
    def client(self) -> CertificateFiles:
        """A client certificate the mutual-TLS listener accepts."""
        return CertificateFiles(self.folder / "client.pem", self.folder / "client.key")

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.p12"

    @property
    def truststore(self) -> Path:
        return self.folder / "truststore.p12"

    @property
    def password_file(self) -> Path:
        return self.folder / "store-password"

    def store_password(self) -> str:
        return self.password_file.read_text().strip()


def _run(command: list[str], *, env: dict[str, str] | None = None) -> None:
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerStartError(f"could not run {command[0]}: {exc}") from exc
    if completed.returncode != 0:
        raise BrokerStartError(
            f"{' '.join(command[:2])} failed ({completed.returncode}): "
            + (completed.stdout + completed.stderr).strip()
        )


def make_ca(folder: Path, name: str, common_name: str) -> CertificateFiles:
    """A self-signed CA: ``<name>.pem`` and ``<name>.key`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(folder / f"{name}.pem", folder / f"{name}.key")
    _run(
        [
            "openssl", "req", "-x509", "-newkey", _KEY, "-nodes", "-sha256",
            "-days", str(DAYS * 2),
            "-keyout", str(files.key), "-out", str(files.cert),
            "-subj", f"/CN={common_name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ]
    )  # fmt: skip
    return files


def issue(
    ca: CertificateFiles,
    folder: Path,
    name: str,
    common_name: str,
    hosts: tuple[str, ...] = (),
) -> CertificateFiles:
    """A certificate signed by ``ca`` for server and client use; ``hosts`` go in its SAN."""
    folder.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(folder / f"{name}.pem", folder / f"{name}.key")
    request = folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    lines = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth,clientAuth",
    ]
    if hosts:
        names = [f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts]
        lines.append("subjectAltName=" + ",".join(names))
    extensions.write_text("\n".join(lines) + "\n")
    _run(
        [
            "openssl", "req", "-new", "-newkey", _KEY, "-nodes", "-sha256",
            "-keyout", str(files.key), "-out", str(request), "-subj", f"/CN={common_name}",
        ]
    )  # fmt: skip
    _run(
        [
            "openssl", "x509", "-req", "-sha256", "-days", str(DAYS),
            "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
            "-set_serial", str(secrets.randbits(63)),
            "-extfile", str(extensions), "-out", str(files.cert),
        ]
    )  # fmt: skip
    request.unlink()
    extensions.unlink()
    return files


def encrypt_key(key: Path, target: Path, password: str, *, traditional: bool = False) -> Path:
    """``key`` encrypted with ``password`` (AES-256): PKCS#8, or OpenSSL's traditional format."""
    if traditional:
        command = ["openssl", "rsa", "-traditional", "-aes256"]
    else:
        command = ["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc"]
    _run(
        [*command, "-in", str(key), "-out", str(target), "-passout", "env:ZC_KEY_PASSWORD"],
        env={"ZC_KEY_PASSWORD": password},
    )
    return target


def ensure_broker_tls(folder: Path, keytool: Path, host: str) -> BrokerTls:
    """Make the broker's TLS files in ``folder`` unless they exist (see the module docstring)."""
    tls = BrokerTls(folder)
    if tls.truststore.is_file() and tls.password_file.is_file():
        return tls
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    password = secrets.token_urlsafe(18)
    ca = make_ca(folder, "ca", "zoom-connector local CA")
    broker = issue(ca, folder, "broker", host, hosts=tuple(dict.fromkeys((host, "127.0.0.1"))))
    issue(ca, folder, "client", "zoom-connector")
    secret = {"ZC_STORE_PASSWORD": password}
    _run(
        [
            "openssl", "pkcs12", "-export", "-name", "broker",
            "-in", str(broker.cert), "-inkey", str(broker.key), "-certfile", str(ca.cert),
            "-out", str(tls.keystore), "-passout", "env:ZC_STORE_PASSWORD",
        ],
        env=secret,
    )  # fmt: skip
    tls.truststore.unlink(missing_ok=True)
    _run(
        [
            str(keytool), "-importcert", "-noprompt", "-storetype", "PKCS12", "-alias", "ca",
            "-file", str(ca.cert), "-keystore", str(tls.truststore),
            "-storepass:env", "ZC_STORE_PASSWORD",
        ],
        env=secret,
    )  # fmt: skip
    tls.password_file.write_text(password + "\n")
    tls.password_file.chmod(0o600)
    return tls
