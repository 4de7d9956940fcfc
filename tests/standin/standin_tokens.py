"""The stand-in's identity platform: refresh tokens, access tokens and the token endpoint's decisions.

It answers like the Microsoft identity platform v2.0 token endpoint (RFC 6749 section 5 plus
Microsoft's AADSTS error bodies), so that the relay's error handling is tested against realistic
replies: act on `error`, not on AADSTS numbers. Tokens are random and REALLY checked: the SMTP side
accepts an access token only if this authority issued it, for that user, with an SMTP scope, and it
has not expired. Refresh and access tokens are kept in <state-dir>/tokens.json so a restarted stand-in
still knows the tokens it issued, as Microsoft would. Everything here is pure apart from that file
and the injectable clock; HTTP lives in standin_http.py.
"""
import datetime
import json
import os
import secrets
import threading
import time
import uuid

from standin_appauth import AssertionVerifier, check_app_scope

MICROSOFT_SMTP_SCOPES = {
    "https://outlook.office.com/smtp.send", "https://outlook.office365.com/smtp.send",
    "https://outlook.office.com/.default", "https://outlook.office365.com/.default",
}
GOOGLE_SMTP_SCOPES = {"https://mail.google.com/"}
DEFAULT_SCOPE = {"microsoft": "https://outlook.office.com/SMTP.Send offline_access",
                 "google": "https://mail.google.com/"}
# OpenID Connect scopes shape the response (id_token, refresh_token) but are not resource scopes.
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
# Grant types a later task adds (authorization code with PKCE, device code).
FUTURE_GRANTS = {"authorization_code", "urn:ietf:params:oauth:grant-type:device_code"}
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7521 section 4.2
GOOGLE_DESCRIPTIONS = {"invalid_grant": "Token has been expired or revoked.",
                       "invalid_client": "Unauthorized", "unauthorized_client": "Unauthorized"}


class TokenError(Exception):
    """An OAuth error reply: HTTP status, RFC 6749 `error`, Microsoft AADSTS code and text."""

    def __init__(self, status, error, aadsts, description):
        super().__init__(f"{error} (AADSTS{aadsts})")
        self.status, self.error, self.aadsts, self.description = status, error, aadsts, description


def error_body(err, flavor, now):
    """The JSON body Microsoft (or Google) sends with an OAuth error."""
    if flavor == "google":
        return {"error": err.error,
                "error_description": GOOGLE_DESCRIPTIONS.get(err.error, err.description)}
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return {
        "error": err.error,
        "error_description": (f"AADSTS{err.aadsts}: {err.description} Trace ID: {trace_id} "
                              f"Correlation ID: {correlation_id} "
                              f"Timestamp: {stamp.strftime('%Y-%m-%d %H:%M:%SZ')}"),
        "error_codes": [err.aadsts],
        "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={err.aadsts}",
    }


def _missing(parameter):
    return TokenError(400, "invalid_request", 900144,
                      f"The request body must contain the following parameter: '{parameter}'.")


