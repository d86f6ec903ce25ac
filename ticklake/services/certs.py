"""The secure profile's local material, made by ``ticklake up`` and reused after: a CA, a server
certificate for loopback, the CA as a truststore, and random passwords for users that have none.

Files are readable by their owner only. Production points the ``security`` settings at real
certificates and passwords; then nothing here is created (files that exist are never replaced).
"""
from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from ticklake.config import CASSANDRA_USERS, KAFKA_USERS, Settings
from ticklake.errors import ServiceError

DAYS = 825
SUBJECT_ALT_NAMES = "IP:127.0.0.1,DNS:localhost"


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServiceError(f"{what} failed ({command[0]} exited {result.returncode}):\n{result.stderr}")


def _owner_only(*paths: Path) -> None:
    for path in paths:
        path.chmod(0o600)


def ensure_certificates(settings: Settings) -> list[Path]:
    """Create the CA, the server key (PKCS#8, as Cassandra's PEM factory wants), its certificate
    (SANs for 127.0.0.1 and localhost, as Java clients and librdkafka check host names) and the
    truststore, each only if missing. Returns the files it created."""
    sec = settings.security
    sec.certs_dir.mkdir(parents=True, exist_ok=True)
    sec.certs_dir.chmod(0o700)
    created = []
    ca_key = sec.certs_dir / "ca.key"
    if not sec.ca_file.exists():
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
              "-out", str(sec.ca_file), "-days", str(DAYS), "-subj", "/CN=ticklake local CA",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
             "creating the local CA")
        _owner_only(ca_key, sec.ca_file)
        created.append(sec.ca_file)
    if not sec.key_file.exists() or not sec.cert_file.exists():
        if not ca_key.exists():
            raise ServiceError(f"security.cert_file {sec.cert_file} or security.key_file {sec.key_file} is missing and "
                               f"the CA in {sec.certs_dir} has no key to sign a new one: point "
                               "TICKLAKE_SECURITY__CERT_FILE and TICKLAKE_SECURITY__KEY_FILE at the servers' "
                               "certificate and key")
        request = sec.certs_dir / "server.csr"
        _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(sec.key_file)],
             "creating the server key")
        _run(["openssl", "req", "-new", "-key", str(sec.key_file), "-out", str(request), "-subj", "/CN=localhost"],
             "creating the server certificate request")
        _run(["openssl", "x509", "-req", "-in", str(request), "-CA", str(sec.ca_file), "-CAkey", str(ca_key),
              "-CAcreateserial", "-out", str(sec.cert_file), "-days", str(DAYS),
              "-extfile", str(_extensions(sec.certs_dir))],
             "signing the server certificate")
        request.unlink()
        (sec.certs_dir / "server.ext").unlink()
        _owner_only(sec.key_file, sec.cert_file, sec.certs_dir / "ca.srl")
        created.append(sec.cert_file)
    if not sec.truststore_file.exists():
        _run(["keytool", "-importcert", "-noprompt", "-alias", "ticklake-ca", "-file", str(sec.ca_file),
              "-keystore", str(sec.truststore_file), "-storetype", "PKCS12", "-storepass", sec.truststore_password],
             "creating the truststore")
        _owner_only(sec.truststore_file)
        created.append(sec.truststore_file)
    return created


def _extensions(folder: Path) -> Path:
    path = folder / "server.ext"
    path.write_text(f"subjectAltName={SUBJECT_ALT_NAMES}\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n")
    return path


def server_key_and_chain(settings: Settings) -> Path:
    """The server's key followed by its certificate chain in one PEM file: the keystore both
    Kafka (ssl.keystore.type=PEM) and Cassandra (PEMBasedSslContextFactory) read."""
    sec = settings.security
    path = sec.certs_dir / "server-keystore.pem"
    text = sec.key_file.read_text() + sec.cert_file.read_text()
    if not path.exists() or path.read_text() != text:
        path.touch(mode=0o600)
        path.write_text(text)
    return path


def ensure_local_passwords(settings: Settings) -> list[str]:
    """Write a random password into each user's password file that does not exist yet (users
    with an inline password are left alone). Returns the settings it wrote for."""
    sec = settings.security
    written = []
    for name in (*KAFKA_USERS, *CASSANDRA_USERS):
        credential = getattr(sec, name)
        if credential.password is not None or credential.password_file.exists():
            continue
        credential.password_file.parent.mkdir(parents=True, exist_ok=True)
        credential.password_file.parent.chmod(0o700)
        descriptor = os.open(credential.password_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
        written.append(name)
    return written
