"""Runtime switches and counters of the Microsoft stand-in.

Failure tests flip the stand-in into bad states (token endpoint down, throttling, SendAs denied, ...)
through POST /_control and read what happened through GET /_stats. Both sides are touched from the
HTTP threads and from the asyncio SMTP thread, so every access goes through one lock. Validation of
a control request is a pure function, so a typo in a test ("throtle_every_n") fails loudly instead
of silently testing nothing.
"""
import re
import threading
import time

DEFAULT_SETTINGS = {
    "token_mode": "ok",
    "token_delay_ms": 0,
    "token_lifetime": 3600,
    "rotation": "keep",
    "smtp_up": True,
    "throttle_every_n": 0,
    "max_sessions_per_user": 3,  # Exchange Online: at most 3 concurrent connections per mailbox
    "fail_mail_with": "",
    "fail_auth_with": "",
    # Sign-in flows (standin_userflows.py): authorize auto-approves or denies; device code timing.
    "authorize_mode": "approve",
    "device_interval": 5,
    "device_expires_in": 900,  # Microsoft: device codes live 15 minutes
    "device_slow_down": 0,     # answer the next N polls with slow_down
    "app_mailboxes": [],         # mailboxes app-only tokens may send as (Exchange Add-MailboxPermission)
    "basic_auth_password": "",   # non-empty: AUTH PLAIN/LOGIN accepted with it (basic auth still on)
    "reject_rcpt": {},  # recipient address (lower case) -> RCPT reply line, e.g. "550 5.1.1 User unknown"
    # SendAs (issue 11): mailbox (lower case) -> addresses it was granted SendAs on (its own always
    # passes). send_as_check says where Exchange refuses any other sender: "mail_from" answers the
    # envelope with 550 5.7.60 at MAIL FROM (a From: header at end of data with 554 5.2.252), and
    # "end_of_data" answers both with 554 5.2.252 SendAsDenied after the data, as Exchange does for
    # submissions it accepted first.
    "send_as": {},
    "send_as_check": "mail_from",
    # Continuous-error throttling (PROVIDERS.md): once a mailbox has had this many SendAs refusals,
    # every later submission of it is refused with 5.2.251 (0 = never). Shows a relay that keeps
    # resending a refused sender gets its whole mailbox stopped.
    "send_as_throttle_after": 0,
    # Broken or hostile token endpoints (issue 13): the JSON text sent as expires_in in successful
    # responses ("" = the real lifetime), and bytes of padding added to every token response.
    "token_expires_in_json": "",
    "token_padding_bytes": 0,
    # An outage script (issue 11, item 4): each token request takes the next step, then the endpoint
    # answers normally again. "500", "503", "429" answer that status with temporarily_unavailable
    # ("429:30" adds Retry-After: 30); "hang:20" holds the request 20 s and closes without an answer.
    "token_script": [],
    # Microsoft Graph (standin_graph.py): force answers, hold requests, the app's application roles.
    "graph_fail": {},            # {"status": 429, "code": "...", "message": "...", "retry_after": "5", "count": N}
    "graph_delay_ms": 0,
    "graph_app_roles": ["Mail.Send"],
}
AUTHORIZE_MODES = ("approve", "deny")
TOKEN_MODES = ("ok", "invalid_grant", "server_error", "invalid_client", "consent_required")
ROTATIONS = ("keep", "invalidate")
ACTIONS = ("add_refresh_token", "revoke_all_refresh_tokens", "expire_access_tokens")
SEND_AS_CHECKS = ("mail_from", "end_of_data")

# A reply line as an SMTP server sends it (RFC 5321 section 4.2): code, space, text, no line break.
REPLY_LINE = re.compile(r"^[2-5][0-9][0-9] [^\r\n]+$")
TOKEN_STEP = re.compile(r"^(?:(?:429|5[0-9][0-9])(?::[0-9]{1,4})?|hang:[0-9]{1,3})$")


class ControlError(ValueError):
    """A control request the stand-in refuses; the message names the offending key."""


