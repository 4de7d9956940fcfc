"""The Microsoft stand-in is strict: the relay's end-to-end tests are only worth what it refuses.

Only standard-library clients talk to it here (urllib for the token endpoint, smtplib and raw
sockets for SMTP), so a bug in the relay cannot hide a bug in the stand-in. One stand-in serves the
module; each test gets its own refresh token and every switch is reset afterwards, so tests do not
depend on their order. The relay binary is not needed.
"""
import base64
import json
import secrets
import smtplib
import socket
import ssl
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standin"))
from harness import StandIn, StandInError  # noqa: E402
from standin_control import DEFAULT_SETTINGS  # noqa: E402

USER = "scanner@contoso.com"
SECRET = "test-client-secret"
MESSAGE = (b"From: scanner@contoso.com\r\nTo: boss@example.com\r\nSubject: dots\r\n\r\n"
           b".leading dot\r\n..two dots\r\n.\r\nbody line\r\n")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandIn(tmp_path_factory.mktemp("standin")) as running:
        yield running


@pytest.fixture(autouse=True)
def reset_switches(standin):
    yield
    standin.control(**DEFAULT_SETTINGS)


def refresh(standin, refresh_token, **overrides):
    form = dict(grant_type="refresh_token", client_id="test-client-id", client_secret=SECRET,
                refresh_token=refresh_token)
    form.update(overrides)
    return standin.token_request(**{k: v for k, v in form.items() if v is not None})


def new_refresh_token(standin, user=USER):
    token = "test-rt-" + secrets.token_urlsafe(12)
    standin.control(add_refresh_token={"token": token, "user": user})
    return token


def access_token(standin, user=USER):
    status, body = refresh(standin, new_refresh_token(standin, user))
    assert status == 200, body
    return body["access_token"]


def xoauth2(user, token):
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


def tls_client(standin, host="127.0.0.1"):
    client = smtplib.SMTP(host, standin.smtp_port, timeout=10)
    client.ehlo("client.example")
    client.starttls(context=ssl.create_default_context(cafile=standin.ca_file))
    client.ehlo("client.example")
    return client


def authenticated_client(standin, user=USER):
    client = tls_client(standin)
    code, text = client.docmd("AUTH", "XOAUTH2 " + xoauth2(user, access_token(standin, user)))
    assert (code, text) == (235, b"2.7.0 Authentication successful")
    return client


# --- token endpoint ------------------------------------------------------------------------------

def test_refresh_returns_access_token_and_a_new_refresh_token_old_one_stays_valid(standin):
    old = new_refresh_token(standin)
    status, body = refresh(standin, old)
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("EwB")
    assert body["refresh_token"] not in (old, "")
    assert refresh(standin, old)[0] == 200  # rotation "keep": Microsoft's behaviour
    assert standin.latest_refresh_token() not in (old, body["refresh_token"])


def test_client_errors_look_like_microsoft(standin):
    token = new_refresh_token(standin)
    status, body = refresh(standin, token, client_secret="wrong")
    assert status == 401 and body["error"] == "invalid_client"
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert body["error_codes"] == [7000215] and body["trace_id"] and body["correlation_id"]
    assert SECRET not in json.dumps(body) and "wrong" not in json.dumps(body)
    assert refresh(standin, token, client_secret=None)[1]["error"] == "invalid_client"
    status, body = refresh(standin, token, client_id="someone-else")
    assert (status, body["error"], body["error_codes"]) == (400, "unauthorized_client", [700016])
    status, body = refresh(standin, "never-issued")
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = refresh(standin, token, grant_type="password")
    assert (status, body["error"]) == (400, "unsupported_grant_type")


def test_rotation_invalidate_kills_the_old_refresh_token(standin):
    standin.control(rotation="invalidate")
    old = new_refresh_token(standin)
    status, body = refresh(standin, old)
    assert status == 200
    status, error = refresh(standin, old)
    assert (status, error["error"]) == (400, "invalid_grant")
    assert refresh(standin, body["refresh_token"])[0] == 200


def test_token_modes(standin):
    token = new_refresh_token(standin)
    standin.control(token_mode="server_error")
    status, body = refresh(standin, token)
    assert (status, body["error"]) == (503, "temporarily_unavailable")
    standin.control(token_mode="invalid_grant")
    status, body = refresh(standin, token)
    assert (status, body["error"], body["error_codes"]) == (400, "invalid_grant", [700082])
    standin.control(token_mode="ok")
    assert refresh(standin, token)[0] == 200
    with pytest.raises(StandInError, match="unknown control key"):
        standin.control(throtle_every_n=1)


