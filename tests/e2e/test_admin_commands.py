"""Issue 5 end to end: the commands an administrator runs against the service. `status` over the
control socket and /metrics scraped during a run, `sendmail -t` delivering through the relay and
its exit codes, `config --check`, a client secret from a systemd credential, and a secret-leak sweep
over everything a debug-level run prints. Mail goes in with test_service's smtplib sender."""
import base64
import json
import os
import re
import stat
import subprocess
import time
import urllib.error
import urllib.request

from conftest import BINARY, CLIENT_SECRET, LOCAL_PASSWORD, LOCAL_USER, MAILBOX, render_config, sendmail
from harness import free_port
from test_service import message, send


# --- status and metrics ---------------------------------------------------------------------------

def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, None, ""


def metric(text, name, **labels):
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not in metrics:\n{text}")


def test_status_and_metrics_during_a_run(relay, standin):
    metrics_port = free_port()
    relay.settings["metrics_listen"] = f"127.0.0.1:{metrics_port}"
    relay.start()
    socket_path = os.path.join(relay.state_dir, "control.sock")
    assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
    for i in range(2):
        send(relay.port, message(f"metrics {i}"))
    relay.wait_for_log("delivered", count=2)
    standin.set_smtp_up(False)
    send(relay.port, message("stuck"))
    relay.wait_for_log("deferred")

    result = relay.run("status")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"127.0.0.1:{relay.port}" in out and f"unix:{socket_path}" in out
    assert re.search(r"queue: 1 message\(s\): 0 queued, 0 active, 1 deferred, 0 held", out), out
    assert "oldest waiting" in out and "account office:" in out, out
    assert "refresh token stored" in out and "access token valid until 20" in out
    snapshot = json.loads(relay.run("status", "--json").stdout)
    assert snapshot["queue"]["deferred"] == 1 and snapshot["queue"]["oldest_age_s"] >= 0
    office = snapshot["accounts"][0]
    assert office["name"] == "office" and isinstance(office["on_hold"], bool)
    assert office["token"]["have_refresh_token"] is True and office["token"]["valid_for_s"] > 3000
    assert office["token"]["last_refresh"].endswith("Z") and office["token"]["last_error"] == ""

    status, content_type, text = scrape(metrics_port)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert metric(text, "smtp_oauth2_relay_messages_received_total", account="office") == 3
    assert metric(text, "smtp_oauth2_relay_messages_delivered_total", account="office") == 2
    assert metric(text, "smtp_oauth2_relay_messages_deferred_total", account="office") >= 1
    assert metric(text, "smtp_oauth2_relay_messages_failed_total", account="office") == 0
    assert metric(text, "smtp_oauth2_relay_upstream_replies_total", account="office", **{"class": "2xx"}) == 2
    assert metric(text, "smtp_oauth2_relay_upstream_replies_total", account="office", **{"class": "none"}) >= 1
    assert metric(text, "smtp_oauth2_relay_delivery_latency_seconds_count", account="office") == 2
    assert metric(text, "smtp_oauth2_relay_delivery_latency_seconds_bucket", account="office", le="+Inf") == 2
    assert metric(text, "smtp_oauth2_relay_queue_messages", account="office", state="deferred") == 1
    assert metric(text, "smtp_oauth2_relay_account_on_hold", account="office") in (0, 1)
    assert metric(text, "smtp_oauth2_relay_token_valid_seconds", account="office") > 3000
    assert "# TYPE smtp_oauth2_relay_delivery_latency_seconds histogram" in text
    assert scrape(metrics_port, "/other")[0] == 404
    # The stand-in comes back: the deferred message goes out and the gauges follow.
    standin.set_smtp_up(True)
    relay.wait_for_log("delivered", count=3, timeout=30)
    assert json.loads(relay.run("status", "--json").stdout)["queue"]["total"] == 0


