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

With an `OAuthServer` (`sasl_ssl` only), the listener also takes OAUTHBEARER: the broker checks
each JWT's signature against the server's JWKS (and its issuer and audience) and takes the
principal from its `sub`; the services fetch their tokens from the server's token endpoint by
client credentials (the user name as client id, its generated password as client secret). The
admin and the broker itself stay on SCRAM. Sessions last at most `reauth_ms`, so that a
client whose token expires connects again with a new one.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest

from hookstream.core.errors import LocalKafkaError
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import load_settings
from hookstream.ops.acls import SERVICES, Acl, default_user

user_of = default_user

Mode = Literal["sasl_ssl", "ssl"]
MODES: tuple[Mode, ...] = ("sasl_ssl", "ssl")
ADMIN = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
OAUTH_MECHANISM = "OAUTHBEARER"
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


_BROKER = "hookstream-broker"
_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
_OAUTH = "org.apache.kafka.common.security.oauthbearer"
# Kafka 4 fetches only the URLs this JVM system property allows.
_ALLOWED_URLS = "org.apache.kafka.sasl.oauthbearer.allowed.urls"
# Kafka's protocol codes (AclOperation, ResourceType, PatternType, AclPermissionType).
_OPERATIONS = {
    "All": 2, "Read": 3, "Write": 4, "Create": 5, "Delete": 6, "Alter": 7, "Describe": 8,
    "ClusterAction": 9, "DescribeConfigs": 10, "AlterConfigs": 11, "IdempotentWrite": 12,
}  # fmt: skip
_RESOURCES = {"topic": 2, "group": 3, "cluster": 4, "transactionalId": 5}
_PATTERNS = {"literal": 3, "prefixed": 4}
_ALLOW = 3


@dataclass(frozen=True)
class OAuthServer:
    """An OIDC provider for OAUTHBEARER: where the broker reads the signing keys and the
    clients get their tokens; the JWTs' `iss` and `aud`."""

    jwks_url: str
    token_url: str
    issuer: str
    audience: str
    reauth_ms: int = 3_600_000
    """The longest a broker session lasts before the client must authenticate again."""


