"""Microsoft Graph sendMail as the way out (issue 14), driven as an admin and a legacy client would:
the real relay with transport = "graph", smtplib clients, the stand-in's Graph (tests/standin/
standin_graph.py) that checks tokens and takes recipients from To/Cc/Bcc as Graph does.
"""
import os
import smtplib
import time

from conftest import LOCAL_PASSWORD, LOCAL_USER, MAILBOX, Relay, without_trace

HEADER = ("From: scanner@contoso.com\r\nTo: Boss <boss@example.com>\r\nCc: cc@example.com\r\n"
          "Subject: {subject}\r\nMessage-ID: <{subject}@relay.test>\r\n")
BODY = "Scan attached.\r\n.leading dot line\r\n" + "x" * 990 + "\r\nlast line\r\n"


def graph_relay(relay, standin, **overrides):
    relay.accounts["office"] = Relay.account_for(standin, transport="graph", graph_url=standin.graph_url, **overrides)
    return relay


def send(relay, rcpts, message, login=True):
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        if login:
            client.login(LOCAL_USER, LOCAL_PASSWORD)
        return client.sendmail(MAILBOX, rcpts, message)


def graph_messages(standin):
    return [(e, b) for e, b in standin.messages() if e.get("transport") == "graph"]


def wait_graph(standin, count, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = graph_messages(standin)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} Graph deliveries, got {len(graph_messages(standin))}")


def body_of(data):
    return data.split(b"\r\n\r\n", 1)[1]


def test_delegated_and_app_only_deliver_the_same_body(relay, standin):
    graph_relay(relay, standin).start()
    message = HEADER.format(subject="delegated") + "\r\n" + BODY
    send(relay, ["boss@example.com", "cc@example.com"], message)
    envelope, data = wait_graph(standin, 1)[0]
    assert envelope["rcpt_to"] == ["boss@example.com", "cc@example.com"]
    assert envelope["mailbox"] == MAILBOX
    assert without_trace(data) == message.encode()  # header already matched the envelope: byte for byte
    assert relay.wait_for_log("delivered")
    assert "Microsoft Graph" in relay.log_lines("delivered")[0]
    relay.stop()

    # The same message through an app-only account (client credentials, application Mail.Send
    # limited to the mailbox by an application access policy).
    standin.control(app_mailboxes=[MAILBOX])
    relay.accounts["office"] = Relay.account_for(standin, transport="graph", graph_url=standin.graph_url,
                                                 auth="client_credentials")
    relay.start(import_token=False)
    app_message = HEADER.format(subject="app-only") + "\r\n" + BODY
    send(relay, ["boss@example.com", "cc@example.com"], app_message)
    app_envelope, app_data = wait_graph(standin, 2)[1]
    assert app_envelope["rcpt_to"] == envelope["rcpt_to"]
    assert body_of(app_data) == body_of(data) == BODY.encode()
    grants = standin.stats()["token_requests"]
    assert grants.get("client_credentials", {}).get("ok", 0) >= 1


def test_envelope_decides_who_receives(relay, standin):
    graph_relay(relay, standin).start()
    # Bcc-only: the envelope has a recipient no header names; the old Bcc field names someone else.
    bcc_only = ("From: scanner@contoso.com\r\nTo: boss@example.com\r\nBcc: someone-else@example.com\r\n"
                "Subject: bcc-only\r\n\r\nhello\r\n")
    send(relay, ["boss@example.com", "hidden@example.com"], bcc_only)
    # Header-only: a list address in To that this envelope does not include (the list was expanded).
    header_only = ("From: scanner@contoso.com\r\nTo: list@example.com, boss@example.com\r\n"
                   "Subject: header-only\r\n\r\nhello\r\n")
    send(relay, ["boss@example.com"], header_only)
    # Both, resent: Resent-To names the new reader; To names the original one, not in the envelope.
    resent = ("Resent-From: scanner@contoso.com\r\nResent-To: new@example.com\r\nFrom: scanner@contoso.com\r\n"
              "To: original@example.com\r\nCc: boss@example.com\r\nSubject: resent\r\n\r\nhello\r\n")
    send(relay, ["new@example.com", "boss@example.com", "extra@example.com"], resent)
    delivered = {b.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode(): (e, b) for e, b in wait_graph(standin, 3)}

    envelope, data = delivered["bcc-only"]
    assert envelope["rcpt_to"] == ["boss@example.com", "hidden@example.com"]
    assert b"someone-else" not in data and b"hidden@" not in data  # no reader sees a blind recipient

    envelope, data = delivered["header-only"]
    assert envelope["rcpt_to"] == ["boss@example.com"]  # the list is not mailed again
    assert b"X-Original-To: list@example.com, boss@example.com\r\n" in data

    envelope, data = delivered["resent"]
    assert sorted(envelope["rcpt_to"]) == ["boss@example.com", "extra@example.com", "new@example.com"]
    assert b"original@example.com" not in envelope["rcpt_to"]
    assert body_of(data) == b"hello\r\n"