def test_a_second_relay_on_the_same_control_socket_stops_before_touching_the_spool(relay):
    relay.start()
    other = os.path.join(relay.workdir, "second.toml")
    with open(other, "w") as f:
        f.write(render_config(dict(relay.settings, listen=[f"127.0.0.1:{free_port()}"]), relay.users, relay.accounts))
    second = subprocess.run([BINARY, "serve", "--config", other], capture_output=True, text=True, timeout=30)
    assert second.returncode == 1 and "another relay is running" in second.stderr, second.stderr
    assert json.loads(relay.run("status", "--json").stdout)["queue"]["total"] == 0  # the first one still answers


def test_status_without_a_running_relay_exits_1(relay):
    result = relay.run("status")
    assert result.returncode == 1 and "cannot reach the relay" in result.stderr


# --- sendmail -------------------------------------------------------------------------------------


def test_sendmail_t_delivers_through_the_relay_with_bcc_removed(relay, standin):
    relay.start()
    data = (b"To: Boss <boss@example.com>, \"Doe, Jane\" <jane@example.com>\n"
            b"Cc: ops@example.com\nBcc: audit@example.com,\n hidden@example.com\nSubject: nightly report\n\n"
            b"line one\n.\n..two dots\n.dot first\nend\n")
    result = sendmail(relay, ["-t", "-i", "-f", MAILBOX], data)
    assert result.returncode == 0, result.stderr
    envelope, received = standin.wait_for_messages(1, timeout=20)[0]
    assert envelope["mail_from"] == MAILBOX
    assert sorted(envelope["rcpt_to"]) == sorted(["boss@example.com", "jane@example.com", "ops@example.com",
                                                  "audit@example.com", "hidden@example.com"])
    assert b"Bcc" not in received and b"hidden@example.com" not in received
    assert b"\r\nline one\r\n.\r\n..two dots\r\n.dot first\r\nend\r\n" in received
    assert b"\nDate: " in b"\n" + received and b"\nFrom: " in b"\n" + received

    # Without -i a lone "." ends the input (traditional sendmail); the subcommand form works too, and
    # without -f the sender is the default account's mailbox (the only one Office 365 accepts).
    plain = subprocess.run([BINARY, "sendmail", "--config", relay.config_path, "boss@example.com"],
                           input=b"Subject: dot\n\nbefore\n.\nafter\n", capture_output=True, timeout=30)
    assert plain.returncode == 0, plain.stderr
    envelope, second = standin.wait_for_messages(2, timeout=20)[1]
    assert b"before\r\n" in second and b"after" not in second
    assert envelope["mail_from"] == MAILBOX and f"From: {MAILBOX}".encode() in second


def test_sendmail_exit_codes(relay):
    relay.start()
    assert sendmail(relay, [], b"Subject: x\n\nno rcpt\n").returncode == 64          # EX_USAGE
    assert sendmail(relay, ["-X", "a@b"], b"x\n").returncode == 64
    too_big = b"Subject: big\n\n" + (b"x" * 900 + b"\n") * 1300
    assert sendmail(relay, ["boss@example.com"], too_big).returncode == 65           # EX_DATAERR (552)
    relay.stop()
    # The relay down: the maildrop keeps the message (issue 12), cron does not throw it away.
    down = sendmail(relay, ["boss@example.com"], b"Subject: x\n\nrelay down\n")
    assert down.returncode == 0 and b"sent when the relay runs" in down.stderr, down.stderr
    os.rename(os.path.join(relay.spool_dir, "maildrop"), os.path.join(relay.spool_dir, "no-maildrop"))
    nowhere = sendmail(relay, ["boss@example.com"], b"Subject: x\n\nrelay down, no maildrop\n")
    assert nowhere.returncode == 75 and b"try again later" in nowhere.stderr        # EX_TEMPFAIL
    broken = subprocess.run([BINARY, "sendmail", "--config", "/nonexistent.toml", "a@b"], input=b"x\n",
                            capture_output=True, timeout=30)
    assert broken.returncode == 78                                                   # EX_CONFIG


# --- config --check -------------------------------------------------------------------------------

