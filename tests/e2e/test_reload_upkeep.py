"""Issue 3 items 7 and 8 end to end: a refresh token imported while the relay is failing and backing
off is used within seconds; SIGHUP with a broken config keeps the old one and says why; SIGHUP adding
a user lets it log in while mail keeps flowing; idle accounts are refreshed on the keepalive period;
a refresh token that has not been refreshed for refresh_token_warn_days is warned about."""
import json
import os
import signal
import smtplib
import threading
import time

from conftest import LOCAL_PASSWORD, LOCAL_USER, MAILBOX


def send(port, subject, login=None):
    data = (f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n").encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        if login:
            client.login(*login)
        assert client.sendmail(MAILBOX, ["boss@example.com"], data) == {}


def test_token_imported_while_backing_off_is_used_within_seconds(relay, standin):
    relay.settings.update(min_backoff="120s", max_backoff="300s")   # without the wake-up: minutes
    standin.control(token_lifetime=2)
    relay.start()                          # imports the initial token (its access token lives 2 s)
    standin.control(revoke_all_refresh_tokens=True, token_lifetime=3600)
    time.sleep(2.5)                        # the cached access token is now stale
    send(relay.port, "queued while the token is dead")
    assert "invalid_grant" in relay.wait_for_log("token_refresh_failed")[0]
    relay.wait_for_log("account_hold")            # invalid_grant needs a person: no retry storm
    assert len(relay.queue_files()) == 1 and standin.messages() == []

    standin.control(add_refresh_token={"token": "fresh-refresh-token", "user": MAILBOX})
    relay.import_token("fresh-refresh-token")
    imported_at = time.monotonic()
    standin.wait_for_messages(1, timeout=15)
    assert time.monotonic() - imported_at < 15     # the account was on hold and its backoff 120 s
    assert "reason=\"token file changed\"" in relay.wait_for_log("account_released")[0]


def test_sighup_with_broken_config_keeps_the_old_one_and_says_why(relay, standin):
    relay.start()
    with open(relay.config_path, "a") as f:
        f.write("\n[relay]\nmax_backoff = \"soon\"\n")
    relay.process.send_signal(signal.SIGHUP)
    relay.wait_for_log("reload_failed")
    errors = relay.log_lines("reload_config_error")
    assert errors and f"{relay.config_path}:" in errors[0]
    send(relay.port, "still flowing")            # the old config keeps working
    standin.wait_for_messages(1, timeout=15)


def test_sighup_adding_a_user_while_mail_flows(relay, standin):
    relay.start()
    sent, failures = [], []

    def background():
        for i in range(8):
            try:
                send(relay.port, f"background {i}", login=(LOCAL_USER, LOCAL_PASSWORD))
                sent.append(i)
            except Exception as err:  # noqa: BLE001 - reported by the assertion below
                failures.append(repr(err))
            time.sleep(0.2)

    held_open = smtplib.SMTP("127.0.0.1", relay.port, timeout=20)   # a session across the reload
    held_open.ehlo("scanner.local")
    sender = threading.Thread(target=background)
    sender.start()
    try:
        smtplib.SMTP("127.0.0.1", relay.port, timeout=10).login("printer2", "pw-2")
        raise AssertionError("printer2 logged in before the reload")
    except smtplib.SMTPAuthenticationError:
        pass
    relay.users.append({"name": "printer2", "password": "pw-2", "account": "office"})
    relay.write_config()
    relay.process.send_signal(signal.SIGHUP)
    relay.wait_for_log("reloaded")
    send(relay.port, "from the new user", login=("printer2", "pw-2"))
    data = f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: held open\r\n\r\nbody\r\n".encode()
    assert held_open.sendmail(MAILBOX, ["boss@example.com"], data) == {}
    held_open.quit()
    sender.join()
    assert failures == [] and len(sent) == 8
    assert len(standin.wait_for_messages(10, timeout=20)) == 10


def test_idle_account_is_refreshed_on_the_keepalive_period(relay, standin):
    relay.accounts["office"]["keepalive_refresh"] = "2s"
    relay.start()
    before = standin.stats()["token_requests"]["refresh_token"]["ok"]   # the import's refresh
    relay.wait_for_log("token_keepalive", count=2, timeout=15)
    relay.wait_for_log("token_refreshed", count=2, timeout=15)
    assert standin.stats()["token_requests"]["refresh_token"]["ok"] >= before + 2
    assert standin.messages() == []              # no mail was needed to keep the token alive


def test_old_refresh_token_is_warned_about(relay, standin):
    relay.accounts["office"]["refresh_token_warn_days"] = 60
    relay.import_token()
    token_file = os.path.join(relay.state_dir, "tokens", "office.json")
    with open(token_file) as f:
        stored = json.load(f)
    stored["last_refresh"] = int(time.time()) - 61 * 86400
    with open(token_file, "w") as f:
        json.dump(stored, f)
    standin.control(token_mode="invalid_grant")     # the keepalive refresh cannot rescue it
    relay.start(import_token=False)
    line = relay.wait_for_log("refresh_token_aging", timeout=15)[0]
    assert "days_since_refresh=61" in line and "warn_days=60" in line
    assert "authorize --account office" in line
    assert relay.log_lines("token_keepalive")      # it tried the keepalive refresh first


def test_recent_refresh_gives_no_warning_and_no_keepalive(relay, standin):
    relay.start()
    time.sleep(2.5)                                 # upkeep runs at start
    assert relay.log_lines("refresh_token_aging") == []
    assert relay.log_lines("token_keepalive") == []
