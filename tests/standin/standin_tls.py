"""Test CA and server certificate for the stand-in's SMTP TLS, made with the openssl CLI.

The relay verifies the chain and the host name (RFC 6125) against ca.pem exactly as it would verify
smtp.office365.com against the system store, so the leaf must be a proper server certificate:
SAN DNS:localhost, IP:127.0.0.1, IP:::1, serverAuth, signed by a CA with keyCertSign, and carrying
subject/authority key identifiers (strict verifiers such as Python 3.13 insist on them). Material is
made once per state directory in a scratch directory and renamed into place, then reused.
"""
import os
import shutil
import ssl
import subprocess
import tempfile

SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
FILES = ("ca.pem", "ca.key", "server.pem", "server.key")


def _openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def ensure_tls_material(state_dir):
    """Return (ca_file, cert_file, key_file) in state_dir, creating them on first use."""
    paths = [os.path.join(state_dir, name) for name in FILES]
    if all(os.path.exists(p) for p in paths):
        return paths[0], paths[2], paths[3]
    scratch = tempfile.mkdtemp(prefix=".tls-", dir=state_dir)
    try:
        ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
                 "-subj", "/O=smtp-oauth2-relay tests/CN=Stand-in Test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=scratch)
        _openssl("req", "-new", *ec_key, "-keyout", "server.key", "-out", "server.csr",
                 "-subj", "/CN=localhost", cwd=scratch)
        with open(os.path.join(scratch, "server.ext"), "w", encoding="ascii") as f:
            f.write(SERVER_EXTENSIONS)
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "825",
                 "-extfile", "server.ext", "-out", "server.pem", cwd=scratch)
        for name in reversed(FILES):  # ca.pem last: its presence means the set is complete
            os.replace(os.path.join(scratch, name), os.path.join(state_dir, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return paths[0], paths[2], paths[3]


def server_context(cert_file, key_file):
    """TLS 1.2+ server context, as Exchange Online requires for SMTP AUTH."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
