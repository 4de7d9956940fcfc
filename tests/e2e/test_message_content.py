"""What the relay does to a message on its way (issue 11 items 1d, 1's 8BITMIME, 2 and 6), end to end
with smtplib clients and the stand-in, which refuses what a strict server refuses (lines over 998
octets, 8-bit data without BODY=8BITMIME; tests/standin/standin_smtp.py):

- a 5,000-character HTML line (single-part text/html and multipart/alternative) arrives re-encoded
  as quoted-printable and decodes to exactly the original text, over SMTP and over Graph;
- an 8-bit body sent without BODY=8BITMIME is declared upstream;
- one Received field is prepended, well-formed, naming client, HELO, protocol, queue id and the
  recipient only when there is one; none with add_received_header = false;
- a max_message_size the provider will not take draws a warning naming file:line:col, and EHLO's
  SIZE is the account's effective limit.
"""
import email
import email.policy
import email.utils
import re
import smtplib
import time

from conftest import LOCAL_PASSWORD, LOCAL_USER, MAILBOX, Relay

HTML = "<html><body><table>" + "".join(
    f'<tr><td class="amount">Invoice {i:04d}: 12,50 \u20ac</td></tr>' for i in range(120)) + "</table></body></html>"
assert len(HTML) > 5000


def send(relay, rcpts, message, login=False, helo="printer.lan", **options):
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30, local_hostname=helo) as client:
        if login:
            client.login(LOCAL_USER, LOCAL_PASSWORD)
        return client.sendmail(MAILBOX, rcpts, message, **options)


def single_part():
    return (f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"{HTML}\r\n").encode()


def alternative():
    return (f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: alternative\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/alternative; boundary="=_b"\r\n\r\n'
            "--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nInvoices attached.\r\n"
            f"--=_b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{HTML}\r\n--=_b--\r\n").encode()


def html_of(data):
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    part = parsed.get_body(preferencelist=("html",))
    return part.get_payload(decode=True).decode(part.get_content_charset()), part


def wait_messages(standin, count, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = standin.messages()
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} messages, got {len(standin.messages())}")


def assert_same_html_delivered(messages):
    assert len(messages) == 2
    for _, data in messages:
        assert all(len(line) <= 998 for line in data.split(b"\r\n")), "a line over 998 octets left the relay"
        text, part = html_of(data)
        # The recipient's text: the original line, character for character.
        assert text.rstrip("\r\n") == HTML
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_long_html_line_is_delivered_as_quoted_printable_over_smtp(relay, standin):
    relay.start()
    send(relay, ["boss@example.com"], single_part())
    send(relay, ["boss@example.com"], alternative())
    assert_same_html_delivered(wait_messages(standin, 2))
    plain = [d for _, d in standin.messages() if b"Subject: alternative" in d][0]
    assert b"Invoices attached.\r\n" in plain   # the short part is untouched
    assert len(relay.wait_for_log("long_lines_reencoded", 2)) == 2


def test_long_html_line_is_delivered_as_quoted_printable_over_graph(relay, standin):
    relay.accounts["office"] = Relay.account_for(standin, transport="graph", graph_url=standin.graph_url)
    relay.start()
    send(relay, ["boss@example.com"], single_part(), login=True)
    send(relay, ["boss@example.com"], alternative(), login=True)
    assert_same_html_delivered(wait_messages(standin, 2))


def test_8bit_body_without_body_8bitmime_is_declared_upstream(relay, standin):
    relay.start()
    message = f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: 8bit\r\n\r\ncaf\u00e9 \u2713\r\n".encode()
    send(relay, ["boss@example.com"], message)                               # no BODY= from the client
    send(relay, ["boss@example.com"], message.replace(b"8bit", b"7bit").replace("caf\u00e9 \u2713".encode(), b"plain"))
    messages = wait_messages(standin, 2)
    eight = [e for e, d in messages if b"Subject: 8bit" in d][0]
    seven = [e for e, d in messages if b"Subject: 7bit" in d][0]
    assert "BODY=8BITMIME" in eight["mail_params"]          # else the stand-in would have refused it
    assert "BODY=8BITMIME" not in seven["mail_params"]     # a 7-bit body is not declared 8-bit


def parse_received(data):
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    fields = parsed.get_all("Received") or []
    return parsed, [" ".join(str(f).split()) for f in fields]