# --- SMTP: TLS and authentication ----------------------------------------------------------------

def test_auth_is_offered_only_after_starttls_with_a_verifiable_certificate(standin):
    with smtplib.SMTP("127.0.0.1", standin.smtp_port, timeout=10) as client:
        client.ehlo("client.example")
        assert "starttls" in client.esmtp_features and "auth" not in client.esmtp_features
        assert client.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, "x"))[0] == 504
    for host in ("127.0.0.1", "localhost"):  # chain and host name both verified against ca.pem
        client = tls_client(standin, host)
        assert client.esmtp_features["auth"].split() == ["LOGIN", "XOAUTH2"]
        assert "starttls" not in client.esmtp_features
        client.quit()


def test_valid_token_delivers_the_exact_bytes(standin):
    before = len(standin.messages())
    client = authenticated_client(standin)
    client.sendmail(USER, ["boss@example.com", "team@example.com"], MESSAGE)
    client.quit()
    envelope, body = standin.wait_for_messages(before + 1)[-1]
    assert body == MESSAGE  # dot-stuffed by smtplib, un-stuffed by the stand-in
    assert envelope["mail_from"] == USER and envelope["auth_user"] == USER
    assert envelope["rcpt_to"] == ["boss@example.com", "team@example.com"]
    assert envelope["tls"] is True and envelope["auth_mechanism"] == "XOAUTH2"
    assert envelope["size"] == len(MESSAGE)


@pytest.mark.parametrize("kind", ["other_user", "invented", "expired"])
def test_tokens_that_must_not_work_get_535_5_7_3(standin, kind):
    if kind == "other_user":
        token = access_token(standin, user="someone@contoso.com")
    elif kind == "invented":
        token = "EwB" + secrets.token_urlsafe(90)
    else:
        standin.control(token_lifetime=1)
        token = access_token(standin)
        time.sleep(2)
    client = tls_client(standin)
    assert client.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token)) == (
        535, b"5.7.3 Authentication unsuccessful")
    assert client.docmd("MAIL", f"FROM:<{USER}>")[0] == 530
    client.close()


def test_auth_after_334_and_sender_must_be_the_mailbox(standin):
    client = tls_client(standin)
    assert client.docmd("MAIL", f"FROM:<{USER}>") == (
        530, b"5.7.57 Client not authenticated to send mail. [SN7PR04CA0042.outlook.office365.com]")
    assert client.docmd("AUTH", "XOAUTH2") == (334, b"")
    assert client.docmd(xoauth2(USER, access_token(standin)))[0] == 235
    code, text = client.docmd("MAIL", "FROM:<ceo@contoso.com>")
    assert (code, text[:6]) == (550, b"5.7.60")
    assert client.docmd("MAIL", f"FROM:<{USER.upper()}>")[0] == 250
    client.close()


def test_concurrent_session_limit_per_mailbox(standin):
    standin.control(max_sessions_per_user=2)
    first, second = authenticated_client(standin), authenticated_client(standin)
    third = tls_client(standin)
    code, text = third.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, access_token(standin)))
    assert (code, text[:5]) == (432, b"4.3.2")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        third.noop()
    assert standin.stats()["sessions_max"][USER] == 2
    for client in (first, second):
        client.quit()


def test_fail_auth_with(standin):
    reply = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
             "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.")
    standin.control(fail_auth_with=reply)
    client = tls_client(standin)
    code, text = client.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, access_token(standin)))
    assert f"{code} {text.decode()}" == reply
    client.close()


# --- SMTP: protocol details ----------------------------------------------------------------------