@dataclass(frozen=True)
class BrokerSecurity:
    """The security of a local broker: `sasl_ssl` (SCRAM-SHA-512 users over TLS) or `ssl`
    (client certificates), its files under `directory`. Every user's name is its principal
    (a certificate's CN is mapped to it)."""

    mode: Mode
    directory: Path
    passwords: dict[str, str] = field(repr=False)
    """User name -> SCRAM password (`sasl_ssl`; with `oauth`, the OIDC client secret of every
    user but the admin); empty for `ssl`."""
    oauth: OAuthServer | None = None
    """With `sasl_ssl`: the services authenticate with OAUTHBEARER tokens from this server."""

    @classmethod
    def prepare(
        cls,
        mode: Mode,
        data_dir: Path,
        host: str = "127.0.0.1",
        *,
        oauth: OAuthServer | None = None,
    ) -> BrokerSecurity:
        """Create (once) the CA, the broker's certificate, and the users' credentials."""
        if oauth is not None and mode != "sasl_ssl":
            raise LocalKafkaError("OAUTHBEARER needs the sasl_ssl listener")
        directory = data_dir / "security"
        credentials = directory / "credentials.json"
        if credentials.exists():
            saved = json.loads(credentials.read_text())
            if saved["mode"] != mode or saved.get("oauth", False) != (oauth is not None):
                held = saved["mode"] + (" (OAUTHBEARER)" if saved.get("oauth") else "")
                raise LocalKafkaError(f"{data_dir} holds a {held} broker; use another --data-dir")
            return cls(mode, directory, dict(saved["passwords"]), oauth)
        ca = make_ca(directory)
        cert, key = issue(ca, directory, _BROKER, hosts=(host, "localhost"))
        (directory / "broker.keystore.pem").write_text(key.read_text() + cert.read_text())
        (directory / "broker.keystore.pem").chmod(0o600)
        users = [ADMIN, *(user_of(service) for service in SERVICES)]
        passwords: dict[str, str] = {}
        if mode == "sasl_ssl":
            passwords = {user: secrets.token_hex(16) for user in users}
        else:
            for user in users:
                issue(ca, directory, user)
        saved = {"mode": mode, "oauth": oauth is not None, "passwords": passwords}
        credentials.write_text(json.dumps(saved))
        credentials.chmod(0o600)
        return cls(mode, directory, passwords, oauth)

    @property
    def ca_file(self) -> Path:
        """The CA that signed the broker's (and the clients') certificates."""
        return self.directory / "ca.pem"

    def listener_properties(self, host: str, port: int, controller_port: int) -> list[str]:
        """`server.properties` lines (they override the launcher's plaintext ones): one TLS
        listener for clients, an mTLS controller listener, the authorizer, the super users."""
        name = "SASL_SSL" if self.mode == "sasl_ssl" else "SSL"
        lines = [
            f"listeners={name}://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners={name}://{host}:{port}",
            f"inter.broker.listener.name={name}",
            f"listener.security.protocol.map={name}:{name},CONTROLLER:SSL",
            "listener.name.controller.ssl.client.auth=required",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={(self.directory / 'broker.keystore.pem').resolve()}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca_file.resolve()}",
            "ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT",
            f"authorizer.class.name={_AUTHORIZER}",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{ADMIN};User:{_BROKER}",
        ]
        if self.mode == "sasl_ssl":
            jaas = f'{_SCRAM_LOGIN} required username="{ADMIN}" password="{self.passwords[ADMIN]}";'
            lines += [
                f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
                f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
                f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={jaas}",
            ]
            if self.oauth is not None:
                lines += self._oauth_properties(self.oauth)
        else:
            lines.append("ssl.client.auth=required")
        return lines

    @staticmethod
    def _oauth_properties(oauth: OAuthServer) -> list[str]:
        prefix = f"listener.name.sasl_ssl.{OAUTH_MECHANISM.lower()}"
        return [
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM},{OAUTH_MECHANISM}",
            f"{prefix}.sasl.jaas.config={_OAUTH}.OAuthBearerLoginModule required ;",
            f"{prefix}.sasl.server.callback.handler.class="
            f"{_OAUTH}.OAuthBearerValidatorCallbackHandler",
            f"{prefix}.connections.max.reauth.ms={oauth.reauth_ms}",
            f"sasl.oauthbearer.jwks.endpoint.url={oauth.jwks_url}",
            f"sasl.oauthbearer.expected.issuer={oauth.issuer}",
            f"sasl.oauthbearer.expected.audience={oauth.audience}",
        ]

    def jvm_properties(self) -> list[str]:
        """`-D` options of the broker's JVM (Kafka 4 reads the JWKS only from allowed URLs)."""
        if self.oauth is None:
            return []
        return [f"-D{_ALLOWED_URLS}={self.oauth.jwks_url}"]

    def format_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that create the SCRAM users (with OAUTHBEARER,
        only the admin)."""
        return [
            argument
            for user, password in self.passwords.items()
            if self.oauth is None or user == ADMIN
            for argument in ("--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]")
        ]

    def client_settings(self, user: str, bootstrap: str) -> dict[str, str]:
        """The `KAFKA_*` settings with which `user` connects."""
        settings = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_SSL_CA_FILE": str(self.ca_file.resolve()),
        }
        if self.oauth is not None and user != ADMIN:
            settings |= {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": OAUTH_MECHANISM,
                "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL": self.oauth.token_url,
                "KAFKA_SASL_OAUTHBEARER_CLIENT_ID": user,
                "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": self.passwords[user],
            }
        elif self.mode == "sasl_ssl":
            settings |= {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
                "KAFKA_SASL_USERNAME": user,
                "KAFKA_SASL_PASSWORD": self.passwords[user],
            }
        else:
            settings |= {
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CERT_FILE": str((self.directory / f"{user}.pem").resolve()),
                "KAFKA_SSL_KEY_FILE": str((self.directory / f"{user}.key").resolve()),
            }
        return settings

    async def apply_acls(self, bootstrap: str, acls: dict[str, list[Acl]]) -> int:
        """Create `acls` (service -> ACLs, for the service's own user) as the admin; return
        how many bindings were created."""
        settings = load_settings(
            **{k.lower(): v for k, v in self.client_settings(ADMIN, bootstrap).items()}
        )
        connection = KafkaConnection.from_settings(settings.kafka)
        client = AIOKafkaClient(**connection.client_config("hookstream-acls"))
        created = 0
        try:
            await client.bootstrap()
            node = client.get_random_node()
            for service, entries in acls.items():
                principal = f"User:{user_of(service)}"
                for acl in entries:
                    for operation in acl.operations:
                        request = CreateAclsRequest(
                            _RESOURCES[acl.resource_type], acl.name, _PATTERNS[acl.pattern],
                            principal, "*", _OPERATIONS[operation], _ALLOW,
                        )  # fmt: skip
                        response = await client.send(node, request)
                        for code, message in response.creation_responses:
                            if code != 0:
                                raise LocalKafkaError(
                                    f"creating ACL {operation} on {acl.resource_type}"
                                    f" {acl.name} for {principal} failed: {code} {message}"
                                )
                        created += 1
        finally:
            await client.close()
        return created
