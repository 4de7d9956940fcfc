"""Issue 6 end to end: hostile clients over raw sockets (over-long lines, too many recipients, a DATA
trickle, connection floods, password guessing), no open relay, and the relay's own TLS (STARTTLS and
implicit TLS) checked with openssl s_client and swaks. SMTP smuggling, in every leniency mode, is in
test_lenient.py."""
import base64
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import LOCAL_PASSWORD, LOCAL_USER, MAILBOX, read_until_closed

# The documented fail2ban filter (README, "Hostile clients"): it must match the relay's line.
FAIL2BAN_REGEX = r"^\S+ warning auth_failed client=(?P<host>[0-9a-fA-F.:]+) "


class RawClient:
    """A bare SMTP client: sends exactly the bytes it is given, reads whole replies."""

    def __init__(self, port, host="127.0.0.1", timeout=20, source=None):
        # source: a local address to connect from, e.g. "127.0.0.2" (any 127/8 address works on
        # Linux) for a loopback client outside lenient_networks = ["127.0.0.1/32"].
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One reply (all its lines) as text; '' when the server closed the connection."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return "".join(lines)
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace") + "\n")
            if len(line) < 4 or line[3:4] != b"-":
                return "".join(lines)

    def command(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def start_transaction(client, rcpts=("boss@example.com",)):
    assert client.reply().startswith("220")
    assert client.command("EHLO hostile.test").startswith("250")
    assert client.command(f"MAIL FROM:<{MAILBOX}>").startswith("250")
    for rcpt in rcpts:
        assert client.command(f"RCPT TO:<{rcpt}>").startswith("250")
    assert client.command("DATA").startswith("354")


def wait_idle_queue(relay, timeout=20):
    deadline = time.monotonic() + timeout
    while relay.queue_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert relay.queue_files() == []


def test_over_long_command_and_text_lines_are_refused(relay, standin):
    relay.settings["lenient_networks"] = []   # a lenient client may send text lines up to 1 MiB
    relay.start()
    client = RawClient(relay.port)
    assert client.reply().startswith("220")
    assert client.command("EHLO " + "a" * 600).startswith("500 5.5.2")
    assert client.command("EHLO hostile.test").startswith("250")
    # A megabyte without CRLF is consumed, not buffered, and answered once.
    client.send("NOOP " + "x" * 1_000_000 + "\r\n")
    assert client.reply().startswith("500 5.5.2")
    assert client.command(f"MAIL FROM:<{MAILBOX}>").startswith("250")
    assert client.command("RCPT TO:<boss@example.com>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.send("Subject: long\r\n\r\n" + "y" * 1500 + "\r\n.\r\n")
    assert client.reply().startswith("500 5.5.2")
    assert client.command("QUIT").startswith("221")
    time.sleep(0.5)
    assert relay.queue_files() == [] and standin.messages() == []


def test_two_thousand_recipients_get_452_beyond_the_limit_and_the_first_thousand_are_delivered(relay, standin):
    relay.start()
    client = RawClient(relay.port)
    assert client.reply().startswith("220")
    assert client.command("EHLO hostile.test").startswith("250")
    assert client.command(f"MAIL FROM:<{MAILBOX}>").startswith("250")
    client.send("".join(f"RCPT TO:<r{i}@example.com>\r\n" for i in range(2000)))
    replies = [client.reply() for _ in range(2000)]
    assert all(r.startswith("250 2.1.5") for r in replies[:1000])
    assert all(r.startswith("452 4.5.3") for r in replies[1000:])
    assert client.command("DATA").startswith("354")
    client.send("Subject: many\r\n\r\nhi\r\n.\r\n")
    assert client.reply().startswith("250 2.0.0")
    client.command("QUIT")
    assert "rcpt_count=1000" in relay.wait_for_log("received")[0]
    # Exchange takes 500 per message (the stand-in too): the relay defers the rest and sends it again.
    messages = standin.wait_for_messages(2, timeout=30)
    delivered = [r for envelope, _ in messages for r in envelope["rcpt_to"]]
    assert sorted(delivered) == sorted(f"r{i}@example.com" for i in range(1000))


def test_a_one_byte_per_second_trickle_is_cut_off(relay, standin):
    relay.settings["min_data_rate_window"] = "3s"   # default 500 bytes/s over 30 s; short here
    relay.start()
    client = RawClient(relay.port)
    start_transaction(client)
    started = time.monotonic()
    client.sock.settimeout(1)
    reply = ""
    while time.monotonic() - started < 30:
        try:
            client.send(b"x")
        except OSError:
            break
        try:
            chunk = client.sock.recv(4096)
        except socket.timeout:
            continue
        reply += chunk.decode()
        if not chunk or "\r\n" in reply:
            break
    assert reply.startswith("421 4.4.2"), reply
    assert time.monotonic() - started < 20
    assert relay.log_lines("data_rate_too_low")
    time.sleep(0.3)
    assert relay.queue_files() == []


def test_per_address_connection_cap(relay, standin):
    relay.settings["max_clients_per_ip"] = 50
    relay.start()
    time.sleep(0.3)   # the start() probe connection is released
    sockets, greeted, refused = [], 0, 0
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
            sockets.append(s)
        for s in sockets:
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"220 "):
                greeted += 1
            elif data.startswith(b"421 4.7.0 relay.test Error: too many connections from your address"):
                refused += 1
    finally:
        for s in sockets:
            s.close()
    assert (greeted, refused) == (50, 250)
    assert len(relay.log_lines("connection_refused")) == 250
    # Closed connections free their slots.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        client = RawClient(relay.port)
        first = client.reply()
        client.close()
        if first.startswith("220"):
            break
        time.sleep(0.1)
    assert first.startswith("220")


def auth_plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_twenty_bad_passwords_lock_the_address_out(relay, standin):
    relay.settings.update({"auth_failure_delay": "0s", "auth_max_failures": 10, "auth_lockout": "60s"})
    relay.start()
    answers = []
    for attempt in range(4):   # 4 sessions x 5 guesses: max_errors (20) never ends a session first
        client = RawClient(relay.port)
        assert client.reply().startswith("220")
        assert client.command("EHLO guesser.test").startswith("250")
        for guess in range(5):
            answers.append(client.command(auth_plain(LOCAL_USER, f"guess-{attempt}-{guess}")))
        client.command("QUIT")
        client.close()
    assert all(a.startswith("535 5.7.8") for a in answers[:10]), answers[:10]
    assert all(a.startswith("454 4.7.0") for a in answers[10:]), answers[10:]
    # Locked out means locked out: the right password is refused too, from this address.
    client = RawClient(relay.port)
    client.reply()
    client.command("EHLO guesser.test")
    assert client.command(auth_plain(LOCAL_USER, LOCAL_PASSWORD)).startswith("454 4.7.0")
    client.close()
    lockouts = relay.log_lines("auth_lockout")
    assert len(lockouts) == 1 and "client=127.0.0.1" in lockouts[0]
    failures = relay.log_lines("auth_failed")
    assert len(failures) == 10
    for line in failures:
        match = re.search(FAIL2BAN_REGEX, line)
        assert match and match.group("host") == "127.0.0.1", line
        assert LOCAL_PASSWORD not in line and "guess-" not in line


def test_a_failed_auth_is_answered_late(relay, standin):
    relay.settings["auth_failure_delay"] = "1s"
    relay.start()
    client = RawClient(relay.port)
    client.reply()
    client.command("EHLO guesser.test")
    started = time.monotonic()
    assert client.command(auth_plain(LOCAL_USER, "wrong")).startswith("535")
    assert time.monotonic() - started >= 0.9
    assert client.command(auth_plain(LOCAL_USER, LOCAL_PASSWORD)).startswith("235")
    client.close()


# ---- no open relay ------------------------------------------------------------------------------

def test_client_outside_allow_networks_hears_554_and_is_logged(relay, standin):
    relay.settings["allow_networks"] = ["10.0.0.0/8"]
    relay.start()
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    data = read_until_closed(s)
    assert data == b"554 5.7.1 Error: client host rejected: access denied\r\n"   # then closed, no greeting
    line = relay.wait_for_log("reject", count=2)[-1]   # the first is start()'s probe connection
    assert "client=127.0.0.1 command=CONNECT" in line and "reply=\"554 5.7.1 " in line


def test_require_auth_refuses_mail_without_login(relay, standin):
    relay.settings["require_auth"] = True
    relay.start()
    client = RawClient(relay.port)
    client.reply()
    client.command("EHLO anonymous.test")
    assert client.command(f"MAIL FROM:<{MAILBOX}>").startswith("530 5.7.0")
    client.close()


def test_a_user_sends_only_through_its_own_account(relay, standin):
    relay.accounts["other"] = relay.account_for(standin, email="other@contoso.com")
    relay.users = [{"name": LOCAL_USER, "password": LOCAL_PASSWORD, "account": "other"}]
    relay.import_token(account="other")
    relay.start()
    client = RawClient(relay.port)
    client.reply()
    client.command("EHLO app.test")
    assert client.command(auth_plain(LOCAL_USER, LOCAL_PASSWORD)).startswith("235")
    assert client.command(f"MAIL FROM:<{MAILBOX}>").startswith("250")
    assert client.command("RCPT TO:<boss@example.com>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.send("Subject: mine\r\n\r\nhi\r\n.\r\n")
    assert client.reply().startswith("250")
    client.close()
    received = relay.wait_for_log("received")
    assert "user=scanner" in received[0] and "account=other" in received[0]


def lan_address():
    """A non-loopback address of this machine, to be a LAN client of ourselves."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    except OSError:
        return None
    return next((a for a in out if ":" not in a and not a.startswith("127.")), None)


def test_plaintext_auth_only_from_loopback_unless_allowed(relay, standin):
    address = lan_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    relay.settings["listen"].append(f"{address}:{relay.port}")
    relay.settings["allow_networks"].append(f"{address}/32")
    relay.start()
    client = RawClient(relay.port, host=address)
    client.reply()
    ehlo = client.command("EHLO lan-device.test")
    assert "AUTH" not in ehlo and "STARTTLS" in ehlo
    assert client.command(auth_plain(LOCAL_USER, LOCAL_PASSWORD)).startswith("538 5.7.11")
    client.close()
    # From loopback, plaintext AUTH stays available (local apps).
    client = RawClient(relay.port)
    client.reply()
    assert "AUTH PLAIN LOGIN" in client.command("EHLO local-app.test")
    client.close()


# ---- local TLS ----------------------------------------------------------------------------------

def openssl(*args, lines=(b"QUIT\r\n",), timeout=20):
    """openssl s_client, typing `lines` one at a time (the relay refuses unauthorised pipelining)."""
    # -ign_eof: keep reading the replies until the server closes (after QUIT).
    process = subprocess.Popen(["openssl", "s_client", "-ign_eof", *args], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in lines:
        time.sleep(0.7)
        try:
            process.stdin.write(line)
            process.stdin.flush()
        except BrokenPipeError:
            break
    try:
        process.stdin.close()
    except BrokenPipeError:
        pass
    process.stdin = None
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_starttls_and_implicit_tls_with_the_generated_certificate(relay, standin, tmp_path):
    from harness import free_port
    tls_port = free_port()
    relay.settings["listen_tls"] = [f"127.0.0.1:{tls_port}"]
    relay.start()
    cert = os.path.join(relay.state_dir, "tls", "cert.pem")
    assert oct(os.stat(os.path.join(relay.state_dir, "tls", "key.pem")).st_mode & 0o777) == "0o600"
    fingerprint = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
                                 capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    assert any(f"sha256={fingerprint}" in line for line in relay.log_lines("tls_certificate"))

    result = openssl("-starttls", "smtp", "-connect", f"127.0.0.1:{relay.port}", "-CAfile", cert,
                     "-verify_return_error", "-servername", "relay.test", lines=(b"EHLO tls.test\r\n", b"QUIT\r\n"))
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out + result.stderr.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out
    assert "250-AUTH PLAIN LOGIN" in out or "250 AUTH PLAIN LOGIN" in out

    result = openssl("-connect", f"127.0.0.1:{tls_port}", "-CAfile", cert, "-verify_return_error",
                     lines=(b"EHLO tls.test\r\n", b"QUIT\r\n"))
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out
    assert "220 relay.test ESMTP" in out and "Verify return code: 0 (ok)" in out
    assert "STARTTLS" not in out.split("220 relay.test ESMTP", 1)[1]

    for flag, port, subject in (("--tls", relay.port, "via STARTTLS"), ("--tlsc", tls_port, "via implicit TLS")):
        result = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", flag, "--from", MAILBOX,
                                 "--to", "boss@example.com", "--auth", "PLAIN", "--auth-user", LOCAL_USER,
                                 "--auth-password", LOCAL_PASSWORD, "--header", f"Subject: {subject}",
                                 "--helo", "printer.local"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "250 2.0.0 Ok: queued as" in result.stdout
    messages = standin.wait_for_messages(2, timeout=30)
    subjects = sorted(re.search(rb"Subject: ([^\r]*)", raw).group(1).decode() for _, raw in messages)
    assert subjects == ["via STARTTLS", "via implicit TLS"]


def test_tls_1_0_client_is_refused_by_default(relay, standin):
    from harness import free_port
    tls_port = free_port()
    relay.settings["listen_tls"] = [f"127.0.0.1:{tls_port}"]
    relay.start()
    # SECLEVEL=0 on the client so the refusal is the server's, not Debian's client default.
    result = openssl("-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-connect", f"127.0.0.1:{tls_port}")
    assert result.returncode != 0
    assert b"220 relay.test" not in result.stdout
    assert "unsupported protocol" in relay.wait_for_log("tls_handshake_failed")[0]
    # The same client with TLS 1.2 is served.
    result = openssl("-tls1_2", "-connect", f"127.0.0.1:{tls_port}")
    assert result.returncode == 0 and b"220 relay.test" in result.stdout


def test_plaintext_pipelined_after_starttls_is_discarded(relay, standin):
    relay.start()
    client = RawClient(relay.port)
    client.reply()
    client.command("EHLO injector.test")
    client.send("STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
    assert client.reply().startswith("220 2.0.0")
    import ssl
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    tls = context.wrap_socket(client.sock, server_hostname="relay.test")
    tls.sendall(b"NOOP\r\n")
    reply = tls.recv(512)
    # The first reply over TLS answers NOOP; the injected MAIL was never executed.
    assert reply.startswith(b"250 2.0.0"), reply
    tls.sendall(b"RCPT TO:<x@example.com>\r\n")
    assert tls.recv(512).startswith(b"503"), "no MAIL transaction may exist after the handshake"
    tls.close()
    assert relay.log_lines("starttls_injection")


def test_talking_before_the_greeting_is_refused(relay, standin):
    relay.settings["greet_pause"] = "1s"
    relay.start()
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    s.sendall(b"EHLO impatient.test\r\nMAIL FROM:<a@example.com>\r\n")
    data = read_until_closed(s)
    assert data == b"554 5.5.0 relay.test Error: SMTP protocol synchronization\r\n"
    assert relay.log_lines("pregreet_traffic")
    # A patient client is greeted after the pause.
    client = RawClient(relay.port)
    assert client.reply().startswith("220 relay.test")
    client.close()


def test_tls_1_0_only_by_explicit_opt_in_with_a_warning(relay, standin):
    from harness import free_port
    tls_port = free_port()
    relay.settings.update({"listen_tls": [f"127.0.0.1:{tls_port}"], "min_tls_version": "1.0"})
    result = relay.run("serve")
    assert result.returncode == 2 and "allow_legacy_tls" in result.stderr
    relay.settings["allow_legacy_tls"] = True
    relay.start()
    assert relay.log_lines("tls_legacy_enabled")
    result = openssl("-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-connect", f"127.0.0.1:{tls_port}")
    assert result.returncode == 0 and b"220 relay.test" in result.stdout


def test_command_and_session_timeouts(relay, standin):
    relay.settings.update({"command_timeout": "2s", "session_timeout": "4s"})
    relay.start()
    idle = RawClient(relay.port)
    assert idle.reply().startswith("220")
    busy = RawClient(relay.port)
    assert busy.reply().startswith("220")
    started = time.monotonic()
    assert idle.reply().startswith("421 4.4.2")   # nothing sent for command_timeout
    assert 1.5 < time.monotonic() - started < 10
    replies = []
    while time.monotonic() - started < 15:
        reply = busy.command("NOOP")
        replies.append(reply)
        if not reply.startswith("250"):
            break
        time.sleep(0.5)
    assert replies[-1].startswith("421 4.4.2"), replies[-3:]   # active, but past session_timeout
    idle.close()
    busy.close()


def test_error_tarpit_then_too_many_errors(relay, standin):
    relay.settings.update({"soft_error_limit": 2, "error_delay": "1s", "max_errors": 4})
    relay.start()
    client = RawClient(relay.port)
    client.reply()
    assert client.command("BOGUS").startswith("500")
    started = time.monotonic()
    assert client.command("BOGUS").startswith("500")   # the 2nd error reaches soft_error_limit
    assert time.monotonic() - started >= 0.9
    assert client.command("BOGUS").startswith("500")
    assert client.command("BOGUS").startswith("500")
    assert client.reply().startswith("421 4.7.0 relay.test Error: too many errors")
    assert client.reply() == ""   # closed
    client.close()


def test_sigterm_answers_idle_clients_then_cuts_a_stalled_transaction_at_the_deadline(relay, standin):
    """Shutdown is cancellation (issue 10): gently first (an idle session hears 421 4.3.2 at once, a
    transaction in flight may finish), then hard at the drain deadline (10 s): a client that stalls
    mid-DATA is cut off, its half message is not queued, and the relay exits cleanly."""
    relay.settings["min_data_rate"] = 0          # the stall must outlast the deadline, not the rate check
    relay.start()
    idle = RawClient(relay.port, timeout=5)
    assert idle.reply().startswith("220")
    assert idle.command("EHLO idle.test").startswith("250")
    stalled = RawClient(relay.port, timeout=30)
    start_transaction(stalled)
    stalled.send("Subject: never finished\r\n\r\nfirst half\r\n")
    time.sleep(0.2)
    started = time.monotonic()
    relay.process.send_signal(signal.SIGTERM)
    assert idle.reply().startswith("421 4.3.2 "), "an idle session is told at once"
    assert idle.reply() == "", "and then closed"
    try:
        cut = stalled.reply()
    except ConnectionResetError:
        cut = ""
    elapsed = time.monotonic() - started
    assert cut == "", cut
    assert 9 <= elapsed < 15, f"the stalled transaction was cut after {elapsed:.1f} s, not at the 10 s deadline"
    assert relay.process.wait(timeout=20) == 0
    relay.stop()
    assert relay.queue_files() == []