def test_received_header_is_prepended_and_well_formed(relay, standin):
    relay.start()
    send(relay, ["boss@example.com"], f"From: {MAILBOX}\r\nSubject: one\r\n\r\nx\r\n".encode(), helo="printer.lan")
    send(relay, ["boss@example.com", "bcc@example.com"], f"From: {MAILBOX}\r\nSubject: two\r\n\r\nx\r\n".encode(),
         login=True, helo="erp;(host)")
    messages = wait_messages(standin, 2)
    one = [d for _, d in messages if b"Subject: one" in d][0]
    two = [d for _, d in messages if b"Subject: two" in d][0]
    assert one.startswith(b"Received: from printer.lan ([127.0.0.1])\r\n\tby relay.test (smtp-oauth2-relay) with ESMTP id ")
    _, (field,) = parse_received(one)
    match = re.fullmatch(r"from printer\.lan \(\[127\.0\.0\.1\]\) by relay\.test \(smtp-oauth2-relay\) with ESMTP "
                         r"id ([0-9A-F]{16}) for <boss@example\.com>; (.+)", field)
    assert match, field
    queue_id, date = match.groups()
    assert relay.log_lines("received") and any(queue_id in line for line in relay.log_lines("received"))
    assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 120
    _, (field,) = parse_received(two)
    assert field.startswith("from erp__host_ ([127.0.0.1]) by relay.test (smtp-oauth2-relay) with ESMTPA id ")
    assert " for " not in field and "bcc@example.com" not in field   # two recipients: nobody named
    assert all(len(line) <= 78 for line in two.split(b"\r\n\r\n")[0].split(b"\r\n"))


def test_received_header_is_left_out_when_switched_off(relay, standin):
    relay.settings["add_received_header"] = False
    relay.start()
    message = f"From: {MAILBOX}\r\nSubject: quiet\r\n\r\nx\r\n".encode()
    send(relay, ["boss@example.com"], message)
    (_, data), = wait_messages(standin, 1)
    assert data == message


def test_size_beyond_the_provider_is_warned_about_and_ehlo_offers_the_effective_limit(relay, standin):
    relay.settings["max_message_size"] = 100 * 1024 * 1024
    relay.accounts["graphy"] = Relay.account_for(standin, transport="graph", graph_url=standin.graph_url)
    relay.accounts["exchange"] = Relay.account_for(standin, upstream="smtp.office365.com:587")
    relay.users.append({"name": "grapher", "password": LOCAL_PASSWORD, "account": "graphy"})
    result = relay.run("config", "--check", "--quiet")
    assert result.returncode == 0, result.stderr
    line = [n for n, text in enumerate(open(relay.config_path).read().splitlines(), 1)
            if text.startswith("max_message_size")][0]
    warnings = [w for w in result.stderr.splitlines() if "warning: relay.max_message_size" in w]
    assert len(warnings) == 2, result.stderr                       # exchange and graphy, not the custom host
    assert all(w.startswith(f"{relay.config_path}:{line}:20: warning: ") for w in warnings), warnings
    assert any("account exchange" in w and "36700160" in w for w in warnings)
    assert any("account graphy" in w and "3080192" in w for w in warnings)

    relay.start()
    assert "warning: relay.max_message_size" in relay.log()         # serve says it too
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as client:
        client.ehlo("printer.lan")
        assert client.esmtp_features["size"] == str(100 * 1024 * 1024)   # office: the configured limit
        client.login("grapher", LOCAL_PASSWORD)
        client.ehlo("printer.lan")
        assert client.esmtp_features["size"] == "3080192"                # a Graph account's effective limit

    relay.stop()
    relay.settings["max_message_size"] = 36700160
    del relay.accounts["graphy"]
    relay.users.pop()
    assert "warning: relay.max_message_size" not in relay.run("config", "--check", "--quiet").stderr


