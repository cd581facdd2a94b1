"""A secure local broker: TLS listener, SCRAM users or client certificates, ACLs.

`hookstream kafka start --security sasl_ssl|ssl` passes a `BrokerSecurity` to the launcher,
which asks it for the listener lines of `server.properties` (`listener_properties`) and the
extra arguments of `kafka-storage format` (`format_arguments`: the SCRAM users, created in
the metadata log before the broker first starts). After the broker is up, `apply_acls` creates
exactly the ACLs `hookstream acls` prints, as the `admin` super user.

Everything lives in `<data dir>/security/`: a CA and the broker's certificate (made with
openssl, PEM, which Kafka reads directly), the client certificates for `ssl`, and
`credentials.json` (mode 0600) with the generated passwords. `client_settings` gives the
`KAFKA_*` settings a service connects with, as its own principal.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hookstream.core.errors import LocalKafkaError

Mode = Literal["sasl_ssl", "ssl"]
MODES: tuple[Mode, ...] = ("sasl_ssl", "ssl")
SERVICES = ("ingest", "worker", "sink", "operator")
ADMIN = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
_CERT_DAYS = "825"


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA's certificate and key (PEM files)."""

    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    result = subprocess.run(  # noqa: S603
        ["openssl", *args],  # noqa: S607 - openssl from PATH, like java and mvn
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LocalKafkaError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_ca(directory: Path, name: str = "hookstream-local-ca") -> CertificateAuthority:
    """A new self-signed CA in `directory` (ca.pem, ca.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(directory / "ca.pem", directory / "ca.key")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", _CERT_DAYS,
        "-subj", f"/CN={name}", "-keyout", str(ca.key), "-out", str(ca.cert),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    ca.key.chmod(0o600)
    return ca


def issue(
    ca: CertificateAuthority, directory: Path, name: str, *, hosts: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """A certificate for `CN=name` signed by `ca`, valid for `hosts` (DNS names or IPs):
    (certificate, unencrypted PKCS#8 key), `<name>.pem` and `<name>.key` in `directory`."""
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    key.chmod(0o600)
    extensions = directory / f"{name}.ext"
    sans = [f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts]
    lines = ["basicConstraints=CA:FALSE", "extendedKeyUsage=serverAuth,clientAuth"]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    extensions.write_text("\n".join(lines) + "\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-days", _CERT_DAYS, "-out", str(cert), "-extfile", str(extensions),
    )  # fmt: skip
    csr.unlink()
    extensions.unlink()
    return cert, key
