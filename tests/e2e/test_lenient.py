"""Issue 11, items 1 and 5 end to end: what a client in lenient_networks is forgiven (bare-LF command
lines, paths without angle brackets, LF-only message text, long text lines) and the strict reply the
same bytes get from a client outside it; SMTP smuggling in every mode; talking before the banner; NUL bytes; one `reject` log line
per refusal in text and JSON logs. The strict client is a second loopback address: the relay is
told lenient_networks = ["127.0.0.1/32"] and the client binds 127.0.0.2 (all of 127/8 is loopback)."""
import email
import email.policy
import json
import re
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import MAILBOX, read_until_closed
from test_hostile import RawClient, start_transaction, wait_idle_queue

LENIENT = "127.0.0.1"
STRICT = "127.0.0.2"


@pytest.fixture
def relay2(relay):
    """The relay with only 127.0.0.1 lenient, so 127.0.0.2 is a strict loopback client."""
    relay.settings["lenient_networks"] = ["127.0.0.1/32"]
    return relay


def client_from(relay, source, timeout=20):
    client = RawClient(relay.port, timeout=timeout, source=source)
    assert client.reply().startswith("220")
    return client


def smtp_from(relay, source):
    return smtplib.SMTP("127.0.0.1", relay.port, timeout=20, source_address=(source, 0))


def text_body(subject, body):
    return f"From: {MAILBOX}\nTo: boss@example.com\nSubject: {subject}\n\n{body}"


# ---- SMTP smuggling: refused in every mode ----------------------------------------------------------

# The CVE-2023-51764/51765/51766 end-of-data variants, then a smuggled second transaction.
SMUGGLING = [b"\n.\n", b"\n.\r", b"\r.\n", b"\r.\r", b"\n.\r\n", b"\r.\r\n", b"\r\n\x00.\r\n", b"\r\n.\r\r\n"]
SMUGGLED = (b"MAIL FROM:<ceo@contoso.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
            b"From: ceo@contoso.com\r\nSubject: SMUGGLED\r\n\r\nwire the money\r\n")


@pytest.mark.parametrize("mode", ["reject", "normalize"])
@pytest.mark.parametrize("client_kind", ["lenient", "strict"])
def test_smuggling_sequences_never_make_a_second_message_nor_reach_upstream_raw(relay, standin, mode, client_kind):
    """Every mode: bare_newlines reject/normalize, a client in lenient_networks (whose bare newlines
    are always normalized) and one outside it. Only CRLF.CRLF ends the data; a NUL is refused."""
    relay.settings["bare_newlines"] = mode
    relay.settings["lenient_networks"] = ["127.0.0.1/32"]
    source = STRICT if client_kind == "strict" else None
    rejecting = mode == "reject" and client_kind == "strict"
    relay.start()
    transcripts = []
    for sequence in SMUGGLING:
        client = RawClient(relay.port, source=source)
        start_transaction(client)
        client.send(b"From: " + MAILBOX.encode() + b"\r\nSubject: carrier\r\n\r\nhello" + sequence + SMUGGLED +
                    b".\r\n")
        first = client.reply()
        # Whatever the verdict, the smuggled commands were body bytes: the next command is answered
        # as a fresh command, never as the reply to a smuggled DATA.
        second = client.command("NOOP")
        client.command("QUIT")
        client.close()
        transcripts.append((sequence, first, second))
        assert second.startswith("250 2.0.0"), (sequence, first, second)
        if b"\x00" in sequence:
            assert first.startswith("554 5.6.0"), (sequence, first)   # NUL: refused in every mode
        elif rejecting:
            assert first.startswith("550 5.5.2"), (sequence, first)
        else:
            assert first.startswith("250 2.0.0"), (sequence, first)
    accepted = sum(first.startswith("250") for _, first, _ in transcripts)
    relay.wait_for_log("delivered", count=accepted) if accepted else None
    wait_idle_queue(relay)
    messages = standin.messages()
    assert len(messages) == accepted
    for envelope, raw in messages:
        assert envelope["rcpt_to"] == ["boss@example.com"]
        assert envelope["mail_from"] == MAILBOX
        # No stray CR or LF upstream: every CR is followed by LF and every LF preceded by CR.
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", raw) is None, raw
        assert not raw.startswith(b"From: ceo@contoso.com")
        assert b"SMUGGLED" in raw   # the smuggled transaction arrived as text inside the carrier
    if rejecting:
        assert relay.log_lines("bare_newline_in_data")
    rejects = [line for line in relay.log_lines("reject") if "command=END-OF-DATA" in line]
    assert len(rejects) == len(transcripts) - accepted


