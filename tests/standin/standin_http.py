"""HTTP face of the stand-in: the OAuth2 token endpoint plus the test-only control API.

  POST /{tenant}/oauth2/v2.0/token   Microsoft identity platform v2.0 (any tenant string)
  POST /token                        Google's https://oauth2.googleapis.com/token (flavor google)
  POST /_control  GET /_stats  GET /_tokens/latest   test-only, see standin_control.py

Plain HTTP on loopback: the relay's HTTP client is pointed at token_url, and TLS for HTTPS is libcurl's
business, not what these tests are about. Decisions live in TokenAuthority; this file only parses
the form-encoded bodies of RFC 6749 section 6 and writes JSON. GET /{tenant}/oauth2/v2.0/authorize,
POST /{tenant}/oauth2/v2.0/devicecode and POST /_device/approve belong to standin_userflows.py. Request logging names paths and outcomes, never bodies.
"""
import html
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standin_control import ControlError, parse_control_request
from standin_graph import SEND_MAIL_PATH
from standin_userflows import AuthorizeRefused

MICROSOFT_TOKEN_PATH = re.compile(r"^/[^/]+/oauth2/v2\.0/token$")
MICROSOFT_AUTHORIZE_PATH = re.compile(r"^/[^/]+/oauth2/v2\.0/authorize$")
MICROSOFT_DEVICECODE_PATH = re.compile(r"^/[^/]+/oauth2/v2\.0/devicecode$")
MAX_BODY = 1 << 20


class StandInHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, *, authority, settings, stats, on_smtp_up, graph=None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.authority, self.settings, self.stats = authority, settings, stats
        self.graph = graph  # standin_graph.GraphStandIn: POST /v1.0/users/{id}/sendMail
        self.on_smtp_up = on_smtp_up  # called from an HTTP thread, blocks until the listener changed

    def serve_in_thread(self):
        thread = threading.Thread(target=self.serve_forever, name="standin-http", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the default goes to stderr with no redaction policy
        pass

    def _reply_json(self, status, body, extra_headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Cache-Control", "no-store, no-cache")  # RFC 6749 section 5.1
        self.send_header("Pragma", "no-cache")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length)

    def _is_token_path(self, path):
        if self.server.authority.flavor == "google":
            return path == "/token"
        return bool(MICROSOFT_TOKEN_PATH.match(path))

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_stats":
            stats = self.server.stats.snapshot()
            stats["valid_refresh_tokens"] = self.server.authority.valid_refresh_token_count()
            stats["settings"] = self.server.settings.snapshot()
            self._reply_json(200, stats)
        elif path == "/_tokens/latest":
            token, user = self.server.authority.latest_refresh_token()
            self._reply_json(200, {"refresh_token": token, "user": user})
        elif MICROSOFT_AUTHORIZE_PATH.match(path):
            self._authorize()
        else:
            self._reply_json(404, {"error": "not_found"})

    def _authorize(self):
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True))
        try:
            location = self.server.authority.user_flows.authorize(query, self.server.settings.snapshot())
        except AuthorizeRefused as err:
            self.server.stats.token_request("(authorize)", "refused")
            page = f"<html><body><h1>Sign in</h1><p>{html.escape(str(err))}</p></body></html>".encode()
            self.send_response(400)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        outcome = "error" if "error=" in location.split("?", 1)[1] else "code"
        self.server.stats.token_request("(authorize)", outcome)
        print(f"ms_standin: authorize outcome={outcome}", file=sys.stderr, flush=True)
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _device_code(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        status, reply = self.server.authority.user_flows.device_authorization(form, self.server.settings.snapshot())
        self.server.stats.token_request("(devicecode)", "ok" if status == 200 else reply["error"])
        self._reply_json(status, reply)

    def _device_decision(self, body):
        try:
            request = json.loads(body or b"{}")
            user_code, decision = request["user_code"], request.get("decision", "approve")
            if decision not in ("approve", "decline"):
                raise ValueError("decision must be approve or decline")
        except (ValueError, KeyError, TypeError) as err:
            self._reply_json(400, {"error": f"bad request: {err}"})
            return
        if not self.server.authority.user_flows.decide_device(user_code, decision):
            self._reply_json(404, {"error": "no pending device code with that user_code"})
            return
        self._reply_json(200, {"user_code": user_code, "decision": decision})

    def _graph_send_mail(self, path):
        def read_body(length, discard=False):
            chunks, left = [], length
            while left > 0:  # in pieces; dropped when over the limit, so the connection stays in step
                chunk = self.rfile.read(min(1 << 20, left))
                if not chunk:
                    break
                left -= len(chunk)
                if not discard:
                    chunks.append(chunk)
            return b"".join(chunks)
        status, body, extra = self.server.graph.send_mail(path, self.headers, read_body)
        print(f"ms_standin: graph sendMail status={status}", file=sys.stderr, flush=True)
        if body is None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
        else:
            self._reply_json(status, body, extra)

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        if self.server.graph is not None and SEND_MAIL_PATH.match(path):
            self._graph_send_mail(path)
            return
        try:
            body = self._read_body()
        except ValueError as err:
            self._reply_json(413, {"error": "invalid_request", "error_description": str(err)})
            return
        if path == "/_control":
            self._control(body)
        elif self._is_token_path(path):
            self._token(body)
        elif MICROSOFT_DEVICECODE_PATH.match(path):
            self._device_code(body)
        elif path == "/_device/approve":
            self._device_decision(body)
        else:
            self._reply_json(404, {"error": "not_found"})

    def _token(self, body):
        step = self.server.settings.take_token_step()
        if step:
            self._scripted_token_failure(step)
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        settings = self.server.settings.snapshot()
        if settings["token_delay_ms"]:
            time.sleep(settings["token_delay_ms"] / 1000)
        if content_type != "application/x-www-form-urlencoded":
            # RFC 6749 section 4.1.3 / 6: parameters come form-encoded in the body.
            self.server.stats.token_request("(bad content type)", "invalid_request")
            self._reply_json(400, {"error": "invalid_request", "error_description":
                                   "AADSTS900144: request body must be application/x-www-form-urlencoded"})
            return
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(pairs)
        endpoint_url = f"http://{self.headers.get('Host', '')}{urllib.parse.urlsplit(self.path).path}"
        status, reply, grant_type, outcome = self.server.authority.token_request(form, settings, endpoint_url)
        self.server.stats.token_request(grant_type, outcome)
        print(f"ms_standin: token grant={grant_type or '-'} status={status} outcome={outcome}",
              file=sys.stderr, flush=True)
        headers = [("WWW-Authenticate", 'Basic realm="token"')] if status == 401 else []
        if settings["token_expires_in_json"] or settings["token_padding_bytes"]:
            self._reply_hostile_token(status, reply, headers, settings)
            return
        self._reply_json(status, reply, headers)

    def _scripted_token_failure(self, step):
        """One step of token_script: an outage as Microsoft's endpoint has them (AADSTS90033)."""
        kind, _, argument = step.partition(":")
        if kind == "hang":
            time.sleep(int(argument))
            self.server.stats.token_request("(scripted)", "hang")
            print(f"ms_standin: token scripted hang {argument}s, closed without an answer", file=sys.stderr, flush=True)
            self.close_connection = True
            return
        status = int(kind)
        self.server.stats.token_request("(scripted)", f"http_{status}")
        print(f"ms_standin: token scripted status={status}", file=sys.stderr, flush=True)
        headers = [("Retry-After", argument)] if argument else []
        self._reply_json(status, {"error": "temporarily_unavailable",
                                  "error_description": "AADSTS90033: A transient error has occurred. Please try again.",
                                  "error_codes": [90033]}, headers)

    def _reply_hostile_token(self, status, reply, headers, settings):
        """A token response as a broken or hostile endpoint sends it: expires_in replaced by raw JSON
        text (1e10, "99999999999", -1, ...) and/or padded to a huge size, streamed."""
        text = json.dumps(reply)
        if settings["token_expires_in_json"] and "expires_in" in reply:
            text = text.replace(f'"expires_in": {json.dumps(reply["expires_in"])}',
                                '"expires_in": ' + settings["token_expires_in_json"], 1)
        padding = settings["token_padding_bytes"]
        head = text[:-1] + (', "padding": "' if padding else "")
        tail = ('"' if padding else "") + "}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(head) + padding + len(tail)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(head.encode())
            chunk = b"x" * 65536
            left = padding
            while left > 0:
                self.wfile.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
            self.wfile.write(tail.encode())
        except OSError:
            pass  # the client gave up on it, as it should

    def _control(self, body):
        try:
            changes, actions = parse_control_request(json.loads(body or b"{}"))
        except (ControlError, json.JSONDecodeError) as err:
            self._reply_json(400, {"error": str(err)})
            return
        if "add_refresh_token" in actions:
            extra = actions["add_refresh_token"]
            self.server.authority.add_refresh_token(extra["token"], extra["user"], extra.get("scope"))
        if actions.get("revoke_all_refresh_tokens"):
            self.server.authority.revoke_all()
        if actions.get("expire_access_tokens"):
            self.server.authority.expire_access_tokens()
        if "graph_fail" in changes and self.server.graph is not None:
            self.server.graph.switch_changed()
        self.server.settings.update(changes)
        if "smtp_up" in changes:
            self.server.on_smtp_up(changes["smtp_up"])
        print(f"ms_standin: control {sorted(changes) + sorted(actions)}", file=sys.stderr, flush=True)
        self._reply_json(200, {"settings": self.server.settings.snapshot()})