class TokenAuthority:
    def __init__(self, db_path, *, client_id, client_secret, flavor="microsoft", clock=time.time,
                 client_cert=None):
        self._lock = threading.Lock()
        self._db_path = db_path
        self._clock = clock
        self.client_id, self.client_secret, self.flavor = client_id, client_secret, flavor
        self._refresh = {}   # token -> {"user", "scope", "valid", "revoked", "issued_at"}
        self._access = {}    # token -> {"user", "scope", "expires_at"}
        self._latest_refresh = None
        self.user_flows = None  # standin_userflows.UserFlows: authorization code and device code grants
        # The app's registered certificate (--client-cert): enables JWT client assertions.
        self._assertions = AssertionVerifier(client_cert, client_id, TokenError) if client_cert else None
        if os.path.exists(db_path):
            with open(db_path, encoding="utf-8") as f:
                saved = json.load(f)
            self._refresh, self._access = saved["refresh"], saved["access"]
            self._latest_refresh = saved.get("latest_refresh")

    # --- state changes (each one saved, so a restart forgets nothing) -------------------------

    def _save_locked(self):
        now = self._clock()
        self._access = {t: a for t, a in self._access.items() if a["expires_at"] > now}
        temp = f"{self._db_path}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"refresh": self._refresh, "access": self._access,
                       "latest_refresh": self._latest_refresh}, f)
        os.replace(temp, self._db_path)

    def add_refresh_token(self, token, user, scope=None, replace=True):
        with self._lock:
            if not replace and token in self._refresh:
                return
            self._refresh[token] = {"user": user, "scope": scope or DEFAULT_SCOPE[self.flavor],
                                    "valid": True, "revoked": False, "issued_at": self._clock()}
            self._latest_refresh = token
            self._save_locked()

    def expire_access_tokens(self):
        """Every access token issued so far stops working (as after a revocation Graph notices)."""
        with self._lock:
            for grant in self._access.values():
                grant["revoked"] = True  # kept (not purged), so the check can say why it fails
            self._save_locked()

    def graph_grant(self, token):
        """What Graph learns from a bearer token: {"user", "scope", "app"}, or {"error": why} (safe to log)."""
        with self._lock:
            issued = self._access.get(token)
            if issued is None:
                return {"error": "IDX14100: JWT is not well formed; not issued by this tenant's authority."}
            if issued["expires_at"] <= self._clock() or issued.get("revoked"):
                return {"error": "Lifetime validation failed, the token is expired."}
            return {"user": issued.get("user"), "scope": issued["scope"], "app": bool(issued.get("app"))}

    def revoke_all(self):
        """Admin revocation / password change: every refresh token dies (AADSTS50173)."""
        with self._lock:
            for grant in self._refresh.values():
                grant["valid"], grant["revoked"] = False, True
            self._save_locked()

    def valid_refresh_token_count(self):
        with self._lock:
            return sum(1 for g in self._refresh.values() if g["valid"])

    def latest_refresh_token(self):
        with self._lock:
            token = self._latest_refresh
            return (token, self._refresh[token]["user"]) if token else (None, None)

    # --- token endpoint (RFC 6749 section 6: refreshing an access token) ----------------------

    def token_request(self, form, settings, endpoint_url=None):
        """Decide a POST to the token endpoint; returns (status, json body, grant_type, outcome)."""
        grant_type = form.get("grant_type", "")
        try:
            if settings["token_mode"] == "server_error":
                raise TokenError(503, "temporarily_unavailable", 90033,
                                 "A transient error has occurred. Please try again.")
            if "client_assertion" in form or "client_assertion_type" in form:
                self._authenticate_client_assertion(form, endpoint_url)
            else:
                self._authenticate_client(form, settings)
            if not grant_type:
                raise _missing("grant_type")
            if grant_type == "refresh_token":
                body = self._refresh_token_grant(form, settings)
            elif self.user_flows is not None and grant_type in self.user_flows.GRANTS:
                body = self.user_flows.token_grant(grant_type, form, settings)
            elif grant_type == "client_credentials" and self.flavor == "microsoft":
                body = self._client_credentials_grant(form, settings)
            elif grant_type in FUTURE_GRANTS:
                raise TokenError(400, "unsupported_grant_type", 70003,
                                 f"The app requested an unsupported grant type '{grant_type}'.")
            else:
                raise TokenError(400, "unsupported_grant_type", 70003,
                                 "The app requested an unsupported grant type.")
            return 200, body, grant_type, "ok"
        except TokenError as err:
            return err.status, error_body(err, self.flavor, self._clock()), grant_type, err.error

    def _authenticate_client(self, form, settings):
        client_id = form.get("client_id", "")
        if not client_id:
            raise _missing("client_id")
        if client_id != self.client_id:
            raise TokenError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the "
                             "directory. This can happen if the application has not been installed "
                             "by the administrator of the tenant.")
        secret = form.get("client_secret")
        if secret is None and settings["token_mode"] != "invalid_client":
            raise TokenError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        # Constant-time compare: the stand-in should not teach bad habits.
        if (settings["token_mode"] == "invalid_client"
                or not secrets.compare_digest(secret.encode(), self.client_secret.encode())):
            raise TokenError(401, "invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the "
                             "request is the client secret value, not the client secret ID, for a "
                             f"secret added to app '{self.client_id}'.")

    def _authenticate_client_assertion(self, form, endpoint_url):
        """RFC 7523 section 2.2: a signed JWT instead of the client secret."""
        if form.get("client_id", self.client_id) != self.client_id:
            raise TokenError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{form.get('client_id')}' was not found in the directory.")
        if form.get("client_assertion_type") != JWT_BEARER_ASSERTION or not form.get("client_assertion"):
            raise TokenError(400, "invalid_request", 50027, "Invalid client_assertion_type or client_assertion.")
        if self._assertions is None:
            raise TokenError(401, "invalid_client", 700027,
                             "No certificate is registered on the application (start the stand-in with --client-cert).")
        self._assertions.verify(form["client_assertion"], endpoint_url, int(self._clock()))

    def _client_credentials_grant(self, form, settings):
        """RFC 6749 section 4.4: an app token, no refresh token; its SMTP use is limited to the
        mailboxes the Exchange admin granted (control setting app_mailboxes)."""
        scope = check_app_scope(form.get("scope", ""), TokenError)
        with self._lock:
            lifetime = settings["token_lifetime"]
            access = "EwA" + secrets.token_urlsafe(90)
            self._access[access] = {"user": None, "app": True, "scope": scope,
                                    "expires_at": self._clock() + lifetime}
            self._save_locked()
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                "access_token": access}

    def _refresh_token_grant(self, form, settings):
        presented = form.get("refresh_token", "")
        if not presented:
            raise _missing("refresh_token")
        with self._lock:
            grant = self._refresh.get(presented)
            if settings["token_mode"] == "consent_required":
                # Consent withdrawn (or never granted for a new scope): Microsoft answers the refresh
                # with invalid_grant and AADSTS65001, which only an admin can fix.
                raise TokenError(400, "invalid_grant", 65001,
                                 "The user or administrator has not consented to use the application "
                                 "with ID 'relay-client-id'. Send an interactive authorization request "
                                 "for this user and resource.")
            if settings["token_mode"] == "invalid_grant":
                raise TokenError(400, "invalid_grant", 700082,
                                 "The refresh token has expired due to inactivity. The token was "
                                 "issued on 2025-01-01T00:00:00Z and was inactive for 90.00:00:00.")
            if grant is None or (not grant["valid"] and not grant["revoked"]):
                raise TokenError(400, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
            if grant["revoked"]:
                raise TokenError(400, "invalid_grant", 50173,
                                 "The provided grant has expired due to it being revoked, a fresh "
                                 "auth token is needed. The user might have changed or reset their "
                                 "password.")
            scope = form.get("scope") or grant["scope"]
            lifetime = settings["token_lifetime"]
            access = "EwB" + secrets.token_urlsafe(90)
            self._access[access] = {"user": grant["user"], "scope": scope,
                                    "expires_at": self._clock() + lifetime}
            granted = " ".join(s for s in scope.split() if s.lower() not in OIDC_SCOPES)
            body = {"token_type": "Bearer", "scope": granted, "expires_in": lifetime,
                    "ext_expires_in": lifetime, "access_token": access}
            # Microsoft sends a new refresh token on every refresh; Google keeps the old one.
            if self.flavor == "microsoft":
                fresh = "0.A" + secrets.token_urlsafe(60)
                self._refresh[fresh] = dict(grant, issued_at=self._clock())
                self._latest_refresh = fresh
                if settings["rotation"] == "invalidate":
                    grant["valid"] = False
                body["refresh_token"] = fresh
            self._save_locked()
            return body

    def issue_tokens(self, user, scope, settings):
        """A fresh refresh + access token for `user` after a person signed in (code or device grant)."""
        with self._lock:
            lifetime = settings["token_lifetime"]
            access = "EwB" + secrets.token_urlsafe(90)
            self._access[access] = {"user": user, "scope": scope, "expires_at": self._clock() + lifetime}
            refresh = "0.A" + secrets.token_urlsafe(60)
            self._refresh[refresh] = {"user": user, "scope": scope, "valid": True, "revoked": False,
                                      "issued_at": self._clock()}
            self._latest_refresh = refresh
            self._save_locked()
        granted = " ".join(s for s in scope.split() if s.lower() not in OIDC_SCOPES)
        body = {"token_type": "Bearer", "scope": granted, "expires_in": lifetime,
                "ext_expires_in": lifetime, "access_token": access}
        if "offline_access" in scope.split():
            body["refresh_token"] = refresh
        return body

    # --- SMTP side ------------------------------------------------------------------------------

    def check_bearer(self, user, token, app_mailboxes=()):
        """None if `token` lets `user` send mail now, else a reason safe to log (no token in it).
        App tokens (client credentials) may log in as any mailbox in `app_mailboxes`."""
        with self._lock:
            issued = self._access.get(token)
            if issued is None:
                return "token not issued by this authority"
            if issued["expires_at"] <= self._clock() or issued.get("revoked"):
                return "token expired"
            if issued.get("app"):
                if user.lower() not in {m.lower() for m in app_mailboxes}:
                    return "app has no access to this mailbox (Add-MailboxPermission missing)"
            elif issued["user"].lower() != user.lower():
                return "token issued for another user"
            smtp_scopes = MICROSOFT_SMTP_SCOPES if self.flavor == "microsoft" else GOOGLE_SMTP_SCOPES
            if not any(s.lower() in smtp_scopes for s in issued["scope"].split()):
                return "token has no SMTP scope"
            return None
