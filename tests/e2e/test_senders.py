"""Issue 11 item 3 end to end: a reply about one sender or one message fails that message, never the
account. The real relay, real clients (swaks, smtplib, the relay's own sendmail as Debian's cron runs
it) and the stand-in, which models Exchange's SendAs rule per mailbox (send_as switch: granted
addresses; send_as_check: 550 5.7.60 at MAIL FROM or 554 5.2.252 SendAsDenied after the data, on the
envelope and the From: header) and Graph's 403 ErrorSendAsDenied, and counts every refusal."""
import json
import os
import smtplib
import subprocess
import time

import pytest

from conftest import LOCAL_PASSWORD, LOCAL_USER, MAILBOX, Relay, sendmail

STRANGER = "ceo@contoso.com"


def swaks(relay, sender, subject, *extra):
    """swaks as a LAN device uses it: no login, From: header = envelope sender."""
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{relay.port}", "--from", sender,
                             "--to", "boss@example.com", "--header", f"Subject: {subject}",
                             "--body", f"body of {subject}", *extra],
                            capture_output=True, text=True, timeout=60)
    return result


def send(relay, subject, sender=MAILBOX, header_from=None, login=False):
    data = (f"From: {header_from or sender}\r\nTo: boss@example.com\r\nSubject: {subject}\r\n\r\n"
            f"body of {subject}\r\n").encode()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        if login:
            client.login(LOCAL_USER, LOCAL_PASSWORD)
        client.sendmail(sender, ["boss@example.com"], data)


def delivered_subjects(standin):
    return [body.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for _, body in standin.messages()
            if b"Subject: " in body]


def reason_of(relay, queue_id):
    with open(os.path.join(relay.spool_dir, "failed", queue_id + ".reason")) as f:
        return f.read()


def wait_failed(relay, count, timeout=20):
    deadline = time.monotonic() + timeout
    while len(relay.failed_files()) < count:
        assert time.monotonic() < deadline, relay.log()
        time.sleep(0.05)
    return relay.failed_files()


def assert_never_held(relay):
    assert relay.log_lines("account_hold") == [], relay.log_lines("account_hold")
    snapshot = json.loads(relay.run("status", "--json").stdout)
    assert not any(a.get("on_hold") for a in snapshot["accounts"]), snapshot
    listing = relay.run("queue", "list")
    rows = listing.stdout.splitlines()[1:-1]   # between the heading and the "N message(s): ..." summary
    assert listing.returncode == 0 and not any(" held " in row for row in rows), listing.stdout


@pytest.mark.parametrize("check,code", [("end_of_data", "5.2.252"), ("mail_from", "5.7.60")])
def test_send_as_denied_fails_one_message_while_the_mailbox_keeps_sending(relay, standin, check, code):
    # Exchange stops the whole mailbox after repeated refusals: a relay resending the refused
    # sender would see its own mail refused with 5.2.251 below.
    standin.control(send_as_check=check, send_as_throttle_after=2)
    relay.accounts["office"]["bounce"] = True
    relay.start()
    result = swaks(relay, STRANGER, "as the ceo")
    assert result.returncode == 0, result.stdout + result.stderr   # queued: 250 to the device
    [failed] = wait_failed(relay, 1)
    assert code in reason_of(relay, failed)
    denied = relay.wait_for_log("sender_denied")[0]
    assert STRANGER in denied and "Add-RecipientPermission" in denied and "remembered_s=3600" in denied
    # The mailbox's own mail goes on, through the same account, right away.
    send(relay, "own mail 1")
    send(relay, "own mail 2")
    messages = standin.wait_for_messages(3)   # two own messages and the DSN to the ceo
    subjects = delivered_subjects(standin)
    assert "own mail 1" in subjects and "own mail 2" in subjects and "as the ceo" not in subjects
    dsn = [(env, body) for env, body in messages if b"report-type=delivery-status" in body]
    assert len(dsn) == 1 and dsn[0][0]["rcpt_to"] == [STRANGER] and f"Status: {code}".encode() in dsn[0][1]
    assert standin.stats()["send_as_denied"] == {MAILBOX: 1}
    assert_never_held(relay)

    # The same sender again: failed at once, naming the earlier refusal, without asking Exchange.
    result = swaks(relay, STRANGER, "as the ceo again")
    assert result.returncode == 0, result.stdout + result.stderr
    second = [f for f in wait_failed(relay, 2) if f != failed][0]
    recent = relay.wait_for_log("sender_denied_recently")[0]
    assert f"earlier_queue_id={failed}" in recent and f"queue_id={second}" in recent
    assert code in reason_of(relay, second) and failed in reason_of(relay, second)
    assert swaks(relay, STRANGER, "as the ceo a third time").returncode == 0
    wait_failed(relay, 3)
    assert standin.stats()["send_as_denied"] == {MAILBOX: 1}
    send(relay, "own mail 3")     # not throttled: Exchange was asked once
    standin.wait_for_messages(6)  # + the DSNs of the second and third
    assert "own mail 3" in delivered_subjects(standin)
    assert_never_held(relay)

    # The admin grants SendAs; `queue retry` of the failed message asks Exchange again and it goes.
    standin.control(send_as={MAILBOX: [STRANGER]})
    result = relay.run("queue", "retry", second)
    assert result.returncode == 0, result.stderr
    standin.wait_for_messages(7)   # + the retried message
    assert "as the ceo again" in delivered_subjects(standin)
    assert second not in relay.failed_files() and len(relay.failed_files()) == 2