# ---- 1a: a command line ended by a bare LF -------------------------------------------------------

def test_bare_lf_command_is_answered_at_once_in_both_modes(relay2, standin):
    relay2.start()
    lenient = client_from(relay2, LENIENT, timeout=5)
    started = time.monotonic()
    lenient.send(b"EHLO printf.lan\n")   # printf 'EHLO x\n' | nc: used to wait 300 s for CRLF
    assert lenient.reply().startswith("250-relay.test")
    assert time.monotonic() - started < 2
    lenient.send(b"MAIL FROM:<%s>\nRCPT TO:<boss@example.com>\n" % MAILBOX.encode())
    assert lenient.reply().startswith("250 2.1.0") and lenient.reply().startswith("250 2.1.5")
    lenient.send(b"DATA\n")
    assert lenient.reply().startswith("354")
    lenient.send(b"Subject: lf commands\n\nall LF\n.\n")   # a bare-LF dot line is text, never the end ...
    lenient.send(b"still the body\r\n.\r\n")               # ... only CRLF.CRLF ends the data
    assert lenient.reply().startswith("250 2.0.0 Ok: queued as")
    lenient.send(b"QUIT\n")
    assert lenient.reply().startswith("221")
    lenient.close()
    _, raw = standin.wait_for_messages(1, timeout=20)[0]
    assert raw.endswith(b"Subject: lf commands\r\n\r\nall LF\r\n\r\nstill the body\r\n")

    strict = client_from(relay2, STRICT, timeout=5)
    started = time.monotonic()
    strict.send(b"EHLO printf.lan\n")
    assert strict.reply() == "500 5.5.2 Error: bare <LF> received; command lines must end with CRLF\n"
    assert time.monotonic() - started < 2
    assert strict.command("EHLO printf.lan").startswith("500 5.5.2")   # the rest of the broken line
    assert strict.command("EHLO printf.lan").startswith("250-relay.test")
    strict.close()
    line = relay2.wait_for_log("reject")[0]
    assert f"client={STRICT} command=EHLO" in line and "bare <LF> received" in line


# ---- 1b: MAIL FROM / RCPT TO without angle brackets ----------------------------------------------

def test_unbracketed_paths_are_accepted_from_lenient_clients_only(relay2, standin):
    relay2.start()
    lenient = client_from(relay2, LENIENT)
    assert lenient.command("HELO sloppy-firmware").startswith("250")
    assert lenient.command(f"MAIL FROM:{MAILBOX} SIZE=100").startswith("250 2.1.0")
    assert lenient.command("RCPT TO: boss@example.com").startswith("250 2.1.5")
    assert lenient.command("RCPT TO:John Doe <x@example.com>").startswith("501 5.1.3")   # never RFC 822 forms
    assert lenient.command("DATA").startswith("354")
    lenient.send("Subject: unbracketed\r\n\r\nhi\r\n.\r\n")
    assert lenient.reply().startswith("250 2.0.0")
    lenient.close()
    envelope, _ = standin.wait_for_messages(1, timeout=20)[0]
    assert envelope["mail_from"] == MAILBOX and envelope["rcpt_to"] == ["boss@example.com"]

    strict = client_from(relay2, STRICT)
    assert strict.command("HELO sloppy-firmware").startswith("250")
    assert strict.command(f"MAIL FROM:{MAILBOX}") == ("501 5.1.7 Bad sender address syntax: the address must be in "
                                                      "angle brackets, MAIL FROM:<user@example.com>\n")
    assert strict.command(f"MAIL FROM: <{MAILBOX}>").startswith("250")   # a space after the colon: anyone
    assert strict.command("RCPT TO:boss@example.com").startswith("501 5.1.3 Bad recipient address syntax: the")
    strict.close()
    rejects = relay2.log_lines("reject")
    assert any(f"client={STRICT} command=MAIL helo=sloppy-firmware" in r and f"arg=FROM:{MAILBOX}" in r
               for r in rejects), rejects


