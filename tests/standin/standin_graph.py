"""The stand-in's Microsoft Graph: POST /v1.0/users/{id or UPN}/sendMail (and /v1.0/me/sendMail) with
the message as base64 MIME (Content-Type: text/plain), answered as Graph answers (issue 14).

What it insists on, because Graph does (see /work/shared/PROVIDERS.md and the README's Graph section):
  * a bearer token this authority issued (issuer), not expired, for the Graph audience (a token with
    SMTP scopes gets 401 InvalidAuthenticationToken "Invalid audience"), carrying Mail.Send: the
    delegated scope for that very user, or an app token whose Mail.Send role an application access
    policy limits to the mailboxes in the `app_mailboxes` switch (others: 403 ErrorAccessDenied);
  * a request body of at most 4 MB (413 ErrorRequestEntityTooLarge) that is valid base64
    (400 ErrorMimeContentInvalidBase64String) of a message whose From is the mailbox or an address
    granted in the send_as switch (403 ErrorSendAsDenied otherwise);
  * at most 4 concurrent requests per mailbox (429 ApplicationThrottled with Retry-After).
Recipients come from the To, Cc and Bcc fields only (Exchange maps them to MAPI recipients; Resent-*
fields name nobody), each address once; the stored copy has no Bcc field, as Exchange never hands one
to recipients. Test switches: graph_fail (answer the next N requests with a status, error code and
Retry-After) and graph_delay_ms (hold each request, to have some in flight).
"""
import base64
import binascii
import email.utils
import re
import secrets
import threading
import time
import urllib.parse
import uuid

MAX_REQUEST = 4 * 1024 * 1024
MAX_CONCURRENT = 4
SEND_MAIL_PATH = re.compile(r"^/v1\.0/(?:users/([^/]+)|me)/sendMail$")
GRAPH_SCOPES = {"https://graph.microsoft.com/mail.send", "https://graph.microsoft.com/.default"}
RECIPIENT_FIELDS = ("to", "cc", "bcc")


class GraphRefusal(Exception):
    def __init__(self, status, code, message, retry_after=None):
        super().__init__(f"{status} {code}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def error_body(code, message):
    """Graph's error JSON, with the innerError Graph adds."""
    return {"error": {"code": code, "message": message, "innerError": {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4())}}}


def header_fields(mime):
    """[(name, raw bytes incl. folded lines)] of the header, and the offset of the body."""
    fields, at = [], 0
    while at < len(mime):
        end = mime.find(b"\r\n", at)
        end = len(mime) if end < 0 else end + 2
        line = mime[at:end]
        if line in (b"\r\n", b"\n"):
            return fields, end
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + line)
        else:
            fields.append((line.split(b":", 1)[0].strip().decode("latin-1").lower(), line))
        at = end
    return fields, len(mime)


def recipients_and_copy(mime):
    """Who Graph delivers to (To, Cc, Bcc; each once, in order) and the copy recipients get (no Bcc)."""
    fields, body_at = header_fields(mime)
    seen, recipients = set(), []
    for name, raw in fields:
        if name in RECIPIENT_FIELDS:
            value = raw.split(b":", 1)[1].decode("utf-8", "replace").replace("\r\n", "")
            for _, address in email.utils.getaddresses([value]):
                if "@" in address and address.lower() not in seen:
                    seen.add(address.lower())
                    recipients.append(address)
    copy = b"".join(raw for name, raw in fields if name != "bcc") + b"\r\n" + mime[body_at:]
    return recipients, copy, fields