def _check_int(key, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ControlError(f"{key} must be an integer >= {minimum}")
    return value


def parse_control_request(request):
    """Split a /_control JSON object into (settings changes, actions), validating every key."""
    if not isinstance(request, dict):
        raise ControlError("control request must be a JSON object")
    changes, actions = {}, {}
    for key, value in request.items():
        if key == "token_mode":
            if value not in TOKEN_MODES:
                raise ControlError(f"token_mode must be one of {', '.join(TOKEN_MODES)}")
        elif key == "rotation":
            if value not in ROTATIONS:
                raise ControlError(f"rotation must be one of {', '.join(ROTATIONS)}")
        elif key == "token_expires_in_json":
            if not isinstance(value, str):
                raise ControlError("token_expires_in_json must be a string of JSON, e.g. \"1e10\"")
        elif key == "graph_fail":
            if not isinstance(value, dict) or (value and (
                    not isinstance(value.get("status"), int) or not 400 <= value["status"] <= 599
                    or set(value) - {"status", "code", "message", "retry_after", "count"}
                    or not isinstance(value.get("count", 0), int) or value.get("count", 0) < 0)):
                raise ControlError('graph_fail must be {} or {"status": 4xx/5xx, "code": "...", "message": "...", '
                                   '"retry_after": "5", "count": N (0 = every request)}')
        elif key == "token_script":
            if not isinstance(value, list) or not all(isinstance(v, str) and TOKEN_STEP.match(v) for v in value):
                raise ControlError('token_script must be a list of steps like "500", "429:30" or "hang:20"')
        elif key == "graph_app_roles":
            if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
                raise ControlError("graph_app_roles must be a list of role names")
        elif key in ("token_delay_ms", "throttle_every_n", "graph_delay_ms", "token_padding_bytes",
                     "send_as_throttle_after"):
            _check_int(key, value, 0)
        elif key in ("token_lifetime", "max_sessions_per_user"):
            _check_int(key, value, 1)
        elif key == "authorize_mode":
            if value not in AUTHORIZE_MODES:
                raise ControlError(f"authorize_mode must be one of {', '.join(AUTHORIZE_MODES)}")
        elif key in ("device_interval", "device_expires_in"):
            _check_int(key, value, 1)
        elif key == "device_slow_down":
            _check_int(key, value, 0)
        elif key == "smtp_up":
            if not isinstance(value, bool):
                raise ControlError("smtp_up must be true or false")
        elif key in ("fail_mail_with", "fail_auth_with"):
            if not isinstance(value, str) or (value and not REPLY_LINE.match(value)):
                raise ControlError(f'{key} must be "" or a reply line like "550 5.7.60 text"')
        elif key == "app_mailboxes":
            if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                raise ControlError("app_mailboxes must be a list of addresses")
        elif key == "basic_auth_password":
            if not isinstance(value, str):
                raise ControlError("basic_auth_password must be a string")
        elif key == "reject_rcpt":
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and REPLY_LINE.match(v) for k, v in value.items()):
                raise ControlError('reject_rcpt must map addresses to reply lines like "550 5.1.1 User unknown"')
            value = {k.lower(): v for k, v in value.items()}
        elif key == "send_as":
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) for a in v)
                    for k, v in value.items()):
                raise ControlError('send_as must map mailboxes to address lists, e.g. {"scanner@contoso.com": '
                                   '["invoices@contoso.com"]}')
            value = {k.lower(): [a.lower() for a in v] for k, v in value.items()}
        elif key == "send_as_check":
            if value not in SEND_AS_CHECKS:
                raise ControlError(f"send_as_check must be one of {', '.join(SEND_AS_CHECKS)}")
        elif key == "add_refresh_token":
            if (not isinstance(value, dict) or not isinstance(value.get("token"), str)
                    or not value["token"] or not isinstance(value.get("user"), str)):
                raise ControlError('add_refresh_token needs {"token": "...", "user": "..."}')
            actions[key] = value
            continue
        elif key in ("revoke_all_refresh_tokens", "expire_access_tokens"):
            if not isinstance(value, bool):
                raise ControlError(f"{key} must be true or false")
            actions[key] = value
            continue
        else:
            raise ControlError(f"unknown control key {key!r}")
        changes[key] = value
    return changes, actions


class Settings:
    """The current switches; a change to throttle_every_n restarts its message count."""

    def __init__(self, **overrides):
        self._lock = threading.Lock()
        self._values = dict(DEFAULT_SETTINGS, **overrides)
        self._messages_since_throttle_change = 0

    def get(self, key):
        with self._lock:
            return self._values[key]

    def snapshot(self):
        with self._lock:
            return dict(self._values)

    def update(self, changes):
        with self._lock:
            if "throttle_every_n" in changes:
                self._messages_since_throttle_change = 0
            self._values.update(changes)

    def may_send_as(self, mailbox, address):
        """Exchange's SendAs rule: the mailbox itself, or an address it was granted SendAs on."""
        address = (address or "").lower()
        with self._lock:
            granted = self._values["send_as"].get((mailbox or "").lower(), [])
        return address == (mailbox or "").lower() or address in granted

    def take_token_step(self):
        """The next step of token_script ("" when it is done), removed from the script."""
        with self._lock:
            script = self._values["token_script"]
            if not script:
                return ""
            self._values["token_script"] = script[1:]
            return script[0]

    def next_message_is_throttled(self):
        """Count one end of data; True for every Nth while throttle_every_n = N > 0."""
        with self._lock:
            every_n = self._values["throttle_every_n"]
            if every_n <= 0:
                return False
            self._messages_since_throttle_change += 1
            return self._messages_since_throttle_change % every_n == 0