# ---- 1c: bare LF in the message --------------------------------------------------------------------

def curl_upload(relay, path, source):
    return subprocess.run(["curl", "-sSv", "--interface", source, f"smtp://127.0.0.1:{relay.port}",
                           "--mail-from", MAILBOX, "--mail-rcpt", "boss@example.com",
                           "--upload-file", str(path)], capture_output=True, text=True, timeout=60)


def test_curl_upload_of_a_unix_text_file(relay2, standin, tmp_path):
    relay2.start()
    unix = tmp_path / "report.txt"
    unix.write_bytes(text_body("LF only", "line one\n.\nline three\n").encode())
    result = curl_upload(relay2, unix, LENIENT)
    assert result.returncode == 0, result.stderr
    _, raw = standin.wait_for_messages(1, timeout=20)[0]
    # curl stuffs dots only after CRLF: its lone "." after a bare LF is unstuffed like any line's.
    assert b"Subject: LF only\r\n\r\nline one\r\n\r\nline three\r\n" in raw, raw
    assert b"\n" not in raw.replace(b"\r\n", b"")

    result = curl_upload(relay2, unix, STRICT)   # bare_newlines = "reject" (default) for the others
    assert result.returncode != 0 and "< 550 5.5.2 Bare CR or LF" in result.stderr, result.stderr
    line = relay2.wait_for_log("reject")[0]
    assert f"client={STRICT} command=END-OF-DATA" in line and f"from={MAILBOX} to=boss@example.com" in line
    assert "reply=\"550 5.5.2 Bare CR or LF" in line
    time.sleep(0.5)
    assert len(standin.messages()) == 1


def test_strict_clients_keep_bare_newlines_normalize(relay2, standin, tmp_path):
    relay2.settings["bare_newlines"] = "normalize"
    relay2.start()
    unix = tmp_path / "report.txt"
    unix.write_bytes(text_body("LF from a strict client", "one\ntwo\n").encode())
    result = curl_upload(relay2, unix, STRICT)
    assert result.returncode == 0, result.stderr
    _, raw = standin.wait_for_messages(1, timeout=20)[0]
    assert b"\r\n\r\none\r\ntwo\r\n" in raw, raw


# ---- 1d: long text lines at intake -------------------------------------------------------------------

HTML_LINE = "<html><body>" + "".join(f"<p>row {i} of an ERP report</p>" for i in range(200)) + "</body></html>"


def test_a_5000_character_html_line_from_a_lenient_client_is_accepted(relay2, standin):
    assert len(HTML_LINE) > 5000
    relay2.start()
    data = f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: ERP\r\nContent-Type: text/html\r\n\r\n{HTML_LINE}\r\n"
    with smtp_from(relay2, LENIENT) as client:
        client.ehlo("erp.lan")
        assert client.sendmail(MAILBOX, ["boss@example.com"], data) == {}
    assert relay2.wait_for_log("received")
    # However it travels upstream, the recipient reads the same line (test_message_content.py has more).
    _, raw = standin.wait_for_messages(1, timeout=30)[0]
    part = email.message_from_bytes(raw, policy=email.policy.default).get_body(preferencelist=("html",))
    assert part.get_content().rstrip("\r\n") == HTML_LINE

    with smtp_from(relay2, STRICT) as client:
        client.ehlo("erp.example")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(MAILBOX, ["boss@example.com"], data)
        assert refused.value.smtp_code == 500 and refused.value.smtp_error.startswith(b"5.5.2 Message line too long")


