"""Issue 2 end to end: legacy SMTP in (swaks, curl, smtplib), durable spool, XOAUTH2 over verified
STARTTLS out to the Microsoft stand-in, token refresh and rotation, outages, crashes, refusals."""
import base64
import json
import os
import smtplib
import socket
import stat
import subprocess
import time

import pytest

from conftest import CLIENT_SECRET, LOCAL_PASSWORD, LOCAL_USER, MAILBOX


def message(subject, body_lines=("Hello from a legacy app.",)):
    lines = [f"From: {MAILBOX}", "To: boss@example.com", f"Subject: {subject}", ""] + list(body_lines)
    return ("\r\n".join(lines) + "\r\n").encode()


def send_smtplib(port, data, rcpts=("boss@example.com",), sender=MAILBOX, login=None):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("legacy-app.local")
        if login:
            client.login(*login)
        refused = client.sendmail(sender, list(rcpts), data)
        assert refused == {}
        code, text = client.noop()
        assert code == 250


def test_swaks_message_arrives_byte_identical_with_xoauth2_over_tls(relay, standin, tmp_path):
    relay.start()
    body = tmp_path / "scan.eml"
    # Lines starting with "." exercise dot-stuffing in both directions; 8-bit text passes through.
    raw = message("Scan 0001", ["Page 1", ".hidden dot line", "..two dots", ".", "caf\u00e9 \u2713", "end"])
    body.write_bytes(raw[:-2])  # swaks adds the final CRLF itself before the "."
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{relay.port}", "--from", MAILBOX,
                             "--to", "boss@example.com", "--data", str(body), "--helo", "printer.local"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Ok: queued as " in result.stdout
    queue_id = result.stdout.split("queued as ")[1].split()[0]

    envelope, received = standin.wait_for_messages(1, timeout=20)[0]
    assert received == raw
    assert envelope["mail_from"] == MAILBOX
    assert envelope["rcpt_to"] == ["boss@example.com"]
    assert envelope["auth_mechanism"] == "XOAUTH2"
    assert envelope["auth_user"] == MAILBOX
    assert envelope["tls"] is True
    delivered = relay.wait_for_log("delivered")
    assert f"queue_id={queue_id}" in delivered[0]
    assert any(f"queue_id={queue_id}" in line for line in relay.log_lines("received"))
    deadline = time.monotonic() + 5
    while relay.queue_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert relay.queue_files() == []


def test_curl_and_smtplib_with_auth_plain_and_login(relay, standin, tmp_path):
    relay.start()
    mail = tmp_path / "curl.eml"
    mail.write_bytes(message("via curl"))
    result = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{relay.port}", "--mail-from", MAILBOX,
                             "--mail-rcpt", "one@example.com", "--mail-rcpt", "two@example.com",
                             "--upload-file", str(mail), "--user", f"{LOCAL_USER}:{LOCAL_PASSWORD}",
                             "--login-options", "AUTH=PLAIN"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.ehlo("erp")
        assert "LOGIN" in client.esmtp_features["auth"]
        client.user, client.password = LOCAL_USER, LOCAL_PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
        client.sendmail(MAILBOX, ["three@example.com"], message("via smtplib LOGIN"))
    messages = standin.wait_for_messages(2, timeout=20)
    by_subject = {body.split(b"Subject: ")[1].split(b"\r\n")[0]: env for env, body in messages}
    assert by_subject[b"via curl"]["rcpt_to"] == ["one@example.com", "two@example.com"]
    assert by_subject[b"via smtplib LOGIN"]["rcpt_to"] == ["three@example.com"]
    assert "user=scanner" in relay.log_lines("received")[0]


def test_short_lived_tokens_refresh_about_once_per_expiry(relay, standin):
    standin.control(token_lifetime=3)
    relay.import_token()
    relay.start(import_token=False)
    refreshes_before = standin.stats()["token_requests"]["refresh_token"]["ok"]
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < 10:
        send_smtplib(relay.port, message(f"tick {sent}"))
        sent += 1
        time.sleep(0.4)
    standin.wait_for_messages(sent, timeout=30)
    elapsed = time.monotonic() - started
    refreshes = standin.stats()["token_requests"]["refresh_token"]["ok"] - refreshes_before
    expiries = elapsed / 3
    assert sent >= 15
    # About one refresh per expiry (refreshed when 1/5 of the lifetime is left), never one per message.
    assert expiries - 1 <= refreshes <= expiries * 1.25 + 2, (refreshes, expiries, sent)
    assert standin.stats()["auth"]["XOAUTH2"]["failure"] == 0