def read_reply(stream):
    """One (possibly multi-line) reply from a socket file: list of lines."""
    lines = [stream.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(stream.readline())
    return lines


def test_pipelining_and_plaintext_after_starttls_is_discarded(standin):
    before = standin.stats()["plaintext_discarded_at_starttls"]
    with socket.create_connection(("127.0.0.1", standin.smtp_port), timeout=10) as raw:
        plain = raw.makefile("rb")
        assert read_reply(plain)[0].startswith(b"220 ")
        raw.sendall(b"NOOP\r\nEHLO a\r\nSTARTTLS\r\nNOOP\r\n")  # one write: a pipelined group
        assert read_reply(plain) == [b"250 2.0.0 OK\r\n"]
        assert read_reply(plain)[-1] == b"250 SMTPUTF8\r\n"
        assert read_reply(plain) == [b"220 2.0.0 SMTP server ready\r\n"]
        context = ssl.create_default_context(cafile=standin.ca_file)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            secure = tls.makefile("rb")
            tls.sendall(b"EHLO a\r\n")
            ehlo = read_reply(secure)  # not the injected NOOP's "250 2.0.0 OK"
            assert ehlo[0].startswith(b"250-") and b"250-AUTH LOGIN XOAUTH2\r\n" in ehlo
    assert standin.stats()["plaintext_discarded_at_starttls"] == before + len(b"NOOP\r\n")


def test_bdat_chunks_are_stored_verbatim(standin):
    before = len(standin.messages())
    client = authenticated_client(standin)
    assert client.docmd("MAIL", f"FROM:<{USER}> BODY=BINARYMIME")[0] == 250
    assert client.docmd("RCPT", "TO:<boss@example.com>")[0] == 250
    client.send(b"BDAT 6\r\n.a\r\nbc")
    assert client.getreply()[0] == 250
    client.send(b"BDAT 3 LAST\r\nd\r\n")
    code, text = client.getreply()
    assert code == 250 and text.startswith(b"2.0.0 OK <")
    client.quit()
    assert standin.wait_for_messages(before + 1)[-1][1] == b".a\r\nbcd\r\n"


# --- failure switches ----------------------------------------------------------------------------

def test_throttle_every_n(standin):
    standin.control(throttle_every_n=2)
    before = len(standin.messages())
    client = authenticated_client(standin)
    client.sendmail(USER, ["a@example.com"], MESSAGE)
    with pytest.raises(smtplib.SMTPDataError) as throttled:
        client.sendmail(USER, ["a@example.com"], MESSAGE)
    assert throttled.value.smtp_code == 432 and b"4.3.2 STOREDRV.ClientSubmit" in throttled.value.smtp_error
    client.sendmail(USER, ["a@example.com"], MESSAGE)
    client.quit()
    assert len(standin.messages()) == before + 2


def test_fail_mail_with(standin):
    standin.control(fail_mail_with="554 5.2.252 SendAsDenied; scanner@contoso.com not allowed")
    before = len(standin.messages())
    client = authenticated_client(standin)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(USER, ["a@example.com"], MESSAGE)
    assert refused.value.smtp_code == 554 and refused.value.smtp_error.startswith(b"5.2.252")
    client.quit()
    assert len(standin.messages()) == before


def test_send_as_rule_per_mailbox_on_envelope_and_from_header(standin):
    """Exchange's SendAs rule (issue 11): the mailbox and its granted addresses pass; any other
    envelope sender or From: gets 5.7.60 at MAIL FROM or 554 5.2.252 SendAsDenied after the data."""
    before = standin.stats()["send_as_denied"].get(USER, 0)   # the stand-in is shared by this module
    client = authenticated_client(standin)
    foreign_header = MESSAGE.replace(b"From: scanner@", b"From: ceo@")
    with pytest.raises(smtplib.SMTPDataError) as refused:   # envelope fine, From: header not
        client.sendmail(USER, ["a@example.com"], foreign_header)
    assert refused.value.smtp_code == 554 and refused.value.smtp_error.startswith(b"5.2.252 SendAsDenied; " + USER.encode())
    standin.control(send_as_check="end_of_data")
    with pytest.raises(smtplib.SMTPDataError) as refused:   # now the envelope, after the data
        client.sendmail("invoices@contoso.com", ["a@example.com"], MESSAGE)
    assert refused.value.smtp_code == 554 and b"send as invoices@contoso.com" in refused.value.smtp_error
    standin.control(send_as={USER: ["Invoices@Contoso.com"]})
    client.sendmail("invoices@contoso.com", ["a@example.com"], MESSAGE.replace(b"From: scanner@", b"From: invoices@"))
    client.quit()
    assert standin.stats()["send_as_denied"] == {USER: before + 2}
    # Repeated refusals trip continuous-error throttling of the whole mailbox, its own mail included.
    standin.control(send_as_throttle_after=before + 2)
    client = authenticated_client(standin)
    code, text = client.docmd("MAIL", f"FROM:<{USER}>")
    assert (code, text[:7]) == (550, b"5.2.251"), (code, text)
    client.close()


def test_smtp_down_refuses_and_drops_then_comes_back_on_the_same_port(standin):
    open_session = authenticated_client(standin)
    standin.set_smtp_up(False)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", standin.smtp_port), timeout=5)
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        open_session.noop()
    standin.set_smtp_up(True)
    client = authenticated_client(standin)
    assert client.noop()[0] == 250
    client.quit()


# --- lifecycle -----------------------------------------------------------------------------------

def test_restart_keeps_issued_tokens_and_sigterm_exits_cleanly(tmp_path):
    first = StandIn(tmp_path, rotation="invalidate").start()
    status, body = refresh(first, "initial-refresh-token")
    assert status == 200
    assert first.stop() == 0
    with StandIn(tmp_path) as second:  # same state dir: same CA, same tokens, no resurrection
        assert Path(second.ca_file).read_bytes() == (tmp_path / "ca.pem").read_bytes()
        assert refresh(second, body["refresh_token"])[0] == 200
        assert refresh(second, "initial-refresh-token")[1]["error"] == "invalid_grant"


def test_log_never_contains_secrets_or_tokens(tmp_path):
    log = tmp_path / "standin.log"
    with StandIn(tmp_path / "state", log_path=log) as quiet:
        status, body = refresh(quiet, "initial-refresh-token")
        assert status == 200
        client = tls_client(quiet)
        assert client.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, body["access_token"]))[0] == 235
        client.quit()
        refresh(quiet, "initial-refresh-token", client_secret="wrong-secret-value")
    text = log.read_text()
    assert "token grant=refresh_token status=200" in text and "auth XOAUTH2 ok" in text
    for secret in (SECRET, "wrong-secret-value", "initial-refresh-token",
                   body["access_token"], body["refresh_token"]):
        assert secret[4:] not in text