def swaks_from(relay, source, body):
    return subprocess.run(["swaks", "--server", f"127.0.0.1:{relay.port}", "--local-interface", source,
                           "--from", MAILBOX, "--to", "boss@example.com", "--helo", "erp.lan",
                           "--header", "Subject: swaks long line", "--body", body],
                          capture_output=True, text=True, timeout=60)


def test_swaks_long_line_from_both_kinds_of_client(relay2, standin):
    relay2.start()
    result = swaks_from(relay2, LENIENT, HTML_LINE)
    assert result.returncode == 0 and "250 2.0.0 Ok: queued as" in result.stdout, result.stdout + result.stderr
    result = swaks_from(relay2, STRICT, HTML_LINE)
    assert result.returncode != 0 and "500 5.5.2 Message line too long" in result.stdout, result.stdout
    standin.wait_for_messages(1, timeout=30)
    line = [r for r in relay2.log_lines("reject") if f"client={STRICT}" in r]
    assert len(line) == 1 and "command=END-OF-DATA helo=erp.lan" in line[0]


# ---- independent of the list: the banner, NUL bytes ------------------------------------------------

def ehlo_without_waiting(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"EHLO impatient.test\r\n")
    data = b""
    while b"250 " not in data and not data.startswith(b"554"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def test_ehlo_before_the_banner_is_served_when_greet_pause_is_zero(relay, standin):
    relay.start()
    results = [ehlo_without_waiting(relay.port) for _ in range(40)]
    served = [r for r in results if r.startswith(b"220 relay.test") and b"250 " in r]
    assert len(served) == 40, [r for r in results if r not in served][:3]
    assert not relay.log_lines("pregreet_traffic")


def test_ehlo_before_the_banner_is_refused_when_greet_pause_is_set(relay, standin):
    relay.settings["greet_pause"] = "1s"
    relay.start()
    results = [ehlo_without_waiting(relay.port) for _ in range(3)]
    assert all(r == b"554 5.5.0 relay.test Error: SMTP protocol synchronization\r\n" for r in results), results


def test_nul_bytes_are_refused_from_every_client(relay2, standin):
    relay2.start()
    for source in (LENIENT, STRICT):
        client = client_from(relay2, source)
        assert client.command("EHLO binary.test").startswith("250")
        assert client.command(f"MAIL FROM:<{MAILBOX}>").startswith("250")
        assert client.command("RCPT TO:<boss@example.com>").startswith("250")
        assert client.command("DATA").startswith("354")
        client.send(b"Subject: raw binary\r\n\r\nPK\x03\x04\x00\x00 zip\r\n.\r\n")
        reply = client.reply()
        assert reply.startswith("554 5.6.0 Error: message contains NUL bytes"), reply
        assert client.command("NOOP").startswith("250")
        client.close()
    time.sleep(0.5)
    assert standin.messages() == [] and relay2.queue_files() == []
    assert len([r for r in relay2.log_lines("reject") if "554 5.6.0" in r]) == 2


# ---- item 5: refusal lines --------------------------------------------------------------------------

def refuse_some(relay):
    """Three refusals from a strict client: 530 (require_auth), 503, 500."""
    client = client_from(relay, STRICT)
    assert client.command("EHLO refused.test").startswith("250")
    assert client.command(f"MAIL FROM:<{MAILBOX}>").startswith("530 5.7.0")
    assert client.command("RCPT TO:<boss@example.com>").startswith("503 5.5.1")
    assert client.command("BOGUS").startswith("500")
    client.close()


def test_refusal_lines_in_text_log(relay2, standin):
    relay2.settings["require_auth"] = True
    relay2.settings["log_format"] = "text"
    relay2.start()
    refuse_some(relay2)
    lines = relay2.wait_for_log("reject", count=3)
    assert len(lines) == 3
    # Postfix's "NOQUEUE: reject: MAIL from host[addr]: 530 ...; from=<> to=<> helo=<>", as fields.
    assert lines[0].split(" ", 1)[1] == (
        f'info reject client={STRICT} command=MAIL helo=refused.test from={MAILBOX} to="" arg="" '
        'reply="530 5.7.0 Authentication required"'), lines[0]
    assert "command=RCPT" in lines[1] and 'reply="503 5.5.1 Error: need MAIL command"' in lines[1]
    assert "command=BOGUS" in lines[2] and 'reply="500 5.5.2 Error: command not recognized"' in lines[2]


def test_refusal_lines_in_json_log(relay2, standin):
    relay2.settings["require_auth"] = True
    relay2.settings["log_format"] = "json"
    relay2.start()
    refuse_some(relay2)
    deadline = time.monotonic() + 10
    events = []
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in relay2.log().splitlines() if line.startswith("{")]
        events = [e for e in events if e.get("event") == "reject"]
        if len(events) >= 3:
            break
        time.sleep(0.05)
    assert len(events) == 3, events
    first = events[0]
    assert first["client"] == STRICT and first["command"] == "MAIL" and first["helo"] == "refused.test"
    assert first["from"] == MAILBOX and first["reply"] == "530 5.7.0 Authentication required"
    assert events[1]["command"] == "RCPT" and events[1]["to"] == "boss@example.com"
    assert events[2]["reply"].startswith("500 5.5.2")


