"""Throw-away TLS material for the local test broker: its self-signed certificate in a PKCS12
keystore (``ca.pem`` for clients to trust), and a client certificate with an encrypted key plus
the truststore the mutual-TLS listener checks clients against. Made once per data directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stream.errors import BrokerError


def _run(what: str, cmd: list[str], purpose: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise BrokerError(f"{what} failed making {purpose}: {out.stdout[-800:]}{out.stderr[-800:]}")


def make_broker_certificate(tls: Path, keytool: str, *, password: str) -> None:
    """``tls/broker.p12`` (a certificate for 127.0.0.1/localhost) and ``tls/ca.pem``."""
    if (tls / "ca.pem").is_file():
        return
    tls.mkdir(parents=True, exist_ok=True)
    store = ["-keystore", str(tls / "broker.p12"), "-storetype", "PKCS12", "-storepass", password]
    _run("keytool", [keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity",
                     "30", "-dname", "CN=localhost", "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-ext", "BC=ca:true",
                     "-keypass", password, *store], "the broker's certificate")
    _run("keytool", [keytool, "-exportcert", "-rfc", "-alias", "broker", "-file", str(tls / "ca.pem"), *store],
         "the broker's certificate")


def make_client_certificate(tls: Path, openssl: str, keytool: str, *, key_password: str, store_password: str) -> None:
    """``tls/client.pem`` and ``tls/client.key`` (encrypted with ``key_password``, PEM as clients
    load them) and ``tls/clients.p12``, the truststore holding the certificate."""
    truststore = tls / "clients.p12"
    if truststore.is_file():
        return
    tls.mkdir(parents=True, exist_ok=True)
    _run("openssl", [openssl, "req", "-x509", "-newkey", "rsa:2048", "-days", "30", "-subj", "/CN=camera-ops",
                     "-keyout", str(tls / "client.key"), "-out", str(tls / "client.pem"),
                     "-passout", f"pass:{key_password}"], "the test client's certificate")
    _run("keytool", [keytool, "-importcert", "-noprompt", "-alias", "camera-ops", "-file", str(tls / "client.pem"),
                     "-keystore", str(truststore), "-storetype", "PKCS12", "-storepass", store_password],
         "the test client's certificate")
