"""Issue 13 end to end: each attack of the adversarial probe, replayed against the real relay and the
Microsoft stand-in. AUTH guesses in parallel and by timing, intake stalled behind hashing and a
hanging token endpoint, files planted in the spool, bytes that act on terminals, descriptor
exhaustion, and sidecars left behind. A nonsense or huge token response: test_token_responses.py."""
import base64
import json
import os
import resource
import socket
import stat
import statistics
import subprocess
import threading
import time

import pytest

from conftest import BINARY, LOCAL_PASSWORD, LOCAL_USER, MAILBOX, ROOT
from test_hostile import RawClient, auth_plain

HASHED_USER = "printer"
HASHED_PASSWORD = "Pr1nter-pass"


def hashed(password=HASHED_PASSWORD):
    result = subprocess.run([BINARY, "hash-password"], input=password + "\n", capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def with_hashed_user(relay):
    relay.users = [{"name": HASHED_USER, "password_hash": hashed(), "account": "office"},
                   {"name": LOCAL_USER, "password": LOCAL_PASSWORD, "account": "office"}]


def greeted_client(relay, source="127.0.0.1"):
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(60)
    sock.connect(("127.0.0.1", relay.port))
    client = RawClient.__new__(RawClient)
    client.sock, client.buffer = sock, b""
    assert client.reply().startswith("220")
    assert client.command("EHLO probe.test").startswith("250")
    return client


def send_timed(relay, sender=MAILBOX, body="Subject: timed\r\n\r\nhello\r\n", source="127.0.0.1"):
    """One message over a raw session; returns (end-of-data reply, seconds from '.' to the reply)."""
    client = greeted_client(relay, source)
    assert client.command(f"MAIL FROM:<{sender}>").startswith("250")
    assert client.command("RCPT TO:<boss@example.com>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.send(body)
    started = time.monotonic()
    reply = client.command(".")
    elapsed = time.monotonic() - started
    client.command("QUIT")
    client.close()
    return reply, elapsed


# ---- item 1: AUTH attempts are counted before they are checked ------------------------------------

def test_parallel_guesses_never_exceed_auth_max_failures(relay, standin):
    with_hashed_user(relay)
    relay.settings.update({"auth_failure_delay": "0s", "auth_max_failures": 10, "auth_lockout": "60s",
                           "max_clients_per_ip": 300})
    relay.start()
    clients = [greeted_client(relay) for _ in range(41)]
    answers = [None] * len(clients)

    def guess(i):
        password = HASHED_PASSWORD if i == 40 else f"guess-{i}"
        answers[i] = clients[i].command(auth_plain(HASHED_USER, password))

    threads = []
    for i in range(40):   # 40 wrong guesses 3 ms apart, all in flight together
        threads.append(threading.Thread(target=guess, args=(i,)))
        threads[-1].start()
        time.sleep(0.003)
    for t in threads:
        t.join(120)
    # Then the right password, once the guesses are answered (sent among them, it may arrive before
    # the tenth is counted, and then 235 is right: CI's loaded machine did that).
    guess(40)
    for c in clients:
        c.close()
    assert all(a is not None for a in answers), answers
    wrong = answers[:40]
    checked = [a for a in wrong if a.startswith("535 5.7.8")]
    assert len(checked) <= 10, wrong
    assert all(a.startswith("535 5.7.8") or a.startswith("454 4.7.0") for a in wrong), wrong
    # Busy refusals (too many checks in flight from one address) are not failures: the lockout
    # comes only with the tenth checked guess. Before the fix, 40 were checked and 235 came anyway.
    if len(checked) == 10:
        assert answers[40].startswith("454 4.7.0"), (answers[40], wrong)
    else:
        assert answers[40].startswith("235"), (answers[40], wrong)
    assert len(relay.log_lines("auth_failed")) <= 10
    # More guesses, one at a time, until the lockout: never more than 10 checked in all.
    client = greeted_client(relay)
    for i in range(12):
        answer = client.command(auth_plain(HASHED_USER, f"later-{i}"))
        checked.append(answer) if answer.startswith("535") else None
        if answer.startswith("454"):
            break
    assert len(checked) == 10, checked
    assert client.command(auth_plain(HASHED_USER, HASHED_PASSWORD)).startswith("454 4.7.0")   # locked out
    client.close()
    assert len(relay.log_lines("auth_failed")) == 10
    assert len(relay.log_lines("auth_lockout")) == 1


# ---- item 12: unknown names cost what wrong passwords cost ----------------------------------------

def test_unknown_user_is_answered_as_late_as_a_wrong_password(relay, standin):
    with_hashed_user(relay)
    relay.settings.update({"auth_failure_delay": "0s", "auth_max_failures": 100})
    relay.start()
    client = greeted_client(relay)
    client.command(auth_plain("nobody-warm-up", "x"))   # the dummy hash is made once
    timings = {"unknown": [], "known": []}
    for i in range(4):
        for kind, user in (("unknown", f"nobody-{i}"), ("known", HASHED_USER)):
            started = time.monotonic()
            assert client.command(auth_plain(user, f"wrong-{kind}-{i}")).startswith("535")
            timings[kind].append(time.monotonic() - started)
    client.close()
    unknown, known = statistics.median(timings["unknown"]), statistics.median(timings["known"])
    # Before: unknown names were answered at once, a real user's wrong password after the KDF.
    assert unknown > 0.5 * known, timings
    assert known > 0.02, timings   # the KDF really ran (310,000 rounds)


# ---- item 2: the durable commit never waits behind hashing or HTTP --------------------------------

def test_password_guessing_flood_does_not_delay_the_end_of_data_reply(relay, standin):
    with_hashed_user(relay)
    relay.settings.update({"auth_failure_delay": "0s", "auth_max_failures": 1000})
    relay.start()
    _, at_rest = send_timed(relay)
    stop = threading.Event()
    answers = []

    def flood(source):
        n = 0
        while not stop.is_set():   # a session closed after max_errors is opened again
            try:
                client = greeted_client(relay, source)
                while not stop.is_set():
                    answer = client.command(auth_plain(HASHED_USER, f"flood-{source}-{n}"))[:3]
                    answers.append(answer)
                    n += 1
                    if not answer.startswith(("535", "454")):
                        break
                client.close()
            except OSError:
                time.sleep(0.05)

    # A hundred sessions from fifty addresses (loopback is a /8) guessing at once: far more checks
    # than any pool has threads, every one a new password (a KDF run).
    threads = [threading.Thread(target=flood, args=(f"127.0.0.{10 + i % 50}",)) for i in range(100)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    try:
        replies = [send_timed(relay) for _ in range(3)]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert all(r.startswith("250 2.0.0") for r, _ in replies), replies
    worst = max(t for _, t in replies)
    assert "454" in answers, "the bounded KDF queue answered nobody with 454"
    # Before: ~29 s with 200 guessers (here the commit queued behind ~100 KDF runs on 4 threads).
    assert worst < max(2.0, 4 * at_rest), (worst, at_rest)


def test_hanging_token_endpoint_does_not_delay_the_end_of_data_reply(relay, standin):
    senders = [MAILBOX] + [f"app{i}@contoso.com" for i in range(2, 6)]
    relay.accounts = {"office": relay.account_for(standin)}
    for i in range(2, 6):
        relay.accounts[f"a{i}"] = relay.account_for(standin, email=f"app{i}@contoso.com")
    relay.settings.pop("default_account")
    standin.control(token_lifetime=1)   # every imported access token is stale at once
    for name in relay.accounts:
        relay.import_token(account=name)
    time.sleep(1.5)
    standin.control(token_delay_ms=12000)
    relay.start()
    # One message per account: five deliveries each wait on a token request that hangs.
    for sender in senders:
        reply, _ = send_timed(relay, sender=sender)
        assert reply.startswith("250"), reply
    time.sleep(1.0)
    replies = [send_timed(relay, sender=senders[i % len(senders)]) for i in range(3)]
    assert all(r.startswith("250 2.0.0") for r, _ in replies), replies
    worst = max(t for _, t in replies)
    assert worst < 3.0, worst   # before: until the token requests returned (12 s here, ~29 s in the probe)
    standin.control(token_delay_ms=0)


# ---- item 6: files the relay does not trust ----------------------------------------------------------

def first_run(relay):
    relay.start()
    reply, _ = send_timed(relay)
    assert reply.startswith("250"), reply
    relay.standin.wait_for_messages(1, timeout=30)
    deadline = time.monotonic() + 10
    while relay.queue_files() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_symlink_planted_in_recycled_is_never_written_through(relay, standin, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    first_run(relay)
    recycled = os.path.join(relay.spool_dir, "recycled")
    reused = os.listdir(recycled)
    assert reused, "a delivered message leaves a file to reuse"
    # While the relay runs: the file it will reuse becomes a symlink to someone else's file.
    for name in reused:
        os.unlink(os.path.join(recycled, name))
        os.symlink(victim, os.path.join(recycled, name))
    for i in range(2):
        reply, _ = send_timed(relay, body=f"Subject: s{i}\r\n\r\n{'overwrite ' * 50}\r\n")
        assert reply.startswith("250"), reply
    standin.wait_for_messages(3, timeout=30)
    assert victim.read_text() == "precious\n"
    # Planted while it was stopped: removed at the next start, with a warning.
    relay.stop()
    os.symlink(victim, os.path.join(recycled, "0000000000000001"))
    relay.start()
    assert not os.path.lexists(os.path.join(recycled, "0000000000000001"))
    assert relay.log_lines("symlink_removed")
    send_timed(relay)
    standin.wait_for_messages(4, timeout=30)
    assert victim.read_text() == "precious\n"


def expect_refused_start(relay):
    with pytest.raises(AssertionError) as failure:
        relay.start()
    relay.process = None
    relay.log_file.close()
    return str(failure.value)


def test_an_open_spool_is_closed_and_foreign_files_stop_the_start(relay, standin):
    first_run(relay)
    relay.stop()
    queue = os.path.join(relay.spool_dir, "queue")
    os.chmod(relay.spool_dir, 0o777)
    os.chmod(queue, 0o777)
    relay.start()
    # spool_dir keeps only the search bits sendmail's maildrop needs (tmpfiles.d makes it 0711).
    assert stat.S_IMODE(os.stat(relay.spool_dir).st_mode) == 0o711
    assert stat.S_IMODE(os.stat(queue).st_mode) == 0o700
    fixed = relay.log_lines("permissions_fixed")
    assert any(f"path={queue} " in line for line in fixed), fixed
    relay.stop()
    # A message file another user planted in queue/ is not delivered: the relay refuses to start.
    planted = os.path.join(queue, "19AB3C44D5E0001F")
    with open(planted, "w") as f:
        f.write("planted\n")
    os.chown(planted, 65534, 65534)
    log = expect_refused_start(relay)
    assert f"refusing to start: {planted} is owned by uid 65534" in log, log
    os.unlink(planted)
    os.chown(os.path.join(relay.state_dir, "tokens"), 65534, 65534)
    log = expect_refused_start(relay)
    assert os.path.join(relay.state_dir, "tokens") + " is owned by uid 65534" in log, log
    os.chown(os.path.join(relay.state_dir, "tokens"), os.geteuid(), os.getegid())
    relay.start()
    assert standin.stats()["messages_accepted"] == 1


def test_a_config_with_secrets_readable_by_others_draws_a_warning(relay, standin):
    relay.write_config()
    os.chmod(relay.config_path, 0o644)
    relay.start()
    warnings = relay.log_lines("config_readable_by_others")
    assert len(warnings) == 1 and relay.config_path in warnings[0], relay.log()
    assert "test-client-secret" not in relay.log() and LOCAL_PASSWORD not in relay.log()
    relay.stop()
    os.chmod(relay.config_path, 0o640)
    relay.start()
    assert len(relay.log_lines("config_readable_by_others")) == 1


# ---- item 7: bytes that act on terminals, and JSON logs --------------------------------------------

EVIL_HEADER = "X-Evil: \x1b]52;c;ZXZpbA==\x07 \x1b]0;pwned\x07 \x1b[2J\u009b31m"   # U+009B: C1 CSI


def test_queue_show_escapes_what_would_act_on_a_terminal(relay, standin):
    relay.accounts["office"]["upstream"] = "localhost:9"   # nothing listens: the message stays queued
    relay.start()
    reply, _ = send_timed(relay, body=f"Subject: hi\r\n{EVIL_HEADER}\r\n\r\nbody\r\n")
    assert reply.startswith("250"), reply
    queue_id = reply.split()[-1]
    shown = relay.run("queue", "show", queue_id)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout and "\x9b" not in shown.stdout
    assert "X-Evil: \\x1b]52;c;ZXZpbA==\\x07 \\x1b]0;pwned\\x07 \\x1b[2J\\xc2\\x9b31m" in shown.stdout, shown.stdout
    assert "Subject: hi" in shown.stdout
    raw = subprocess.run([BINARY, "queue", "show", queue_id, "--raw", "--config", relay.config_path],
                         capture_output=True, timeout=30)
    assert raw.returncode == 0
    assert EVIL_HEADER.encode() + b"\r\n" in raw.stdout
    listed = relay.run("queue", "list")
    assert "\x1b" not in listed.stdout


def test_json_log_lines_stay_valid_utf8_whatever_clients_send(relay, standin):
    relay.settings["log_format"] = "json"
    relay.start()
    client = greeted_client(relay)
    user = b"\xff\xfe\x1b]0;pwned\x07\xc0\xafadmin"
    client.send(b"AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0wrong") + b"\r\n")
    assert client.reply().startswith("535")
    client.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and b"auth_failed" not in open(relay.log_path, "rb").read():
        time.sleep(0.05)
    data = open(relay.log_path, "rb").read()
    assert b"auth_failed" in data
    seen = False
    for line in data.splitlines():
        text = line.decode("utf-8")          # strict: raises on invalid UTF-8 (before: \xff passed raw)
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in text), text
        if text.startswith("{"):
            event = json.loads(text)
            if event["event"] == "auth_failed":
                seen = True
                assert "\ufffd" in event["detail"], event   # the invalid bytes, marked
                assert "]0;pwned" in event["detail"], event
    assert seen


# ---- item 8: DSN boundaries nobody can predict -----------------------------------------------------

def test_a_dsn_boundary_cannot_be_predicted_from_the_250_reply(relay, standin):
    relay.accounts["office"]["bounce"] = True
    standin.control(reject_rcpt={"boss@example.com": "550 5.1.1 User unknown"})
    relay.start()
    # The probe read the queue id from the 250 and knew the report's boundary: "=_dsn_<id>". A client
    # that plants boundary lines in its header must not be able to add parts to the report.
    planted = "X-Planted: --=_dsn_planted\r\n"
    reply, _ = send_timed(relay, body=f"Subject: bounce me\r\n{planted}\r\nbody\r\n")
    assert reply.startswith("250"), reply
    queue_id = reply.split()[-1]
    dsn = [body for _, body in standin.wait_for_messages(1, timeout=30) if b"report-type=delivery-status" in body]
    assert len(dsn) == 1
    body = dsn[0].decode()
    boundary = body.split('boundary="', 1)[1].split('"', 1)[0]
    assert queue_id not in boundary, boundary   # before: "=_dsn_" + the queue id from the 250
    assert len(boundary) >= 6 + 32
    assert body.count("--" + boundary) == 4      # three parts and the close, nothing added
    assert "X-Planted: --=_dsn_planted" in body   # the client's header comes back, inert


# ---- item 10: sidecars go with their message ---------------------------------------------------------

def test_a_deferred_message_leaves_no_sidecar_once_delivered(relay, standin):
    standin.control(fail_mail_with="451 4.3.0 try again later")
    relay.start()
    reply, _ = send_timed(relay)
    assert reply.startswith("250"), reply
    relay.wait_for_log("deferred", timeout=30)
    queue = os.path.join(relay.spool_dir, "queue")
    assert any(name.endswith(".state") for name in os.listdir(queue)), os.listdir(queue)
    standin.control(fail_mail_with="")
    standin.wait_for_messages(1, timeout=30)
    deadline = time.monotonic() + 10
    while os.listdir(queue) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(queue) == []   # before: <ID>.state stayed forever


# ---- item 11: connection caps within the descriptor limit -------------------------------------------

def nofile(soft, hard):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_soft_descriptor_limit_is_raised_to_the_hard_limit(relay, standin):
    relay.preexec_fn = nofile(128, 2048)
    relay.start()
    line = relay.log_lines("fd_limits")[0]
    assert "nofile=2048 " in line, line
    with open(f"/proc/{relay.process.pid}/limits") as f:
        assert any(l.startswith("Max open files") and l.split()[3] == "2048" for l in f)


def test_one_host_cannot_take_every_descriptor(relay, standin):
    relay.preexec_fn = nofile(256, 256)
    relay.start()
    line = relay.log_lines("fd_limits")[0]
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    max_clients, per_ip = int(fields["max_clients"]), int(fields["max_clients_per_ip"])
    assert "nofile=256 " in line and max_clients < 128 and per_ip < max_clients, line
    time.sleep(0.3)
    sockets, greeted, refused = [], 0, 0
    try:
        for _ in range(300):   # one host opens everything it can
            s = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
            sockets.append(s)
            data = s.recv(512)
            if data.startswith(b"220 "):
                greeted += 1
            elif data.startswith(b"421 4.7.0"):
                refused += 1
        assert greeted == per_ip and refused == 300 - per_ip, (greeted, refused, per_ip)
        # Another address still gets in, and its mail is taken (before: EMFILE for everyone).
        reply, _ = send_timed(relay, source="127.0.0.2")
        assert reply.startswith("250"), reply
    finally:
        for s in sockets:
            s.close()


# ---- item 13: the docs say what the code does -------------------------------------------------------

def test_an_ipv6_listener_takes_no_ipv4_clients_as_documented(relay, standin):
    # Decided: "[::]:P" is IPv6-only (IPV6_V6ONLY); for both families list "0.0.0.0:P" as well.
    relay.settings["listen"] = [f"[::]:{relay.port}"]
    relay.write_config()
    relay.log_file = open(relay.log_path, "a")
    relay.process = subprocess.Popen([BINARY, "serve", "--config", relay.config_path], stdout=relay.log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    greeting = b""
    while time.monotonic() < deadline and not greeting:
        try:
            with socket.create_connection(("::1", relay.port), timeout=2) as s:
                greeting = s.recv(512)
        except OSError:
            time.sleep(0.05)
    assert greeting.startswith(b"220 "), relay.log()
    with pytest.raises(OSError):
        with socket.create_connection(("127.0.0.1", relay.port), timeout=2) as s:
            if not s.recv(512):
                raise ConnectionResetError("closed without a greeting")
    with open(os.path.join(ROOT, "conf", "config.example.toml")) as f:
        example = f.read()
    assert "IPv4-mapped" not in example
    assert "even if it would log in" in example and "IPv6 only" in example