# ---- MAIL without HELO (Postfix's default smtpd_helo_required = no) ------------------------------

def test_mail_without_helo_is_served_for_lenient_clients_only(relay2, standin):
    """A script or old device that starts with MAIL FROM: Postfix takes it by default; the relay got
    503 5.5.1 from everyone, so `printf 'MAIL FROM:...\\r\\n...' | nc` lost its mail."""
    relay2.start()
    lenient = client_from(relay2, LENIENT)
    assert lenient.command(f"MAIL FROM:<{MAILBOX}>").startswith("250 2.1.0")
    assert lenient.command("RCPT TO:<boss@example.com>").startswith("250 2.1.5")
    assert lenient.command("DATA").startswith("354")
    lenient.send("Subject: no helo\r\n\r\nhi\r\n.\r\n")
    assert lenient.reply().startswith("250 2.0.0")
    lenient.close()
    _, raw = standin.wait_for_messages(1, timeout=20)[0]
    assert raw.startswith(b"Received: from unknown ([127.0.0.1])\r\n\tby relay.test (smtp-oauth2-relay) with SMTP id ")

    strict = client_from(relay2, STRICT)
    assert strict.command(f"MAIL FROM:<{MAILBOX}>").startswith("503 5.5.1")
    strict.close()


# ---- a whole session in one write ------------------------------------------------------------------

BLAST = (b"HELO script.lan\r\nMAIL FROM:<" + MAILBOX.encode() + b">\r\nRCPT TO:<boss@example.com>\r\nDATA\r\n"
         b"Subject: blast\r\n\r\nwritten without reading a reply\r\n.\r\nQUIT\r\n")


def blast(relay, source):
    """`printf 'HELO ...\\r\\nMAIL FROM:...\\r\\n...QUIT\\r\\n' | nc`: everything sent at once, replies read after."""
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=10, source_address=(source, 0))
    s.sendall(BLAST)
    data = read_until_closed(s)
    return data.decode()


def test_a_whole_session_in_one_write_is_served_for_lenient_clients(relay2, standin):
    """Debian 12's Postfix serves such a script; the relay answered 554 5.5.0 and closed, and the
    mail was lost. A client outside lenient_networks keeps the pipelining rule."""
    relay2.start()
    replies = blast(relay2, LENIENT)
    assert "354 " in replies and "250 2.0.0 Ok: queued as" in replies and replies.rstrip().endswith("221 2.0.0 Bye"), replies
    _, raw = standin.wait_for_messages(1, timeout=20)[0]
    assert raw.endswith(b"Subject: blast\r\n\r\nwritten without reading a reply\r\n")
    replies = blast(relay2, STRICT)
    assert "554 5.5.0" in replies and "354" not in replies, replies
    time.sleep(0.5)
    assert len(standin.messages()) == 1