class GraphStandIn:
    def __init__(self, authority, settings, stats, store):
        self.authority, self.settings, self.stats, self.store = authority, settings, stats, store
        self._lock = threading.Lock()
        self._in_flight = {}     # mailbox (lower case) -> requests being handled
        self._fail_left = None   # remaining answers of the current graph_fail switch

    def switch_changed(self):
        with self._lock:
            self._fail_left = None

    def _forced_failure(self):
        fail = self.settings.get("graph_fail")
        if not fail:
            return None
        with self._lock:
            if self._fail_left is None:
                self._fail_left = fail.get("count", 0) or -1
            if self._fail_left == 0:
                return None
            if self._fail_left > 0:
                self._fail_left -= 1
        return GraphRefusal(fail["status"], fail.get("code", ""), fail.get("message", "forced by the test"),
                            fail.get("retry_after"))

    def send_mail(self, path, headers, read_body_once):
        """Handle one request; returns (status, JSON body or None, extra headers)."""
        match = SEND_MAIL_PATH.match(path)
        consumed = []

        def read_body(length, discard=False):
            consumed.append(True)
            return read_body_once(length, discard)

        started = time.time()
        mailbox = None
        try:
            token = self._bearer(headers)
            grant = self.authority.graph_grant(token)
            mailbox = urllib.parse.unquote(match.group(1)) if match.group(1) else (grant.get("user") or "")
            self._authorize(grant, mailbox)
            with self._lock:
                busy = self._in_flight.get(mailbox.lower(), 0)
                if busy >= MAX_CONCURRENT:
                    raise GraphRefusal(429, "ApplicationThrottled",
                                       "Application is over its MailboxConcurrency limit.", "1")
                self._in_flight[mailbox.lower()] = busy + 1
                self.stats.graph_concurrency(mailbox, busy + 1)
            try:
                return self._send(mailbox, headers, read_body, started)
            finally:
                with self._lock:
                    self._in_flight[mailbox.lower()] -= 1
        except GraphRefusal as refusal:
            if not consumed:  # refused before reading: drop the body so the next request parses
                read_body_once(int(headers.get("Content-Length") or 0), discard=True)
            self.stats.graph_request(mailbox, refusal.status, started, time.time())
            extra = [("Retry-After", str(refusal.retry_after))] if refusal.retry_after else []
            return refusal.status, error_body(refusal.code, refusal.message), extra

    def _bearer(self, headers):
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise GraphRefusal(401, "InvalidAuthenticationToken", "Access token is empty.")
        return auth[7:].strip()

    def _authorize(self, grant, mailbox):
        if grant.get("error"):
            raise GraphRefusal(401, "InvalidAuthenticationToken", grant["error"])
        scopes = {s.lower() for s in grant["scope"].split()}
        if not scopes & GRAPH_SCOPES:
            raise GraphRefusal(401, "InvalidAuthenticationToken",
                               "Access token validation failure. Invalid audience.")
        if grant.get("app"):
            if "Mail.Send" not in self.settings.get("graph_app_roles"):
                raise GraphRefusal(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            if mailbox.lower() not in {m.lower() for m in self.settings.get("app_mailboxes")}:
                raise GraphRefusal(403, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by "
                                                             "tenant configured AppOnly AccessPolicy settings.")
        elif (grant.get("user") or "").lower() != mailbox.lower():
            raise GraphRefusal(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")

    def _send(self, mailbox, headers, read_body, started):
        delay = self.settings.get("graph_delay_ms")
        if delay:
            time.sleep(delay / 1000)
        forced = self._forced_failure()
        length = int(headers.get("Content-Length") or 0)
        if length > MAX_REQUEST:
            read_body(length, discard=True)
            raise GraphRefusal(413, "ErrorRequestEntityTooLarge",
                               f"The request exceeds the maximum supported size of {MAX_REQUEST} bytes.")
        body = read_body(length)
        if forced:
            raise forced
        if headers.get("Content-Type", "").split(";")[0].strip().lower() != "text/plain":
            raise GraphRefusal(415, "UnsupportedMediaType", "MIME content needs Content-Type: text/plain.")
        try:
            mime = base64.b64decode(body.strip(), validate=True)
        except (binascii.Error, ValueError):
            mime = b""
        if not mime:
            raise GraphRefusal(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
        # The MIME is handed on to SMTP hops that hold it to RFC 5321's 998-octet lines (the SMTP
        # stand-in's rule): modelled here as Graph's answer for content it cannot take.
        if any(len(line.rstrip(b"\r")) > 998 for line in mime.split(b"\n")):
            raise GraphRefusal(400, "ErrorMimeContentInvalid", "The MIME content has a line longer than 998 characters.")
        recipients, copy, fields = recipients_and_copy(mime)
        if not recipients:
            raise GraphRefusal(400, "ErrorInvalidRecipients", "At least one recipient is not valid., "
                                                             "A message can't be sent because it contains no recipients.")
        senders = [a for name, raw in fields if name == "from"
                   for _, a in email.utils.getaddresses([raw.split(b":", 1)[1].decode("utf-8", "replace")])]
        if not senders or any(not self.settings.may_send_as(mailbox, s) for s in senders):
            self.stats.send_as_denied(mailbox)
            raise GraphRefusal(403, "ErrorSendAsDenied", "The user account which was used to submit this request "
                                                         "does not have the right to send mail on behalf of the specified "
                                                         "sending account., Cannot submit message.")
        message_id = secrets.token_hex(16).upper()
        envelope = {"transport": "graph", "mailbox": mailbox, "mail_from": senders[0], "rcpt_to": recipients,
                    "size": len(copy), "request_size": len(body), "received_at": time.time(),
                    "saved_to_sent_items": True}
        self.store.store(message_id, copy, envelope)
        self.stats.graph_request(mailbox, 202, started, time.time())
        self.stats.message(True)
        return 202, None, []
