"""Parsing of the OAuth2 SASL client responses the stand-in accepts (pure functions).

XOAUTH2 (Google's and Microsoft's format): "user=" user ^A "auth=Bearer " token ^A ^A.
OAUTHBEARER (RFC 7628 section 3.1): a GS2 header "n,a=<authzid>," then ^A-separated key=value pairs
ending in ^A^A, one of them "auth=Bearer <token>". Both are strict: a response that is not exactly in
the format is a failed authentication, because a lenient stand-in would hide a relay bug that the
real server punishes.
"""
import base64
import binascii
import json


class SaslError(ValueError):
    """The client response is not in the mechanism's format."""


def decode_response(line):
    """Base64 client response (RFC 4954 section 4: "=" means empty) to bytes; None if undecodable."""
    if line == "=":
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return None


def _bearer(fields):
    auth = fields.get("auth", "")
    if not auth.startswith("Bearer ") or len(auth) == len("Bearer "):
        raise SaslError("no 'auth=Bearer <token>' field")
    return auth[len("Bearer "):]


def _kv_fields(text):
    """^A-separated key=value pairs terminated by ^A^A (RFC 7628 section 3.1 kvsep)."""
    if not text.endswith("\x01\x01"):
        raise SaslError("response does not end with ^A^A")
    fields = {}
    for part in text[:-2].split("\x01"):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise SaslError("malformed key=value field")
        fields[key] = value
    return fields


def parse_xoauth2(raw):
    """Return (user, token) from an XOAUTH2 client response."""
    text = raw.decode("utf-8", "strict")
    fields = _kv_fields(text)
    if set(fields) != {"user", "auth"} or not fields["user"]:
        raise SaslError("XOAUTH2 needs exactly user= and auth= fields")
    return fields["user"], _bearer(fields)


def _gs2_name(value):
    # RFC 5801 section 4: "," and "=" in the authzid are escaped as =2C and =3D.
    if "=" in value.replace("=2C", "").replace("=3D", ""):
        raise SaslError("bad escape in authzid")
    return value.replace("=2C", ",").replace("=3D", "=")


def parse_oauthbearer(raw):
    """Return (user, token, fields) from an OAUTHBEARER client response."""
    text = raw.decode("utf-8", "strict")
    if not text.startswith("n,"):
        raise SaslError("GS2 header must start with 'n,' (no channel binding)")
    authzid_part, sep, rest = text[2:].partition(",")
    if not sep or not rest.startswith("\x01"):
        raise SaslError("malformed GS2 header")
    if authzid_part and not authzid_part.startswith("a="):
        raise SaslError("malformed authzid")
    user = _gs2_name(authzid_part[2:]) if authzid_part else ""
    fields = _kv_fields(rest[1:])
    if not user:
        raise SaslError("OAUTHBEARER without a=<user> is not accepted here")
    return user, _bearer(fields), fields


def google_failure_challenge(status):
    """The 334 challenge Google sends on a failed token (status "401" for XOAUTH2,
    "invalid_token" for OAUTHBEARER per RFC 7628 section 3.2.2)."""
    detail = {"status": status, "schemes": "bearer", "scope": "https://mail.google.com/"}
    return base64.b64encode(json.dumps(detail).encode()).decode()
