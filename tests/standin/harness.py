"""Start, steer and inspect the Microsoft stand-in from pytest.

    with StandIn(tmp_path, token_lifetime=60) as standin:
        standin.control(throttle_every_n=2)
        ... point the relay at standin.token_url / 127.0.0.1:standin.smtp_port, trust standin.ca_file
        envelope, body = standin.wait_for_messages(1, timeout=10)[0]

The stand-in runs as a subprocess of Debian's /usr/bin/python3 (stdout: one JSON ready line; stderr:
inherited, so pytest shows its log for a failing test, or log_path=...). Keyword options become command-line flags
(token_lifetime=1 -> --token-lifetime 1).
"""
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from standin_mailstore import read_messages

PYTHON = "/usr/bin/python3"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ms_standin.py")
START_TIMEOUT = 15


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for --smtp-port when 0 will not do).

    Chosen below the kernel's ephemeral range (32768-60999 on Debian): a port the kernel handed out
    could be taken again by any outgoing connection (two test files run at once) before the relay
    binds it, and it was (CI: "Address already in use"). Here only another test's pick can collide."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandInError(RuntimeError):
    pass


class StandIn:
    def __init__(self, state_dir, *, log_path=None, **cli_options):
        self.state_dir = os.fspath(state_dir)
        self.log_path = log_path  # None: stderr inherited (pytest shows it on failure)
        self.cli_options = cli_options
        self.process = None
        self.http_port = self.smtp_port = self.ca_file = self.mail_dir = self.token_url = self.graph_url = None

    def start(self):
        command = [PYTHON, SCRIPT, "--state-dir", self.state_dir]
        for key, value in self.cli_options.items():
            command += ["--" + key.replace("_", "-"), str(value)]
        log = open(self.log_path, "ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                            stdin=subprocess.DEVNULL, stderr=log)
        finally:
            if log:
                log.close()
        line = self._read_ready_line()
        ready = json.loads(line)
        if not ready.get("ready"):
            self.stop()
            raise StandInError(f"stand-in did not report ready: {line!r}")
        for key in ("http_port", "smtp_port", "ca_file", "mail_dir", "token_url", "graph_url"):
            setattr(self, key, ready[key])
        return self

    def _read_ready_line(self):
        deadline = time.monotonic() + START_TIMEOUT
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                self.stop()
                raise StandInError(f"stand-in not ready within {START_TIMEOUT} s")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                code = self.process.wait()
                raise StandInError(f"stand-in exited with status {code} before it was ready")
            buffer += chunk
        selector.close()
        return buffer.split(b"\n", 1)[0].decode()

    def stop(self):
        """SIGTERM and wait; returns the exit status (0 for a clean shutdown)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        code, self.process = self.process.returncode, None
        return code

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- HTTP helpers ---------------------------------------------------------------------------

    def _http(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise StandInError(f"{method} {path} -> {err.code}: {err.read().decode()}") from None

    def control(self, **settings):
        """Change switches (see standin_control.DEFAULT_SETTINGS); returns the new settings."""
        return self._http("POST", "/_control", settings)["settings"]

    def stats(self):
        return self._http("GET", "/_stats")

    def latest_refresh_token(self):
        return self._http("GET", "/_tokens/latest")["refresh_token"]

    def set_smtp_up(self, up):
        self.control(smtp_up=bool(up))

    def sign_in_url(self, endpoint):
        """The stand-in's "authorize" or "devicecode" URL, next to token_url (Microsoft flavor)."""
        return self.token_url.rsplit("/", 1)[0] + "/" + endpoint

    def device_decision(self, user_code, decision="approve"):
        """The user approves (or declines) a pending device code at the verification page."""
        return self._http("POST", "/_device/approve", {"user_code": user_code, "decision": decision})

    def token_request(self, **form):
        """POST a form to the token endpoint; returns (HTTP status, JSON body) for any status."""
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.token_url, data=data, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    # --- mail -----------------------------------------------------------------------------------

    def messages(self):
        """Accepted messages as (envelope dict, body bytes), in acceptance order."""
        return read_messages(self.mail_dir)

    def wait_for_messages(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"expected {count} message(s) in {self.mail_dir}, "
                                   f"found {len(found)} after {timeout} s")
            time.sleep(0.05)