def test_a_message_without_header_keeps_its_text_below_the_received_field(relay, standin):
    """A script that sends bare text (no header at all, as `printf 'DATA\\r\\nhello\\r\\n.\\r\\n' | nc`
    does), and sendmail fed bare text (`echo hello | sendmail root`): the relay's own fields go above
    an empty line, as Postfix's cleanup puts them, so the text stays the body. Without it the first
    line was read as a broken header field and the recipient saw an empty message."""
    from test_senders import sendmail
    relay.start()
    send(relay, ["boss@example.com"], b"hello world\r\nsecond line\r\n")
    send(relay, ["boss@example.com"], f"{HTML}\r\n".encode())           # a long line too: re-encoded
    assert sendmail(relay, ["boss@example.com"], b"disk full on /var\n").returncode == 0
    # Fields, then the long text without the empty line: the text is the body, never folded as a field.
    send(relay, ["boss@example.com"], f"From: {MAILBOX}\r\nSubject: no blank line\r\n{HTML}\r\n".encode())
    messages = wait_messages(standin, 4)
    bodies = []
    for _, data in messages:
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert not parsed.defects, (parsed.defects, data[:400])
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))
        bodies.append(parsed.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n"))
    assert "hello world\nsecond line\n" in bodies
    assert bodies.count(HTML + "\n") == 2
    assert "disk full on /var\n" in bodies


def test_received_keeps_an_address_literal_helo(relay, standin):
    """smtplib, Thunderbird and printers without a host name say EHLO [address]; Postfix writes it as
    it is ("from [192.168.1.20] (host [192.168.1.20])"), it must not become "_192.168.1.20_"."""
    relay.start()
    send(relay, ["boss@example.com"], f"From: {MAILBOX}\r\nSubject: lit\r\n\r\nx\r\n".encode(), helo="[192.168.1.20]")
    send(relay, ["boss@example.com"], f"From: {MAILBOX}\r\nSubject: lit6\r\n\r\nx\r\n".encode(), helo="[IPv6:fe80::1]")
    messages = wait_messages(standin, 2)
    fields = sorted(parse_received(data)[1][0] for _, data in messages)
    assert fields[0].startswith("from [192.168.1.20] ([127.0.0.1]) by relay.test "), fields
    assert fields[1].startswith("from [IPv6:fe80::1] ([127.0.0.1]) by relay.test "), fields


def test_long_header_lines_are_folded_so_the_upstream_takes_them(relay, standin):
    """A Subject of 1,500 characters folds at its spaces (the reader sees the same subject); a header
    with no space in its first 998 octets (a long token or URL) is cut there with CRLF SPACE, as
    Postfix does. It used to be sent whole: the stand-in, like Exchange, refused it and the message
    the client had been told was accepted failed."""
    relay.start()
    subject = " ".join(f"report-{i:03d}" for i in range(140))
    assert len(subject) > 1400
    token = "".join(f"{i:04x}" for i in range(500))   # 2,000 characters without a space
    send(relay, ["boss@example.com"], f"From: {MAILBOX}\r\nSubject: {subject}\r\n\r\nx\r\n".encode())
    send(relay, ["boss@example.com"], f"From: {MAILBOX}\r\nSubject: token\r\nX-Job-Token: {token}\r\n\r\nx\r\n".encode())
    messages = wait_messages(standin, 2)
    assert relay.failed_files() == []
    for _, data in messages:
        assert all(len(line) <= 998 for line in data.split(b"\r\n")), "a line over 998 octets left the relay"
    by_subject = {email.message_from_bytes(d, policy=email.policy.compat32)["Subject"]: d for _, d in messages}
    unfolded = {k.replace("\r\n", "") if k else k: v for k, v in by_subject.items()}
    assert subject in unfolded, list(by_subject)   # folded at whitespace: unfolding gives it back
    parsed = email.message_from_bytes(unfolded["token"], policy=email.policy.compat32)
    assert parsed["X-Job-Token"].replace("\r\n", "").replace(" ", "") == token


def test_an_attachment_written_as_one_base64_line_is_wrapped_and_arrives_intact(relay, standin):
    """Some scripts put a whole attachment on one base64 line. It used to be sent as it was, refused
    upstream (a line over 998 octets) and failed after the client had its 250; the part is now encoded
    again in short lines and the recipient gets the same octets."""
    import base64
    relay.start()
    blob = bytes((i * 7919) % 256 for i in range(6000))
    message = (f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: pdf\r\nMIME-Version: 1.0\r\n"
               'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n'
               "see attached\r\n--B\r\nContent-Type: application/pdf; name=a.pdf\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(blob).decode() + "\r\n--B--\r\n")
    send(relay, ["boss@example.com"], message.encode())
    (_, data), = wait_messages(standin, 1)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/pdf" and attachment.get_content() == blob
    assert relay.failed_files() == []


def test_a_forwarded_message_with_a_long_html_line_arrives_intact(relay, standin):
    """A message forwarded as an attachment (message/rfc822) whose HTML is one long line: its part is
    re-encoded like any other. It used to be sent as it was and fail upstream after the 250."""
    relay.start()
    inner = f"From: erp@contoso.com\r\nSubject: inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{HTML}\r\n"
    message = (f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
               'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n'
               f"see below\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n{inner}--B--\r\n")
    send(relay, ["boss@example.com"], message.encode())
    (_, data), = wait_messages(standin, 1)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    [forwarded] = [p for p in parsed.walk() if p.get_content_type() == "message/rfc822"]
    text, _ = html_of(forwarded.get_payload(0).as_bytes())
    assert text.rstrip("\r\n") == HTML