def test_many_recipients_each_once(relay, standin):
    graph_relay(relay, standin, max_recipients_per_message=3).start()
    rcpts = [f"user{i}@example.com" for i in range(7)]
    message = "From: scanner@contoso.com\r\nTo: user0@example.com\r\nSubject: many\r\n\r\nhello\r\n"
    send(relay, rcpts, message)
    delivered = wait_graph(standin, 3)
    got = [r for e, _ in delivered for r in e["rcpt_to"]]
    assert sorted(got) == sorted(rcpts)  # every envelope recipient once, over three requests


def test_429_retry_after_is_honoured(relay, standin):
    graph_relay(relay, standin).start()
    standin.control(graph_fail={"status": 429, "code": "ApplicationThrottled", "message": "slow down",
                                "retry_after": "3", "count": 1})
    send(relay, ["boss@example.com"], HEADER.format(subject="throttled") + "\r\nhello\r\n")
    # The second message comes once the relay has the 429 (a request already in flight when Graph
    # answered could not have known).
    relay.wait_for_log("account_backoff")
    send(relay, ["boss@example.com"], HEADER.format(subject="second") + "\r\nhello\r\n")
    wait_graph(standin, 2, timeout=30)
    requests = [r for r in standin.stats()["graph_requests"] if r["mailbox"] == MAILBOX]
    assert requests[0]["status"] == 429
    # No request for this mailbox before the Retry-After expired.
    assert all(r["started"] >= requests[0]["ended"] + 2.9 for r in requests[1:]), requests
    assert any("retry after 3 s" in line for line in relay.log_lines("account_backoff"))


