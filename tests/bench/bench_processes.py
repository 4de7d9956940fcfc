"""The programs the benchmark (bench.py) runs, each wrapped for one measurement: bench-sink (SMTP +
token endpoint, with its /stats), the relay under a generated config (queue or direct mode, plain
or STARTTLS upstream), and bench-load, whose JSON summary is returned. Each raises the descriptor
limit to the hard limit, so 1,000 idle clients fit."""
import json
import os
import resource
import shutil
import signal
import subprocess
import time
import urllib.request


USER, PASSWORD = "bench", "bench-pass-7Qx"


def preexec_raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


class Sink:
    def __init__(self, build, workdir, token_lifetime=3600, data_delay_ms=0, tls=None):
        self.log = open(os.path.join(workdir, f"sink-{time.monotonic_ns()}.log"), "w")
        self.tls = tls  # (cert, key) for STARTTLS
        self.process = subprocess.Popen(
            [os.path.join(build, "tests/bench/bench-sink"), "--token-lifetime", str(token_lifetime),
             "--data-delay-ms", str(data_delay_ms)] + (["--tls-cert", tls[0], "--tls-key", tls[1]] if tls else []),
            stdout=subprocess.PIPE, stderr=self.log, text=True, preexec_fn=preexec_raise_fd_limit)
        ports = dict(kv.split("=") for kv in self.process.stdout.readline().split())
        self.smtp_port, self.http_port = int(ports["smtp_port"]), int(ports["http_port"])
        self.token_url = f"http://127.0.0.1:{self.http_port}/token"

    def _http(self, method, path):
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", method=method,
                                         data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self):
        return self._http("GET", "/stats")

    def reset(self):
        self._http("POST", "/reset")

    def wait_for_messages(self, count, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats["messages"] >= count:
                return stats
            time.sleep(0.01)
        return self.stats()

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.log.close()


class Relay:
    def __init__(self, build, workdir, sink, max_connections=20, direct=False):
        self.binary = os.path.join(build, "smtp-oauth2-relay")
        self.dir = workdir
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.port = free_port()
        self.config = os.path.join(workdir, "config.toml")
        self.log_path = os.path.join(workdir, "relay.log")
        account = [
            'provider = "microsoft"', 'tenant = "bench"', 'client_id = "bench-client"',
            'client_secret = "bench-secret"', 'email = "bench@example.com"',
            f'token_url = "{sink.token_url}"', f"max_connections = {max_connections}",
            # Pacing off: the bench measures the relay, not Exchange Online's 30 messages a minute.
            "rate_per_minute = 0", "max_recipients_per_message = 1000",
        ]
        if sink.tls:
            account += [f'upstream = "localhost:{sink.smtp_port}"', 'upstream_tls = "starttls"',
                        f'upstream_ca_file = "{sink.tls[0]}"']
        else:
            account += [f'upstream = "127.0.0.1:{sink.smtp_port}"', 'upstream_tls = "none"']
        if direct:
            account.append('delivery = "direct"')
        with open(self.config, "w") as f:
            f.write("\n".join([
                "[relay]",
                f'listen = ["127.0.0.1:{self.port}"]',
                'allow_networks = ["127.0.0.0/8"]',
                f'spool_dir = "{workdir}/spool"',
                f'state_dir = "{workdir}/state"',
                'default_account = "bench"',
                'hostname = "relay.bench"',
                'min_backoff = "1s"',
                'max_backoff = "2s"',
                "",
                "[[users]]",
                f'name = "{USER}"', f'password = "{PASSWORD}"', 'account = "bench"',
                "",
                "[accounts.bench]",
                *account,
            ]) + "\n")
        self.process = None

    def import_token(self):
        """Stores a refresh token (the sink issues an access token); False when the config is refused."""
        result = subprocess.run([self.binary, "token", "import", "--account", "bench", "--config", self.config],
                                input="bench-refresh-token\n", capture_output=True, text=True, timeout=30)
        if result.returncode == 2 and "unknown key" in result.stderr:
            return False
        if result.returncode != 0:
            raise RuntimeError("token import failed: " + result.stderr)
        return True

    def start(self):
        """Starts `serve`; returns False when the relay refuses this config (exit 2)."""
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen([self.binary, "serve", "--config", self.config], stdout=self.log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=preexec_raise_fd_limit)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if self.process.returncode == 2:
                    return False
                raise RuntimeError(f"relay exited with {self.process.returncode}: {open(self.log_path).read()}")
            try:
                import socket
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.recv(512)
                return True
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("relay did not start listening")

    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log.close()
        self.process = None


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(build, port, clients, size, duration=None, messages=None, auth=False):
    args = [os.path.join(build, "tests/bench/bench-load"), "--port", str(port), "--clients", str(clients),
            "--size", str(size)]
    args += ["--messages", str(messages)] if messages else ["--duration", str(duration)]
    if auth:
        args += ["--auth", f"{USER}:{PASSWORD}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if not result.stdout.strip():
        raise RuntimeError("bench-load: " + result.stderr)
    return json.loads(result.stdout)