def test_rotation_with_restart_between_sends_still_delivers(relay, standin):
    standin.control(rotation="invalidate", token_lifetime=2)
    relay.import_token()                   # the imported token is now dead: the rotated one is stored
    relay.start(import_token=False)
    send_smtplib(relay.port, message("before restart"))
    standin.wait_for_messages(1, timeout=20)
    time.sleep(2.5)                        # the access token expires: the next send must refresh
    send_smtplib(relay.port, message("after expiry"))
    standin.wait_for_messages(2, timeout=20)
    assert relay.stop() == 0
    time.sleep(2.5)
    relay.start(import_token=False)
    send_smtplib(relay.port, message("after restart"))
    standin.wait_for_messages(3, timeout=20)
    assert standin.stats()["token_requests"]["refresh_token"].get("invalid_grant", 0) == 0
    token_file = os.path.join(relay.state_dir, "tokens", "office.json")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600


def test_upstream_down_then_up_delivers_everything(relay, standin):
    relay.start()
    standin.set_smtp_up(False)
    for i in range(5):
        send_smtplib(relay.port, message(f"queued while down {i}"))
    relay.wait_for_log("deferred", timeout=20)
    assert len(relay.queue_files()) == 5
    assert standin.messages() == []
    standin.set_smtp_up(True)
    messages = standin.wait_for_messages(5, timeout=30)
    subjects = sorted(body.split(b"Subject: ")[1].split(b"\r\n")[0] for _, body in messages)
    assert subjects == [f"queued while down {i}".encode() for i in range(5)]


def test_kill_9_after_250_then_restart_delivers(relay, standin):
    relay.start()
    standin.set_smtp_up(False)
    for i in range(3):
        send_smtplib(relay.port, message(f"survives kill {i}"))
    relay.kill()
    assert len(relay.queue_files()) == 3
    standin.set_smtp_up(True)
    relay.start(import_token=False)
    standin.wait_for_messages(3, timeout=30)
    deadline = time.monotonic() + 5
    while relay.queue_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert relay.queue_files() == []


def test_wrong_local_password_gets_535_and_nothing_is_delivered(relay, standin):
    relay.settings["require_auth"] = True
    relay.start()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.ehlo("app")
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(LOCAL_USER, "wrong-password")
        assert refused.value.smtp_code == 535
        assert refused.value.smtp_error.startswith(b"5.7.8")
        with pytest.raises(smtplib.SMTPSenderRefused) as no_auth:
            client.sendmail(MAILBOX, ["boss@example.com"], message("should not pass"))
        assert no_auth.value.smtp_code == 530
    time.sleep(1)
    assert standin.messages() == []
    assert relay.queue_files() == []
    assert "wrong-password" not in relay.log()


def test_oversized_message_gets_552(relay, standin):
    relay.settings["max_message_size"] = 20000
    relay.start()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.ehlo("app")
        assert client.esmtp_features["size"] == "20000"
        big = message("too big", ["x" * 900] * 30)
        # Declared size: refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            client.sendmail(MAILBOX, ["boss@example.com"], big, mail_options=[f"SIZE={len(big)}"])
        assert declared.value.smtp_code == 552
        client.rset()
        # Undeclared size: refused at end of data.
        client.mail(MAILBOX)
        client.rcpt("boss@example.com")
        code, text = client.data(big)
        assert code == 552 and text.startswith(b"5.3.4"), (code, text)
    assert relay.queue_files() == []


def test_client_outside_allow_networks_is_refused_with_554(relay, standin):
    relay.settings["allow_networks"] = ["10.0.0.0/8"]
    relay.start()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(512).startswith(b"554 5.7.1 ")   # no greeting: the refusal, then the close
        assert s.recv(512) == b""
    refused = relay.wait_for_log("reject")
    assert "client=127.0.0.1 command=CONNECT" in refused[0]


