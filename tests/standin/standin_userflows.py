"""The stand-in's user sign-in flows: authorization code with PKCE and the device code grant.

  GET  /{tenant}/oauth2/v2.0/authorize   auto-approves (a signed-in, consenting user) and answers 302 to
                                         redirect_uri with `code` and `state` (RFC 6749 section 4.1.2)
  POST /{tenant}/oauth2/v2.0/devicecode  RFC 8628 section 3.1/3.2, Microsoft's response shape
  POST /_device/approve                  test-only: {"user_code": "...", "decision": "approve"|"decline"}
  token endpoint grant_type=authorization_code and urn:ietf:params:oauth:grant-type:device_code

Modelled on the Microsoft identity platform: codes are single use and live 10 minutes, PKCE S256 is
verified (AADSTS501481 on a wrong verifier), the redirect_uri of the redemption must equal the one
of the authorize request, loopback redirects may use any port, device codes live `device_expires_in`
seconds (900 by default) and polling faster than `interval` gets `slow_down`. A successful grant
issues a refresh and access token through TokenAuthority, so the SMTP side accepts them.
Pure apart from the clock; HTTP lives in standin_http.py.
"""
import base64
import hashlib
import secrets
import threading
import urllib.parse

from standin_tokens import TokenError

AUTH_CODE_GRANT = "authorization_code"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_FLOW_GRANTS = {AUTH_CODE_GRANT, DEVICE_GRANT}
CODE_LIFETIME = 600
LOOPBACK_HOSTS = {"localhost", "127.0.0.1"}


def s256(verifier):
    """RFC 7636 section 4.2: BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def is_loopback_redirect(uri):
    parts = urllib.parse.urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and not parts.query and not parts.fragment


class AuthorizeRefused(Exception):
    """An authorize request that must not redirect (bad client or redirect_uri): shown as a page."""


class UserFlows:
    GRANTS = USER_FLOW_GRANTS

    def __init__(self, authority, user, clock):
        self._lock = threading.Lock()
        self._authority, self.user, self._clock = authority, user, clock
        self._codes = {}    # code -> {"client_id", "redirect_uri", "challenge", "scope", "expires_at", "used"}
        self._devices = {}  # device_code -> {"user_code", "scope", "expires_at", "state", "interval", "last_poll"}

    # --- authorization code (RFC 6749 4.1, RFC 7636) -------------------------------------------

    def authorize(self, query, settings):
        """Decide GET /authorize; returns the Location to redirect to, or raises AuthorizeRefused."""
        client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
        if client_id != self._authority.client_id:
            raise AuthorizeRefused(f"AADSTS700016: Application with identifier '{client_id}' was not found.")
        if not is_loopback_redirect(redirect_uri):
            raise AuthorizeRefused("AADSTS50011: The redirect URI specified in the request does not match the "
                                   "redirect URIs configured for the application.")

        def back(**params):
            if "state" in query:
                params["state"] = query["state"]
            return redirect_uri + "?" + urllib.parse.urlencode(params)

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type",
                        error_description="AADSTS700054: response_type 'code' is expected.")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back(error="invalid_request",
                        error_description="AADSTS501491: code_challenge with code_challenge_method S256 is required.")
        if settings["authorize_mode"] == "deny":
            return back(error="access_denied",
                        error_description="AADSTS65004: User declined to consent to access the app.")
        code = "0.AUthC" + secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri,
                                 "challenge": query["code_challenge"], "scope": query.get("scope", ""),
                                 "expires_at": self._clock() + CODE_LIFETIME, "used": False}
        return back(code=code, session_state=secrets.token_hex(8))

    def _code_grant(self, form, settings):
        code = form.get("code", "")
        if not code:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'code'.")
        with self._lock:
            issued = self._codes.get(code)
            if issued is None:
                raise TokenError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
            if issued["used"]:
                raise TokenError(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, "
                                 "please retry with a new valid code or use an existing refresh token.")
            if issued["expires_at"] <= self._clock():
                raise TokenError(400, "invalid_grant", 70008, "The provided authorization code or refresh token "
                                 "has expired due to inactivity.")
            issued["used"] = True  # single use, even when the rest of the request is wrong
        if form.get("redirect_uri", "") != issued["redirect_uri"]:
            raise TokenError(400, "invalid_grant", 500112, "The reply address does not match the reply address "
                             "provided when requesting Authorization code.")
        verifier = form.get("code_verifier", "")
        if not verifier or s256(verifier) != issued["challenge"]:
            raise TokenError(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge "
                             "supplied in the authorization request.")
        return self._authority.issue_tokens(self.user, form.get("scope") or issued["scope"], settings)

    # --- device code (RFC 8628) ---------------------------------------------------------------

    def device_authorization(self, form, settings):
        """Decide POST /devicecode; returns (status, body)."""
        if form.get("client_id") != self._authority.client_id:
            return 400, {"error": "unauthorized_client", "error_description":
                         f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found."}
        device_code = "DAQABAAEAAA" + secrets.token_urlsafe(48)
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        interval, lifetime = settings["device_interval"], settings["device_expires_in"]
        with self._lock:
            self._devices[device_code] = {"user_code": user_code, "scope": form.get("scope", ""),
                                          "expires_at": self._clock() + lifetime, "state": "pending",
                                          "interval": interval, "last_poll": None,
                                          "slow_downs": settings["device_slow_down"]}
        uri = "https://microsoft.com/devicelogin"
        return 200, {"user_code": user_code, "device_code": device_code, "verification_uri": uri,
                     "expires_in": lifetime, "interval": interval,
                     "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
                                f"{user_code} to authenticate."}

    def decide_device(self, user_code, decision):
        """Test-only: the user approves or declines at the verification page. False if unknown."""
        with self._lock:
            for device in self._devices.values():
                if device["user_code"] == user_code and device["state"] == "pending":
                    device["state"] = "approved" if decision == "approve" else "declined"
                    return True
        return False

    def _device_grant(self, form, settings):
        with self._lock:
            device = self._devices.get(form.get("device_code", ""))
            if device is None:
                raise TokenError(400, "bad_verification_code", 70019, "Verification code was not recognized.")
            now = self._clock()
            if device["expires_at"] <= now:
                raise TokenError(400, "expired_token", 70019, "Verification code expired.")
            too_soon = device["last_poll"] is not None and now - device["last_poll"] < device["interval"] - 0.2
            device["last_poll"] = now
            if device["slow_downs"] > 0 or too_soon:
                device["slow_downs"] = max(0, device["slow_downs"] - 1)
                device["interval"] += 5  # RFC 8628 3.5: the client must add 5 s, so do we
                raise TokenError(400, "slow_down", 70016, "Polling too fast: slow down.")
            if device["state"] == "pending":
                raise TokenError(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. "
                                 "Authorization is pending. Continue polling.")
            if device["state"] == "declined":
                raise TokenError(400, "authorization_declined", 70000, "The user declined the sign-in request.")
            if device["state"] == "redeemed":
                raise TokenError(400, "invalid_grant", 70000, "The device code was already redeemed.")
            device["state"] = "redeemed"
            scope = device["scope"]
        return self._authority.issue_tokens(self.user, form.get("scope") or scope, settings)

    def token_grant(self, grant_type, form, settings):
        if grant_type == AUTH_CODE_GRANT:
            return self._code_grant(form, settings)
        return self._device_grant(form, settings)
