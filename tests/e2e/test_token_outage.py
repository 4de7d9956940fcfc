"""Issue 11, items 4 and 5 (to=), issue 12, item 5, end to end: a token endpoint outage heals within
a minute of recovery on the token's own retry schedule (not the SMTP backoff); a refresh that
returns invalid_grant after the upstream's 535 holds the account at once with the authorize hint;
status, queue list, metrics and the log use the same state words; received/deferred/delivered/failed
lines name every recipient (text and JSON), unless log_recipients = false.
The relay keeps the default SMTP backoff (300 s) here, so the old behaviour would fail these tests."""
import json
import smtplib
import time
import urllib.request

from conftest import CLIENT_SECRET, MAILBOX
from harness import free_port

RCPTS = ["boss@example.com", "clerk@example.com"]


def send(relay, subject, rcpts=RCPTS):
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.sendmail(MAILBOX, list(rcpts),
                        f"From: {MAILBOX}\r\nTo: {rcpts[0]}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode())


def slow_smtp_backoff(relay):
    relay.settings["min_backoff"] = "300s"
    relay.settings["max_backoff"] = "600s"


def assert_no_secrets(relay, standin):
    log = relay.log()
    secrets = [CLIENT_SECRET, "initial-refresh-token", standin.latest_refresh_token()]
    for secret in secrets:
        assert secret and secret not in log, f"a secret is in the log: {secret[:6]}..."
    assert "Bearer " not in log and "access_token" not in log


def test_token_endpoint_outage_heals_within_a_minute_of_recovery(relay, standin):
    slow_smtp_backoff(relay)
    relay.start()
    # The relay's cached access token dies (Exchange will answer 535) and the endpoint has an outage:
    # 500 three times, then one request hangs 20 s and gets no answer, then it answers again.
    standin.control(expire_access_tokens=True, token_script=["500", "500", "500", "hang:20"])
    for i in range(5):
        send(relay, f"outage {i}")
    deadline = time.monotonic() + 90
    while True:
        hangs = [e for e in standin.stats()["token_log"] if e["outcome"] == "hang"]
        if hangs:
            break
        assert time.monotonic() < deadline, relay.log()
        time.sleep(0.2)
    recovered_at = hangs[0]["at"]        # the hang ended: from now on the endpoint answers
    wait = recovered_at + 60 - time.time()
    assert wait > 0
    standin.wait_for_messages(5, timeout=wait)
    accepted = standin.stats()["accepted_at"][-5:]
    assert max(accepted) <= recovered_at + 60, (accepted, recovered_at)
    assert relay.log_lines("account_backoff") == [], relay.log()   # never the 300 s SMTP backoff
    assert relay.log_lines("account_hold") == []
    assert relay.log_lines("account_waiting_for_token")
    assert any("retry_in=2" in line for line in relay.log_lines("token_refresh_failed"))
    assert relay.log_lines("account_woken")
    assert_no_secrets(relay, standin)


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def metric(text, name, **labels):
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not in metrics:\n{text}")


def test_invalid_grant_after_535_holds_at_once_and_every_view_says_held(relay, standin):
    slow_smtp_backoff(relay)
    metrics_port = free_port()
    relay.settings["metrics_listen"] = f"127.0.0.1:{metrics_port}"
    relay.start()
    # The refresh token is revoked with the access token: AUTH gets 535, the refresh invalid_grant.
    standin.control(expire_access_tokens=True, revoke_all_refresh_tokens=True)
    send(relay, "held back")
    hold = relay.wait_for_log("account_hold", timeout=20)[0]
    assert "authorize --account office" in hold and "invalid_grant" in hold, hold
    assert relay.log_lines("account_backoff") == [], relay.log()   # held at once, no 600 s backoff first
    assert relay.log_lines("upstream_auth_rejected")               # it was the 535 path

    status = relay.run("status")
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert "account office: held until a person acts" in out, out
    assert "hold reason: token: token request failed: invalid_grant" in out, out
    assert "what to do: run `smtp-oauth2-relay authorize --account office`" in out, out
    assert "last error: none" not in out and "last error: token:" in out, out
    assert "queue: 1 message(s): 1 queued, 0 active, 0 deferred, 0 held" in out, out
    snapshot = json.loads(relay.run("status", "--json").stdout)
    office = snapshot["accounts"][0]
    assert office["state"] == "held" and office["on_hold"] is True
    assert "invalid_grant" in office["hold_reason"] and office["last_error"]
    assert snapshot["queue"]["queued"] == 1

    listing = relay.run("queue", "list").stdout
    row = [line for line in listing.splitlines() if line.startswith(relay.queue_files()[0])][0]
    assert " queued " in row, listing
    assert "1 message(s): 1 queued, 0 deferred, 0 held, 0 failed" in listing, listing

    text = scrape(metrics_port)
    assert metric(text, "smtp_oauth2_relay_queue_messages", account="office", state="queued") == 1
    assert metric(text, "smtp_oauth2_relay_account_state", account="office", state="held") == 1
    assert metric(text, "smtp_oauth2_relay_account_state", account="office", state="ready") == 0
    assert metric(text, "smtp_oauth2_relay_account_on_hold", account="office") == 1
    help_lines = [line for line in text.splitlines() if line.startswith("# HELP smtp_oauth2_relay_account_state")]
    assert help_lines and all(word in help_lines[0] for word in ("ready", "backing-off", "waiting-for-token", "held"))
    assert "state=held" in hold
    assert_no_secrets(relay, standin)


def test_recipients_on_message_lines_in_text(relay, standin):
    standin.control(reject_rcpt={}, fail_mail_with="")
    relay.start()
    send(relay, "to both")
    relay.wait_for_log("delivered")
    expected = "to=<boss@example.com>,<clerk@example.com>"
    assert expected in relay.log_lines("received")[0] and expected in relay.log_lines("delivered")[0]
    standin.set_smtp_up(False)
    send(relay, "to both, later")
    assert expected in relay.wait_for_log("deferred")[0]
    standin.set_smtp_up(True)
    relay.wait_for_log("delivered", 2, timeout=30)
    standin.control(fail_mail_with="550 5.7.1 Message rejected by content policy")
    send(relay, "refused")
    assert expected in relay.wait_for_log("failed")[0]


def json_lines(relay, event):
    found = []
    for line in relay.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def wait_json(relay, event, count=1, timeout=30):
    deadline = time.monotonic() + timeout
    while len(json_lines(relay, event)) < count:
        assert time.monotonic() < deadline, relay.log()
        time.sleep(0.05)
    return json_lines(relay, event)


def test_recipients_are_a_json_array_and_can_be_switched_off(relay, standin):
    relay.settings["log_format"] = "json"
    relay.start()
    standin.set_smtp_up(False)
    send(relay, "json to both")
    assert wait_json(relay, "deferred")[0]["to"] == RCPTS
    standin.set_smtp_up(True)
    assert wait_json(relay, "delivered")[0]["to"] == RCPTS
    assert json_lines(relay, "received")[0]["to"] == RCPTS
    standin.control(fail_mail_with="550 5.7.1 Message rejected by content policy")
    send(relay, "json refused")
    assert wait_json(relay, "failed")[0]["to"] == RCPTS
    relay.stop()
    mentions = relay.log().count("clerk@example.com")

    relay.settings["log_recipients"] = False
    standin.control(fail_mail_with="")
    relay.start(import_token=False)
    send(relay, "private")
    wait_json(relay, "delivered", 2)
    last_received = json_lines(relay, "received")[-1]
    assert "to" not in last_received and last_received["rcpt_count"] == 2
    assert "to" not in json_lines(relay, "delivered")[-1]
    assert relay.log().count("clerk@example.com") == mentions   # named nowhere in the new run
