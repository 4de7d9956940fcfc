"""App-only (client credentials) checks of the stand-in's identity platform.

Microsoft's client credentials grant (RFC 6749 section 4.4) authenticates the app with its secret
or with a JWT client assertion (RFC 7523 section 2.2) signed by the key of a certificate registered
on the app. This module verifies such an assertion as Entra ID does: the header names the registered
certificate by thumbprint (x5t#S256, or the older SHA-1 x5t), the RS256/PS256 signature verifies with
its public key (checked by the `openssl` command, so the stand-in does not re-implement RSA), aud is
the token endpoint, iss = sub = client_id, the time claims hold, and each jti is used only once.
Failures raise standin_tokens.TokenError with Microsoft's AADSTS codes.
"""
import base64
import binascii
import hashlib
import json
import os
import ssl
import subprocess
import tempfile
import threading

CLOCK_SKEW = 300  # seconds Entra ID tolerates on nbf/exp


def _b64url_decode(text):
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AssertionVerifier:
    def __init__(self, cert_file, client_id, error_class):
        self.client_id, self._error = client_id, error_class
        with open(cert_file, encoding="ascii") as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        self.thumbprints = {"x5t#S256": _b64url(hashlib.sha256(der).digest()),
                            "x5t": _b64url(hashlib.sha1(der).digest())}
        self._dir = tempfile.mkdtemp(prefix="standin-appauth-")
        self._public_key = os.path.join(self._dir, "public.pem")
        subprocess.run(["openssl", "x509", "-in", cert_file, "-pubkey", "-noout", "-out", self._public_key],
                       check=True, capture_output=True)
        self._lock = threading.Lock()
        self._seen_jti = {}  # jti -> exp, forgotten once expired

    def _fail(self, aadsts, description):
        return self._error(401, "invalid_client", aadsts, description)

    def verify(self, assertion, audience, now):
        """None when `assertion` authenticates the client for a request to `audience`, else raises."""
        parts = assertion.split(".")
        decoded = [_b64url_decode(p) for p in parts] if len(parts) == 3 else [None]
        try:
            header, claims = json.loads(decoded[0]), json.loads(decoded[1])
        except (TypeError, ValueError, IndexError):
            raise self._fail(50027, "JWT token is invalid or malformed.") from None
        if not isinstance(header, dict) or not isinstance(claims, dict) or decoded[2] is None:
            raise self._fail(50027, "JWT token is invalid or malformed.")
        if header.get("alg") not in ("RS256", "PS256") or header.get("typ", "JWT") != "JWT":
            raise self._fail(5002738, f"Invalid JWT token. '{header.get('alg')}' is not a supported signature algorithm.")
        if not any(header.get(k) == v for k, v in self.thumbprints.items()):
            raise self._fail(700027, "The certificate with identifier used to sign the client assertion is "
                                     "not registered on application.")
        if not self._signature_ok(header["alg"], f"{parts[0]}.{parts[1]}".encode(), decoded[2]):
            raise self._fail(700027, "Client assertion failed signature validation.")
        if claims.get("aud") != audience:
            raise self._fail(700212, "No matching federated identity record found for presented assertion audience.")
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise self._fail(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, int) or not isinstance(nbf, int) or exp <= now - CLOCK_SKEW or nbf > now + CLOCK_SKEW:
            raise self._fail(700024, "Client assertion is not within its valid time range.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise self._fail(50027, "JWT token is invalid: jti is missing.")
        with self._lock:
            self._seen_jti = {j: e for j, e in self._seen_jti.items() if e > now - CLOCK_SKEW}
            if jti in self._seen_jti:
                raise self._fail(7000272, "The client assertion has been used before (jti replay).")
            self._seen_jti[jti] = exp

    def _signature_ok(self, alg, signing_input, signature):
        with tempfile.TemporaryDirectory(dir=self._dir) as work:
            data, sig = os.path.join(work, "data"), os.path.join(work, "sig")
            with open(data, "wb") as f:
                f.write(signing_input)
            with open(sig, "wb") as f:
                f.write(signature)
            command = ["openssl", "dgst", "-sha256", "-verify", self._public_key, "-signature", sig]
            if alg == "PS256":
                command += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
            return subprocess.run(command + [data], capture_output=True).returncode == 0


def check_app_scope(scope, error_class):
    """Client credentials need exactly one scope, the resource's /.default (AADSTS1002012)."""
    scopes = scope.split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise error_class(400, "invalid_scope", 1002012,
                          f"The provided value for scope {scope} is not valid. Client credential flows must "
                          "have a scope value with /.default suffixed to the resource identifier "
                          "(application ID URI).")
    return scopes[0]