def test_config_check_prints_every_key_with_secrets_masked(relay, tmp_path):
    result = relay.run("config", "--check")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for key in ("listen", "allow_networks", "spool_dir", "state_dir", "max_message_size", "require_auth",
                "hostname", "min_backoff", "max_backoff", "max_queue_lifetime", "log_level", "log_format",
                "control_socket", "client_id", "token_url", "scope", "upstream", "upstream_tls",
                "upstream_auth", "max_connections"):
        assert re.search(rf"^{key} = ", out, re.M), key
    assert 'max_queue_lifetime = "432000s"' in out and 'log_format = "auto"' in out  # defaults filled in
    assert "# metrics_listen is not set" in out
    assert 'client_secret = "********"' in out and 'password = "********"' in out
    assert CLIENT_SECRET not in out and LOCAL_PASSWORD not in out
    relay.settings["max_backoff"] = "forever"
    bad = relay.run("config", "--check")
    assert bad.returncode == 2 and re.search(r"config\.toml:\d+:\d+: .*max_backoff", bad.stderr), bad.stderr


def test_client_secret_from_a_systemd_credential(relay, tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "office.secret").write_text(CLIENT_SECRET + "\n")
    del relay.accounts["office"]["client_secret"]
    relay.accounts["office"]["client_secret_file"] = "${CREDENTIALS_DIRECTORY}/office.secret"
    missing = relay.run("config", "--check")
    assert missing.returncode == 2 and "CREDENTIALS_DIRECTORY" in missing.stderr
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    relay.start()   # token import redeems the token with the secret read from the credential
    send(relay.port, message("credential"))
    relay.wait_for_log("delivered")


# --- secrets --------------------------------------------------------------------------------------

def test_no_secret_or_token_in_any_output_at_debug_level(relay, standin):
    standin.control(token_lifetime=2, rotation="invalidate")  # refreshes (and rotations) during the run
    metrics_port = free_port()
    relay.settings["metrics_listen"] = f"127.0.0.1:{metrics_port}"
    relay.settings["log_level"] = "debug"
    standin.control(add_refresh_token={"token": "leak-test-refresh-token-Zq9", "user": MAILBOX})
    imported = relay.import_token("leak-test-refresh-token-Zq9")
    tokens = {"leak-test-refresh-token-Zq9"}
    relay.start(import_token=False)
    token_file = os.path.join(relay.state_dir, "tokens", "office.json")
    outputs = [imported.stdout, imported.stderr]
    for i, mechanism in enumerate(["PLAIN", "LOGIN", None, "PLAIN"]):
        send(relay.port, message(f"leak {i}"), login=(LOCAL_USER, LOCAL_PASSWORD) if mechanism else None,
             mechanism=mechanism)
        relay.wait_for_log("delivered", count=i + 1)
        tokens.add(standin.latest_refresh_token())
        stored = json.load(open(token_file))
        tokens.update(v for k, v in stored.items() if "token" in k and isinstance(v, str) and v)
        time.sleep(1.7)  # let the 2 s access token go stale, so the next delivery refreshes
    status = relay.run("status")
    outputs += [status.stdout, status.stderr, relay.run("status", "--json").stdout,
                relay.run("config", "--check").stdout, scrape(metrics_port)[2]]
    metrics_text = outputs[-1]
    assert relay.stop() == 0
    outputs.append(relay.log())
    assert len(relay.log_lines("token_refreshed")) >= 2
    assert metric(metrics_text, "smtp_oauth2_relay_token_refreshes_total", account="office") >= 2
    everything = "\n".join(outputs)
    assert "token_refreshed" in everything and "debug" in everything
    secrets = {CLIENT_SECRET, LOCAL_PASSWORD} | tokens
    assert len(tokens) >= 4, tokens
    for secret in secrets:
        assert secret not in everything, f"a secret ({len(secret)} chars) appears in the output"
        # ... nor in the encodings SASL uses.
        for encoded in (base64.b64encode(secret.encode()).decode(),
                        base64.b64encode(f"\0{LOCAL_USER}\0{secret}".encode()).decode(),
                        base64.b64encode(f"user={MAILBOX}\x01auth=Bearer {secret}\x01\x01".encode()).decode()):
            assert encoded not in everything