def test_over_the_graph_limit_refused_at_size_and_end_of_data(relay, standin):
    relay.settings["max_message_size"] = 10 * 1024 * 1024
    graph_relay(relay, standin).start()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=60) as client:
        client.ehlo("printer")
        limit = int(client.esmtp_features["size"])
        assert limit == 3 * 1024 * 1024 - 64 * 1024  # the Graph account's limit, not the relay's 10 MB
        code, text = client.mail(MAILBOX, [f"SIZE={limit + 1}"])
        assert code == 552 and b"5.3.4" in text and str(limit).encode() in text
        client.rset()
        assert client.mail(MAILBOX)[0] == 250
        assert client.rcpt("boss@example.com")[0] == 250
        big = HEADER.format(subject="big") + "\r\n" + ("y" * 998 + "\r\n") * (limit // 1000 + 10)
        code, text = client.data(big.encode())
        assert code == 552 and b"5.3.4" in text and str(limit).encode() in text
        # Just under the limit still goes through Graph's 4 MB request.
        fits = HEADER.format(subject="fits") + "\r\n" + ("z" * 998 + "\r\n") * ((limit - 1000) // 1000)
        assert client.sendmail(MAILBOX, ["boss@example.com"], fits) == {}
    envelope, _ = wait_graph(standin, 1, timeout=30)[0]
    assert envelope["request_size"] <= 4 * 1024 * 1024


def test_401_refreshes_once_and_delivers(relay, standin):
    graph_relay(relay, standin).start()
    send(relay, ["boss@example.com"], HEADER.format(subject="first") + "\r\nhello\r\n")
    wait_graph(standin, 1)
    refreshes = standin.stats()["token_requests"]["refresh_token"]["ok"]
    standin.control(expire_access_tokens=True)  # the relay's cached token is now refused
    send(relay, ["boss@example.com"], HEADER.format(subject="after-401") + "\r\nhello\r\n")
    wait_graph(standin, 2)
    statuses = [r["status"] for r in standin.stats()["graph_requests"]]
    assert statuses == [202, 401, 202]
    assert standin.stats()["token_requests"]["refresh_token"]["ok"] == refreshes + 1
    assert relay.log_lines("graph_token_rejected")


def test_401_then_invalid_grant_holds_at_once_with_the_authorize_hint(relay, standin):
    relay.settings.update({"min_backoff": "300s", "max_backoff": "600s"})
    graph_relay(relay, standin).start()
    # The refresh token died with the access token: Graph's 401, then the refresh gets invalid_grant.
    standin.control(expire_access_tokens=True, revoke_all_refresh_tokens=True)
    send(relay, ["boss@example.com"], HEADER.format(subject="held back") + "\r\nhello\r\n")
    hold = relay.wait_for_log("account_hold", timeout=20)[0]
    assert "authorize --account office" in hold and "invalid_grant" in hold, hold
    assert relay.log_lines("account_backoff") == [] and relay.log_lines("deferred") == [], relay.log()
    assert [r["status"] for r in standin.stats()["graph_requests"]] == [401]
    assert len(relay.queue_files()) == 1 and relay.failed_files() == []   # kept for after the sign-in


def test_token_for_the_wrong_audience_is_refused(relay, standin):
    # An SMTP-scoped token (audience outlook.office.com) is not a Graph token.
    graph_relay(relay, standin, scope="https://outlook.office.com/SMTP.Send offline_access").start()
    send(relay, ["boss@example.com"], HEADER.format(subject="audience") + "\r\nhello\r\n")
    deferred = relay.wait_for_log("deferred")
    assert "401" in deferred[0] and "Invalid audience" in deferred[0]
    assert graph_messages(standin) == []
    assert {r["status"] for r in standin.stats()["graph_requests"]} == {401}
    assert relay.queue_files()  # kept for a retry once the scope is fixed


def test_check_on_a_graph_account(relay, standin):
    graph_relay(relay, standin)
    relay.import_token()
    result = relay.run("check", "--account", "office")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ ok ] Mail.Send granted for scanner@contoso.com (Graph probe; nothing is sent)" in result.stdout
    assert graph_messages(standin) == []  # the probe sent nothing
    result = relay.run("check", "--account", "office", "--send-test", "it@example.com")
    assert result.returncode == 0, result.stdout
    assert "test message accepted by Graph sendMail (202)" in result.stdout
    assert wait_graph(standin, 1)[0][0]["rcpt_to"] == ["it@example.com"]
    # App-only without the mailbox in the application access policy: the fix names the policy.
    relay.accounts["office"] = Relay.account_for(standin, transport="graph", graph_url=standin.graph_url,
                                                 auth="client_credentials")
    result = relay.run("check", "--account", "office")
    assert result.returncode == 1
    assert "[FAIL] Mail.Send granted" in result.stdout and "New-ApplicationAccessPolicy" in result.stdout


def test_check_proposes_graph_when_smtp_auth_is_disabled(relay, standin):
    relay.import_token()
    standin.control(fail_auth_with="535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                                   "disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.")
    result = relay.run("check", "--account", "office")
    assert result.returncode == 1
    assert "Set-TransportConfig" in result.stdout
    assert 'transport = "graph"' in result.stdout and "[accounts.office]" in result.stdout
    assert "Mail.Send" in result.stdout


def test_direct_mode_answers_with_graphs_verdict(relay, standin):
    graph_relay(relay, standin, delivery="direct").start()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.login(LOCAL_USER, LOCAL_PASSWORD)
        client.mail(MAILBOX)
        client.rcpt("boss@example.com")
        code, text = client.data((HEADER.format(subject="direct") + "\r\nhello\r\n").encode())
        assert code == 250 and b"Microsoft Graph" in text
        standin.control(graph_fail={"status": 400, "code": "ErrorMimeContentInvalidBase64String",
                                    "message": "Invalid base64 string for MIME content.", "count": 1})
        client.mail(MAILBOX)
        client.rcpt("boss@example.com")
        code, text = client.data((HEADER.format(subject="refused") + "\r\nhello\r\n").encode())
        assert code == 554 and b"5.6.0" in text and b"ErrorMimeContentInvalidBase64String" in text
        standin.control(graph_fail={"status": 503, "retry_after": "1", "count": 1})
        client.mail(MAILBOX)
        client.rcpt("boss@example.com")
        code, text = client.data((HEADER.format(subject="busy") + "\r\nhello\r\n").encode())
        assert code == 451 and b"4.7.0" in text
    assert len(wait_graph(standin, 1)) == 1
    assert relay.queue_files() == []  # direct mode keeps nothing


def test_kill_9_with_graph_requests_in_flight_loses_nothing(relay, standin):
    graph_relay(relay, standin).start()
    standin.control(graph_delay_ms=1500)
    subjects = [f"inflight-{i}" for i in range(8)]
    for subject in subjects:
        send(relay, ["boss@example.com"], HEADER.format(subject=subject) + "\r\nhello\r\n")  # each one acknowledged
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and standin.stats()["graph_max_concurrent"].get(MAILBOX, 0) < 2:
        time.sleep(0.05)
    relay.kill()
    standin.control(graph_delay_ms=0)
    relay.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = {b.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for _, b in graph_messages(standin)}
        if got >= set(subjects):
            break
        time.sleep(0.1)
    assert got >= set(subjects)  # every acknowledged message arrived (a request cut short may repeat)
    assert standin.stats()["graph_max_concurrent"][MAILBOX] <= 4


def test_requests_per_mailbox_are_capped_at_graph_concurrent_requests(relay, standin):
    # Graph allows 4 concurrent requests per mailbox; a 5th gets 429. The relay runs up to
    # graph_concurrent_requests at once (not max_connections, an SMTP setting) and never more.
    graph_relay(relay, standin).start()
    standin.control(graph_delay_ms=1000)
    for i in range(12):
        send(relay, ["boss@example.com"], HEADER.format(subject=f"burst-{i}") + "\r\nhello\r\n")
    wait_graph(standin, 12, timeout=40)
    stats = standin.stats()
    assert stats["graph_max_concurrent"][MAILBOX] == 4
    assert {r["status"] for r in stats["graph_requests"]} == {202}  # never throttled for concurrency


def test_content_error_and_send_as_denied_fail_the_message_not_the_account(relay, standin):
    graph_relay(relay, standin).start()
    standin.control(graph_fail={"status": 400, "code": "ErrorMimeContentInvalidBase64String",
                                "message": "Invalid base64 string for MIME content.", "count": 1})
    send(relay, ["boss@example.com"], HEADER.format(subject="bad-content") + "\r\nhello\r\n")
    relay.wait_for_log("failed")
    [failed] = relay.failed_files()
    with open(os.path.join(relay.spool_dir, "failed", failed + ".reason")) as f:
        reason = f.read()
    assert "554 5.6.0 Microsoft Graph 400 (ErrorMimeContentInvalidBase64String: Invalid base64" in reason
    # From: a sender the mailbox may not send as: Graph's 403 ErrorSendAsDenied is about this
    # message's sender (like SMTP's 5.7.60, issue 11): the message fails, the account goes on.
    send(relay, ["boss@example.com"], HEADER.format(subject="send-as").replace("From: scanner@", "From: ceo@")
         + "\r\nhello\r\n")
    relay.wait_for_log("failed", 2)
    assert "ErrorSendAsDenied" in relay.wait_for_log("sender_denied")[0]
    send(relay, ["boss@example.com"], HEADER.format(subject="own") + "\r\nhello\r\n")
    assert len(wait_graph(standin, 1)) == 1
    relay.wait_for_log("delivered")   # the queue file goes once the 202 is in
    assert relay.log_lines("account_hold") == [] and relay.queue_files() == []