class Stats:
    """Counters for /_stats, plus the per-user session count the concurrency limit needs."""

    def __init__(self):
        self._lock = threading.Lock()
        self._token_requests = {}    # grant_type -> outcome -> count
        self._token_log = []         # {"at": answered (Unix time), "outcome": ...} per token request
        self._auth = {}              # mechanism -> {"success": n, "failure": n}
        self._sessions_now = {}      # user (lower case) -> authenticated sessions open now
        self._sessions_max = {}      # user -> highest concurrent count seen
        self._smtp_connections = 0
        self._messages_accepted = 0
        self._messages_rejected = 0
        self._accepted_at = []
        self._last_auth_mechanism = None
        self._discarded_after_starttls = 0
        self._graph_requests = []    # {"mailbox", "status", "started", "ended"} per sendMail request
        self._graph_max_concurrent = {}
        self._send_as_denied = {}     # mailbox (lower case) -> SendAs refusals (either transport)

    def send_as_denials(self, mailbox):
        with self._lock:
            return self._send_as_denied.get((mailbox or "").lower(), 0)

    def send_as_denied(self, mailbox):
        with self._lock:
            key = (mailbox or "").lower()
            self._send_as_denied[key] = self._send_as_denied.get(key, 0) + 1

    def graph_request(self, mailbox, status, started, ended):
        with self._lock:
            self._graph_requests.append({"mailbox": mailbox, "status": status, "started": started, "ended": ended})

    def graph_concurrency(self, mailbox, now):
        with self._lock:
            key = mailbox.lower()
            self._graph_max_concurrent[key] = max(self._graph_max_concurrent.get(key, 0), now)

    def token_request(self, grant_type, outcome):
        with self._lock:
            per_grant = self._token_requests.setdefault(grant_type or "(none)", {})
            per_grant[outcome] = per_grant.get(outcome, 0) + 1
            self._token_log.append({"at": time.time(), "outcome": outcome})

    def smtp_connection(self):
        with self._lock:
            self._smtp_connections += 1

    def auth_attempt(self, mechanism, succeeded):
        with self._lock:
            per_mech = self._auth.setdefault(mechanism, {"success": 0, "failure": 0})
            per_mech["success" if succeeded else "failure"] += 1
            self._last_auth_mechanism = mechanism

    def try_begin_session(self, user, limit):
        """Admit one more authenticated session for user unless `limit` are already open."""
        user = user.lower()
        with self._lock:
            if self._sessions_now.get(user, 0) >= limit:
                return False
            now = self._sessions_now[user] = self._sessions_now.get(user, 0) + 1
            self._sessions_max[user] = max(self._sessions_max.get(user, 0), now)
            return True

    def end_session(self, user):
        with self._lock:
            self._sessions_now[user.lower()] -= 1

    def message(self, accepted):
        with self._lock:
            if accepted:
                self._messages_accepted += 1
                self._accepted_at.append(time.time())
            else:
                self._messages_rejected += 1

    def discarded_after_starttls(self, byte_count):
        with self._lock:
            self._discarded_after_starttls += byte_count

    def snapshot(self):
        with self._lock:
            return {
                "token_requests": {g: dict(o) for g, o in self._token_requests.items()},
                "token_log": list(self._token_log),
                "smtp_connections": self._smtp_connections,
                "sessions_current": dict(self._sessions_now),
                "sessions_max": dict(self._sessions_max),
                "auth": {m: dict(c) for m, c in self._auth.items()},
                "last_auth_mechanism": self._last_auth_mechanism,
                "messages_accepted": self._messages_accepted,
                "messages_rejected": self._messages_rejected,
                "accepted_at": list(self._accepted_at),
                "plaintext_discarded_at_starttls": self._discarded_after_starttls,
                "graph_requests": [dict(r) for r in self._graph_requests],
                "graph_max_concurrent": dict(self._graph_max_concurrent),
                "send_as_denied": dict(self._send_as_denied),
            }