def test_graph_send_as_denied_fails_the_message_and_the_mailbox_keeps_sending(relay, standin):
    relay.accounts["office"] = Relay.account_for(standin, transport="graph", graph_url=standin.graph_url)
    relay.start()
    assert swaks(relay, STRANGER, "graph as the ceo").returncode == 0
    [failed] = wait_failed(relay, 1)
    assert "ErrorSendAsDenied" in reason_of(relay, failed) and "5.7.60" in reason_of(relay, failed)
    send(relay, "graph own mail")
    standin.wait_for_messages(1)
    assert delivered_subjects(standin) == ["graph own mail"]
    requests = len(standin.stats()["graph_requests"])
    assert swaks(relay, STRANGER, "graph as the ceo again").returncode == 0
    wait_failed(relay, 2)
    relay.wait_for_log("sender_denied_recently")
    stats = standin.stats()
    assert len(stats["graph_requests"]) == requests and stats["send_as_denied"] == {MAILBOX: 1}
    # A device logged in as the mailbox with a fixed foreign From: (all Graph sees): that From: is
    # the sender remembered; the mailbox's own mail through the same login goes on.
    send(relay, "fixed wrong from 1", header_from=STRANGER.upper(), login=True)
    wait_failed(relay, 3)
    send(relay, "fixed wrong from 2", header_from=STRANGER, login=True)
    wait_failed(relay, 4)
    relay.wait_for_log("sender_denied_recently", 2)
    send(relay, "graph own mail 2", login=True)
    standin.wait_for_messages(2)
    stats = standin.stats()
    assert stats["send_as_denied"] == {MAILBOX: 2} and len(stats["graph_requests"]) == requests + 2
    assert_never_held(relay)


def test_refuse_unknown_senders_answers_553_at_mail_from(relay, standin):
    relay.accounts["office"].update(refuse_unknown_senders=True, send_as=["invoices@contoso.com"])
    relay.start()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.ehlo("printer")
        code, text = client.mail(STRANGER)
        assert (code, text[:5]) == (553, b"5.7.1"), (code, text)
        code, text = client.mail("")    # the null sender is no known sender either
        assert code == 553, (code, text)
        assert client.mail("Invoices@Contoso.com")[0] == 250
    result = swaks(relay, STRANGER, "refused")
    assert result.returncode != 0 and "553 5.7.1" in result.stdout, result.stdout
    rejects = [line for line in relay.log_lines("reject") if "command=MAIL" in line and "553 5.7.1" in line]
    assert len(rejects) == 3 and STRANGER in rejects[0], relay.log_lines("reject")
    send(relay, "known")
    standin.wait_for_messages(1)
    relay.wait_for_log("delivered")   # the queue file goes once the 250 is in
    assert relay.queue_files() == [] and relay.failed_files() == []
    assert standin.stats().get("send_as_denied", {}) == {}


def test_rewrite_sender_unallowed_delivers_cron_and_null_sender_mail_as_the_mailbox(relay, standin):
    standin.control(send_as_check="end_of_data")    # Exchange checks envelope and From: both
    relay.accounts["office"]["rewrite_sender"] = "unallowed"
    relay.extra_toml = '\n[aliases]\nroot = "it@example.com"\n'
    relay.start()
    cron = b"Subject: Cron <root@host> run-parts /etc/cron.daily\n\nline one\n"
    # Exactly as Debian's cron runs it: the relay's sendmail already sends as the default mailbox.
    result = sendmail(relay, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"], cron)
    assert result.returncode == 0, result.stderr
    # The same with the envelope sender cron's host would give it (MAILFROM / -f root@host, or a
    # host's own MTA forwarding root's mail): rewritten, the original kept as Reply-To.
    result = sendmail(relay, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-f", "root@host.lan", "root"], cron)
    assert result.returncode == 0, result.stderr
    # The null sender, as a device's bounce or a monitoring script sends it.
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.sendmail("", ["it@example.com"], b"From: MAILER-DAEMON@printer.lan\r\nSender: daemon@printer.lan\r\n"
                                                b"To: it@example.com\r\nSubject: toner low\r\n\r\nreplace the toner\r\n")
    messages = standin.wait_for_messages(3)
    for envelope, body in messages:
        assert envelope["mail_from"] == MAILBOX and envelope["rcpt_to"] == ["it@example.com"], envelope
    # Delivered by parallel sessions: tell them apart by content, not by order.
    [null] = [body for _, body in messages if b"toner" in body]
    [rewritten] = [body for _, body in messages if b"root@host.lan" in body]
    [plain] = [body for _, body in messages if body not in (null, rewritten)]
    assert f'From: "CronDaemon" <{MAILBOX}>'.encode() in plain and b"Reply-To" not in plain
    assert f'From: "CronDaemon" <{MAILBOX}>\r\nReply-To: "CronDaemon" <root@host.lan>\r\n'.encode() in rewritten
    assert f"From: {MAILBOX}\r\nReply-To: MAILER-DAEMON@printer.lan\r\n".encode() in null
    assert b"Sender:" not in null   # it went with the old From: (else "on behalf of" a stranger)
    assert b"line one" in rewritten and b"replace the toner" in null
    assert len(relay.log_lines("sender_rewritten")) == 2
    assert relay.failed_files() == [] and standin.stats().get("send_as_denied", {}) == {}
