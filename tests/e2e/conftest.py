"""End-to-end fixtures: the real relay binary, driven like an admin would, against the project's
Microsoft stand-in (tests/standin). Each test gets its own directories and ports.

    def test_x(relay, standin):
        relay.start()
        send_with_smtplib(relay.port, ...)
        standin.wait_for_messages(1)
"""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "standin"))

from harness import StandIn, free_port  # noqa: E402

BINARY = os.environ.get("RELAY_BINARY", os.path.join(ROOT, "build", "smtp-oauth2-relay"))

LOCAL_USER = "scanner"
LOCAL_PASSWORD = "local-pass-Qx7"
CLIENT_SECRET = "test-client-secret"
MAILBOX = "scanner@contoso.com"


def binary_is_sanitized():
    """True for an AddressSanitizer build (CI's second run): its memory figures mean nothing."""
    with open(BINARY, "rb") as f:
        return b"__asan_init" in f.read()


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def without_trace(data):
    """The delivered bytes without the one Received field the relay prepends (issue 11 item 2), which
    must be there: what follows is the client's message, byte for byte."""
    assert data.startswith(b"Received: from "), data[:200]
    end = data.index(b"\r\n")
    while data[end + 2:end + 3] in (b" ", b"\t"):   # continuation lines of the folded field
        end = data.index(b"\r\n", end + 2)
    return data[end + 2:]


def render_config(relay_settings, users, accounts):
    lines = ["[relay]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in relay_settings.items()]
    for user in users:
        lines += ["", "[[users]]"] + [f"{k} = {toml_value(v)}" for k, v in user.items()]
    for name, account in accounts.items():
        lines += ["", f"[accounts.{name}]"] + [f"{k} = {toml_value(v)}" for k, v in account.items()]
    return "\n".join(lines) + "\n"


class PortTaken(Exception):
    pass


class Relay:
    """The relay binary with a config of its own; `settings`, `users`, `accounts` are editable before start()."""

    def __init__(self, workdir, standin):
        self.workdir = str(workdir)
        self.standin = standin
        self.port = free_port()
        self.config_path = os.path.join(self.workdir, "config.toml")
        self.log_path = os.path.join(self.workdir, "relay.log")
        self.spool_dir = os.path.join(self.workdir, "spool")
        self.state_dir = os.path.join(self.workdir, "state")
        self.process = None
        self.preexec_fn = None   # e.g. resource limits for the relay process (issue 13)
        self.settings = {
            "listen": [f"127.0.0.1:{self.port}"],
            "allow_networks": ["127.0.0.0/8", "::1/128"],
            "spool_dir": self.spool_dir,
            "state_dir": self.state_dir,
            "max_message_size": 1048576,
            "default_account": "office",
            "hostname": "relay.test",
            "min_backoff": "1s",
            "max_backoff": "2s",
            "log_level": "debug",
        }
        self.users = [{"name": LOCAL_USER, "password": LOCAL_PASSWORD, "account": "office"}]
        self.accounts = {"office": self.account_for(standin)}
        self.extra_toml = ""   # appended as is, for tables render_config does not know ([aliases])

    @staticmethod
    def account_for(standin, **overrides):
        account = {
            "provider": "microsoft",
            "tenant": "contoso",
            "client_id": "test-client-id",
            "client_secret": CLIENT_SECRET,
            "email": MAILBOX,
            "token_url": standin.token_url,
            "upstream": f"localhost:{standin.smtp_port}",
            "upstream_ca_file": standin.ca_file,
            # Unpaced, so tests are not held to Exchange Online's 30 messages a minute (issue 4 tests pacing).
            "rate_per_minute": 0,
        }
        account.update(overrides)
        return account

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(render_config(self.settings, self.users, self.accounts) + self.extra_toml)
        return self.config_path

    def run(self, *args, stdin=None, timeout=30):
        """Runs a CLI command against this relay's config; returns CompletedProcess (text)."""
        self.write_config()
        return subprocess.run([BINARY, *args, "--config", self.config_path], input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def import_token(self, refresh_token="initial-refresh-token", account="office"):
        result = self.run("token", "import", "--account", account, stdin=refresh_token + "\n")
        assert result.returncode == 0, result.stderr
        return result

    def start(self, import_token=True):
        if import_token and not os.path.exists(os.path.join(self.state_dir, "tokens", "office.json")):
            self.import_token()
        for _ in range(5):
            try:
                return self._start_once()
            except PortTaken:
                # Another test's process took the port between free_port() and the bind: a new one,
                # when the test left the listen address to us.
                if self.settings["listen"] != [f"127.0.0.1:{self.port}"]:
                    raise
                self.port = free_port()
                self.settings["listen"] = [f"127.0.0.1:{self.port}"]
        return self._start_once()

    def _start_once(self):
        self.write_config()
        logged = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.log_file = open(self.log_path, "a")
        self.process = subprocess.Popen([BINARY, "serve", "--config", self.config_path],
                                        stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=self.preexec_fn)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log()
                self.log_file.close()
                if "fatal" in log[logged:] and "Address already in use" in log[logged:]:
                    with open(self.log_path, "r+") as f:   # the retry's log starts where this one did
                        f.truncate(logged)
                    raise PortTaken(log)
                raise AssertionError(f"relay exited with {self.process.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.recv(512)
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("relay did not start listening:\n" + self.log())

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("relay did not stop on SIGTERM within %d s" % timeout)
        if self.process:
            self.log_file.close()
        code = self.process.returncode if self.process else None
        self.process = None
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self, event):
        return [line for line in self.log().splitlines() if f" {event} " in line + " "]

    def wait_for_log(self, event, count=1, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.log_lines(event)) >= count:
                return self.log_lines(event)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} '{event}' log lines within {timeout} s:\n{self.log()}")

    def queue_files(self):
        queue = os.path.join(self.spool_dir, "queue")
        # Messages only: ".state"/".hold" sidecars (issue 4) sit next to them.
        return sorted(f for f in os.listdir(queue) if "." not in f) if os.path.isdir(queue) else []

    def failed_files(self):
        failed = os.path.join(self.spool_dir, "failed")
        # Messages only: not their ".reason" files nor a temp file being renamed into place.
        return sorted(f for f in os.listdir(failed) if "." not in f) if os.path.isdir(failed) else []


@pytest.fixture
def standin(tmp_path):
    instance = StandIn(tmp_path / "standin")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def relay(tmp_path, standin):
    instance = Relay(tmp_path / "relay", standin)
    os.makedirs(instance.workdir, exist_ok=True)
    yield instance
    code = instance.stop()
    if code not in (None, 0):
        pytest.fail(f"relay exited with status {code} on SIGTERM:\n{instance.log()}")


def sendmail(relay, args, data, name="sendmail", **env_extra):
    """Runs the binary under the name `name` (as /usr/sbin/sendmail, mailq or newaliases would run) with
    the relay's config from the environment, as Debian's programs find it; returns CompletedProcess."""
    link = os.path.join(relay.workdir, name)
    if not os.path.exists(link):
        os.symlink(os.path.abspath(BINARY), link)
    relay.write_config()
    env = dict(os.environ, SMTP_OAUTH2_RELAY_CONFIG=relay.config_path, **env_extra)
    return subprocess.run([link, *args], input=data, capture_output=True, env=env, timeout=30)


def read_until_closed(sock):
    """Everything the relay says until it closes the connection (then closes ours)."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data