def test_google_flavor_implicit_tls_oauthbearer_and_334_failure(tmp_path):
    with StandIn(tmp_path, flavor="google", smtp_tls="implicit") as google:
        assert google.token_url.endswith("/token")
        status, body = refresh(google, "initial-refresh-token")
        assert status == 200 and "refresh_token" not in body  # Google does not rotate
        context = ssl.create_default_context(cafile=google.ca_file)
        client = smtplib.SMTP_SSL("127.0.0.1", google.smtp_port, timeout=10, context=context)
        client.ehlo("client.example")
        assert "OAUTHBEARER" in client.esmtp_features["auth"].split()
        code, challenge = client.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, "EwBinvented"))
        assert code == 334 and json.loads(base64.b64decode(challenge))["status"] == "401"
        assert client.docmd("")[0] == 535
        bearer = f"n,a={USER},\x01host=localhost\x01port=465\x01auth=Bearer {{}}\x01\x01"
        code, challenge = client.docmd(
            "AUTH", "OAUTHBEARER " + base64.b64encode(bearer.format("bad").encode()).decode())
        assert code == 334 and json.loads(base64.b64decode(challenge))["status"] == "invalid_token"
        assert client.docmd("AQ==") == (535, b"5.7.8 Username and Password not accepted. Learn more "
                                              b"at\n5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp")
        good = base64.b64encode(bearer.format(body["access_token"]).encode()).decode()
        assert client.docmd("AUTH", "OAUTHBEARER " + good) == (235, b"2.7.0 Accepted")
        client.sendmail(USER, ["a@example.com"], MESSAGE)
        client.quit()
        envelope, stored = google.wait_for_messages(1)[0]
        assert stored == MESSAGE and envelope["auth_mechanism"] == "OAUTHBEARER"


# --- content rules of a strict server (issue 11) -------------------------------------------------

def test_smtp_refuses_long_lines_and_undeclared_8bit_data(standin):
    long_line = b"From: scanner@contoso.com\r\nTo: boss@example.com\r\n\r\n" + b"x" * 999 + b"\r\n"
    eight_bit = b"From: scanner@contoso.com\r\nTo: boss@example.com\r\n\r\ncaf\xc3\xa9\r\n"
    client = authenticated_client(standin)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(USER, ["boss@example.com"], long_line)
    assert refused.value.smtp_code == 554 and b"5.6.0" in refused.value.smtp_error
    with pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(USER, ["boss@example.com"], eight_bit)
    assert refused.value.smtp_code == 554 and b"8BITMIME" in refused.value.smtp_error
    # 998 octets is allowed, and 8-bit data once declared.
    assert client.sendmail(USER, ["boss@example.com"], long_line.replace(b"x" * 999, b"x" * 998)) == {}
    assert client.sendmail(USER, ["boss@example.com"], eight_bit, mail_options=["BODY=8BITMIME"]) == {}
    client.quit()
