"""Issue 13, items 3 and 4, end to end: what the token endpoint answers is not taken on trust. A
nonsense expires_in is neither looped on nor stored, one already in the store is repaired at start,
and a 50 MB response is refused without being held in memory. Messages go in over test_security's
raw session, which also times the end-of-data reply."""
import json
import os
import time

import pytest

from conftest import binary_is_sanitized
from test_security import send_timed


# ---- item 3: expires_in validated and clamped; nonsense in the store repaired ----------------------

def token_requests(standin):
    return sum(sum(outcomes.values()) for outcomes in standin.stats()["token_requests"].values())


def stored_lifetime(relay, account="office"):
    with open(os.path.join(relay.state_dir, "tokens", f"{account}.json")) as f:
        tokens = json.load(f)
    return tokens["access_expires_at"] - tokens["access_obtained_at"], tokens


@pytest.mark.parametrize("expires_in", ["1e10", '"99999999999"', "9223372036854775807", "-5"])
def test_a_nonsense_expires_in_neither_loops_nor_is_stored(relay, standin, expires_in):
    standin.control(token_expires_in_json=expires_in)
    relay.start()
    for i in range(3):
        reply, _ = send_timed(relay, body=f"Subject: n{i}\r\n\r\nx\r\n")
        assert reply.startswith("250"), reply
    standin.wait_for_messages(3, timeout=30)
    before = token_requests(standin)
    logins_before = standin.stats()["auth"].get("XOAUTH2", {}).get("success", 0)
    time.sleep(3)
    # Before: ~140 token requests and ~260 logins a second, nothing delivered.
    assert token_requests(standin) - before <= 1
    assert standin.stats()["auth"].get("XOAUTH2", {}).get("success", 0) - logins_before <= 3
    lifetime, _ = stored_lifetime(relay)
    assert 0 < lifetime <= 86400, lifetime


def test_a_stored_nonsense_expiry_is_repaired_at_start(relay, standin):
    relay.import_token()
    path = os.path.join(relay.state_dir, "tokens", "office.json")
    with open(path) as f:
        tokens = json.load(f)
    tokens["access_expires_at"] = tokens["access_obtained_at"] - 7_000_000_000   # what an overflow left
    with open(path, "w") as f:
        json.dump(tokens, f)
    standin.control(token_mode="server_error")   # no refresh can paper over it: only the repair can
    relay.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(path) as f:
            repaired = json.load(f)
        if repaired["access_expires_at"] >= 0:
            break
        time.sleep(0.1)
    assert repaired["access_expires_at"] == 0 and repaired["access_token"] == "", repaired
    assert repaired["refresh_token"] == tokens["refresh_token"]
    standin.control(token_mode="ok")
    relay.run("queue", "retry", "--all")
    reply, _ = send_timed(relay)
    assert reply.startswith("250"), reply
    standin.wait_for_messages(1, timeout=30)
    lifetime, _ = stored_lifetime(relay)
    assert 0 < lifetime <= 86400


# ---- item 4: token responses are capped ------------------------------------------------------------

def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_a_50_mb_token_response_is_refused_without_holding_it(relay, standin):
    standin.control(token_lifetime=1)
    relay.import_token()
    time.sleep(1.5)
    standin.control(token_padding_bytes=50_000_000)
    relay.start()
    reply, _ = send_timed(relay)
    assert reply.startswith("250"), reply
    lines = relay.wait_for_log("token_refresh_failed", timeout=30)
    assert any("larger than" in line for line in lines), lines
    if not binary_is_sanitized():
        assert peak_rss_kib(relay.process.pid) < 100 * 1024   # before: 283 MB
    # The endpoint recovers: the message goes out.
    standin.control(token_padding_bytes=0, token_lifetime=3600)
    relay.run("queue", "retry", "--all")
    standin.wait_for_messages(1, timeout=30)