def test_unauthenticated_client_without_default_account_gets_550(relay, standin):
    # Issue 4 refined the core rule: an unknown sender without a default account gets 550 5.7.1.
    del relay.settings["default_account"]
    relay.start()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.ehlo("app")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("stranger@example.com", ["boss@example.com"], message("no account"))
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.startswith(b"5.7.1")


def test_token_import_reports_a_dead_refresh_token_with_the_fix(relay, standin):
    result = relay.run("token", "import", "--account", "office", stdin="not-a-valid-refresh-token\n")
    assert result.returncode == 1
    assert "invalid_grant" in result.stderr
    assert "authorize" in result.stderr
    assert "not-a-valid-refresh-token" not in result.stderr + result.stdout
    assert not os.path.exists(os.path.join(relay.state_dir, "tokens", "office.json"))

    ok = relay.import_token()
    assert "initial-refresh-token" not in ok.stdout + ok.stderr
    assert CLIENT_SECRET not in ok.stdout + ok.stderr
    with open(os.path.join(relay.state_dir, "tokens", "office.json")) as f:
        stored = json.load(f)
    assert stored["refresh_token"] and stored["refresh_token"] != "initial-refresh-token"  # rotated


def test_config_errors_name_file_line_and_column_and_exit_2(relay, standin, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[relay]\nlisten = ["127.0.0.1:2525"]\nmax_mesage_size = 10\n\n[accounts.office]\nclient_id = 5\n')
    result = subprocess.run([os.environ.get("RELAY_BINARY"), "serve", "--config", str(bad)],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert f"{bad}:3:1:" in result.stderr, result.stderr
    assert f"{bad}:6:" in result.stderr, result.stderr
    usage = subprocess.run([os.environ.get("RELAY_BINARY"), "serve", "--bogus"], capture_output=True, text=True)
    assert usage.returncode == 2 and "unknown option --bogus" in usage.stderr
    for args in (["--help"], ["serve", "--help"], ["token", "import", "--help"]):
        helped = subprocess.run([os.environ.get("RELAY_BINARY"), *args], capture_output=True, text=True)
        assert helped.returncode == 0 and "usage:" in helped.stdout, args


def test_no_secret_reaches_the_log(relay, standin):
    relay.start()
    send_smtplib(relay.port, message("secret check"), login=(LOCAL_USER, LOCAL_PASSWORD))
    standin.wait_for_messages(1, timeout=20)
    assert relay.stop() == 0
    log = relay.log()
    with open(os.path.join(relay.state_dir, "tokens", "office.json")) as f:
        stored = json.load(f)
    for secret in (CLIENT_SECRET, LOCAL_PASSWORD, "initial-refresh-token", stored["refresh_token"],
                   stored["access_token"], base64.b64encode(stored["access_token"].encode()).decode()[:40]):
        assert secret not in log


def test_msmtp_with_starttls_and_auth_like_a_cron_job(relay, standin, tmp_path):
    """msmtp, as cron scripts use it: STARTTLS to the relay (its generated certificate, verified for
    the relay's hostname), AUTH PLAIN, recipients on the command line, the message on stdin."""
    relay.settings["hostname"] = "localhost"     # the generated certificate's name, which msmtp checks
    relay.start()
    cert = os.path.join(relay.state_dir, "tls", "cert.pem")
    mail = message("nightly backup report", ["backup finished: 42 files", ".dotfile kept"])
    result = subprocess.run(["msmtp", "--host=localhost", f"--port={relay.port}", "--tls=on", "--tls-starttls=on",
                             f"--tls-trust-file={cert}", "--auth=plain", f"--user={LOCAL_USER}",
                             f"--passwordeval=echo {LOCAL_PASSWORD}", f"--from={MAILBOX}", "ops@example.com"],
                            input=mail, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    envelope, body = standin.wait_for_messages(1, timeout=20)[0]
    assert body.endswith(mail) and body.startswith(b"Date: ")   # msmtp adds the missing Date header
    assert envelope["rcpt_to"] == ["ops@example.com"]
    assert "user=scanner" in relay.log_lines("received")[0]
