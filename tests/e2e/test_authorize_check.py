"""Issue 3 (part A) end to end: `authorize` (browser with PKCE, --paste, --device), `check` against a
healthy and each broken setup, and `hash-password` for local users. The Microsoft stand-in plays the
identity platform (authorize, devicecode, token endpoints) and Exchange Online."""
import os
import re
import smtplib
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import BINARY, MAILBOX

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)


def with_sign_in(relay, standin):
    relay.accounts["office"].update(authorize_url=standin.sign_in_url("authorize"),
                                    devicecode_url=standin.sign_in_url("devicecode"))


def start_cli(relay, *args):
    relay.write_config()
    return subprocess.Popen([BINARY, *args, "--config", relay.config_path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def read_until(process, pattern, timeout=15):
    """Reads stdout lines until one matches `pattern`; returns the match."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    process.kill()
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}\nstderr:\n{process.stderr.read()}")


def finish(process, timeout=30):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def browser_get(url, timeout=15):
    """A browser: follows the stand-in's 302 to the CLI's loopback listener; returns (status, page)."""
    try:
        with NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def redirect_location(url):
    """The address the stand-in redirects the browser to (without going there)."""
    try:
        NO_REDIRECT.open(url, timeout=15)
    except urllib.error.HTTPError as err:
        assert err.code == 302, err.read()
        return err.headers["Location"]
    raise AssertionError("the authorize endpoint did not redirect")


def token_file(relay):
    return os.path.join(relay.state_dir, "tokens", "office.json")


def grant_count(standin, grant, outcome="ok"):
    return standin.stats()["token_requests"].get(grant, {}).get(outcome, 0)


def send_one(relay, subject, login=None):
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.ehlo("printer.local")
        if login:
            client.login(*login)
        data = f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n"
        assert client.sendmail(MAILBOX, ["boss@example.com"], data) == {}


# --- authorize: authorization code + PKCE through a browser ---------------------------------------

def test_authorize_in_a_browser_then_the_relay_delivers(relay, standin):
    with_sign_in(relay, standin)
    cli = start_cli(relay, "authorize", "--account", "office", "--timeout", "30")
    url = read_until(cli, r"^\s+(http\S+)").group(1)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert url.startswith(standin.sign_in_url("authorize") + "?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["response_type"] == "code" and len(query["state"]) >= 16
    assert re.fullmatch(r"http://localhost:\d+", query["redirect_uri"])
    # Browsers open speculative connections that stay silent; they must not hold up the redirect.
    idle = socket.create_connection(("127.0.0.1", urllib.parse.urlsplit(query["redirect_uri"]).port))
    status, page = browser_get(url, timeout=5)
    idle.close()
    assert status == 200 and "You can close this tab" in page
    code, out, err = finish(cli)
    assert code == 0, out + err
    assert "tokens stored in" in out and "smtp-oauth2-relay check --config" in out
    assert "0.AUthC" not in out + err  # the code is never printed
    assert stat.S_IMODE(os.stat(token_file(relay)).st_mode) == 0o600
    assert grant_count(standin, "authorization_code") == 1

    relay.start(import_token=False)
    send_one(relay, "after authorize")
    envelope, _ = standin.wait_for_messages(1, timeout=20)[0]
    assert envelope["auth_user"] == MAILBOX


def test_authorize_refuses_a_redirect_with_a_foreign_state(relay, standin):
    with_sign_in(relay, standin)
    cli = start_cli(relay, "authorize", "--account", "office", "--timeout", "30")
    url = read_until(cli, r"^\s+(http\S+)").group(1)
    location = redirect_location(url)
    forged = re.sub(r"state=[^&]+", "state=attacker", location)
    status, page = browser_get(forged)
    assert status == 400 and "does not match" in page
    code, out, err = finish(cli)
    assert code == 1
    assert "state parameter does not match" in err
    assert grant_count(standin, "authorization_code") == 0 and not os.path.exists(token_file(relay))


def test_authorize_reports_a_denied_sign_in(relay, standin):
    with_sign_in(relay, standin)
    standin.control(authorize_mode="deny")
    cli = start_cli(relay, "authorize", "--account", "office", "--timeout", "30")
    status, page = browser_get(read_until(cli, r"^\s+(http\S+)").group(1))
    assert status == 200 and "Sign-in failed" in page and "access_denied" in page
    code, out, err = finish(cli)
    assert code == 1 and "sign-in failed: access_denied" in err and "consent" in err


def test_authorize_times_out_cleanly(relay, standin):
    with_sign_in(relay, standin)
    started = time.monotonic()
    result = relay.run("authorize", "--account", "office", "--timeout", "2")
    assert result.returncode == 1
    assert "no sign-in arrived within 2 s" in result.stderr
    assert time.monotonic() - started < 15


def test_authorize_paste_and_codes_are_single_use_with_pkce(relay, standin):
    with_sign_in(relay, standin)
    cli = start_cli(relay, "authorize", "--account", "office", "--paste")
    url = read_until(cli, r"^\s+(http\S+)").group(1)
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["redirect_uri"] == "http://localhost"
    location = redirect_location(url)
    code, out, err = finish_with_input(cli, location + "\n")
    assert code == 0, out + err
    assert os.path.exists(token_file(relay))
    # The stand-in really enforces what the relay relies on: a code works once, and only with the verifier.
    auth_code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["code"]
    status, body = standin.token_request(grant_type="authorization_code", client_id="test-client-id",
                                         client_secret="test-client-secret", code=auth_code,
                                         redirect_uri="http://localhost", code_verifier="x" * 43)
    assert status == 400 and "AADSTS54005" in body["error_description"]


def test_authorize_without_offline_access_stores_nothing(relay, standin):
    with_sign_in(relay, standin)
    relay.accounts["office"]["scope"] = "https://outlook.office.com/SMTP.Send"
    cli = start_cli(relay, "authorize", "--account", "office", "--paste")
    location = redirect_location(read_until(cli, r"^\s+(http\S+)").group(1))
    code, out, err = finish_with_input(cli, location + "\n")
    assert code == 1 and "no refresh token" in err and "offline_access" in err
    assert not os.path.exists(token_file(relay))


def test_stand_in_authorize_refuses_a_non_loopback_redirect(standin):
    query = {"client_id": "test-client-id", "response_type": "code", "redirect_uri": "http://evil.example/",
             "state": "s", "code_challenge": "c" * 43, "code_challenge_method": "S256"}
    status, page = browser_get(standin.sign_in_url("authorize") + "?" + urllib.parse.urlencode(query))
    assert status == 400 and "AADSTS50011" in page


def finish_with_input(process, text, timeout=30):
    out, err = process.communicate(text, timeout=timeout)
    return process.returncode, out, err


def test_stand_in_refuses_a_wrong_pkce_verifier(standin):
    query = {"client_id": "test-client-id", "response_type": "code", "redirect_uri": "http://localhost:1234",
             "scope": "https://outlook.office.com/SMTP.Send offline_access", "state": "s",
             "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    location = redirect_location(standin.sign_in_url("authorize") + "?" + urllib.parse.urlencode(query))
    auth_code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["code"]
    form = dict(grant_type="authorization_code", client_id="test-client-id", client_secret="test-client-secret",
                code=auth_code, redirect_uri="http://localhost:1234")
    status, body = standin.token_request(**form, code_verifier="wrong-verifier-" + "x" * 30)
    assert status == 400 and "AADSTS501481" in body["error_description"]
    # RFC 7636 appendix B: the right verifier would have worked, but the code is spent now.
    status, body = standin.token_request(**form, code_verifier="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert status == 400 and "AADSTS54005" in body["error_description"]


# --- authorize --device -----------------------------------------------------------------------------

def start_device_flow(relay, standin, **settings):
    with_sign_in(relay, standin)
    standin.control(device_interval=1, **settings)
    cli = start_cli(relay, "authorize", "--account", "office", "--device")
    user_code = read_until(cli, r"open (\S+) and enter the code (\S+)").group(2)
    return cli, user_code


def wait_for_pending_polls(standin, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    while grant_count(standin, grant, "authorization_pending") < count:
        assert time.monotonic() < deadline, standin.stats()["token_requests"]
        time.sleep(0.1)


def test_device_flow_approved_mid_poll(relay, standin):
    cli, user_code = start_device_flow(relay, standin)
    wait_for_pending_polls(standin, 2)
    standin.device_decision(user_code, "approve")
    code, out, err = finish(cli)
    assert code == 0, out + err
    assert "tokens stored in" in out
    assert grant_count(standin, "urn:ietf:params:oauth:grant-type:device_code") == 1
    # From an empty state directory to a verified path without handling a token.
    check = relay.run("check", "--account", "office", "--send-test", "boss@example.com")
    assert check.returncode == 0, check.stdout + check.stderr
    standin.wait_for_messages(1)


def test_device_flow_declined(relay, standin):
    cli, user_code = start_device_flow(relay, standin)
    wait_for_pending_polls(standin)
    standin.device_decision(user_code, "decline")
    code, out, err = finish(cli)
    assert code == 1 and "declined" in err
    assert not os.path.exists(token_file(relay))


def test_device_flow_expired(relay, standin):
    cli, _ = start_device_flow(relay, standin, device_expires_in=2)
    code, out, err = finish(cli)
    assert code == 1 and "device code expired" in err


def test_device_flow_slows_down_when_asked(relay, standin):
    cli, user_code = start_device_flow(relay, standin, device_slow_down=1)
    read_until(cli, r"poll more slowly; now every 6 s")
    standin.device_decision(user_code, "approve")
    code, out, err = finish(cli)
    assert code == 0, out + err


def test_device_flow_is_refused_for_google(relay, standin):
    relay.accounts["office"] = relay.account_for(standin, provider="google")
    result = relay.run("authorize", "--account", "office", "--device")
    assert result.returncode == 2
    assert "Google does not allow the device flow" in result.stderr


# --- check --------------------------------------------------------------------------------------------

def test_check_passes_on_a_healthy_setup_and_sends_a_test_message(relay, standin):
    relay.import_token()
    result = relay.run("check", "--account", "office", "--send-test", "boss@example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for step in ("[ ok ] config", "[ ok ] token endpoint reachable", "[ ok ] refresh token works (access token valid",
                 f"[ ok ] upstream TLS verified (localhost:{standin.smtp_port}, TLSv1.", "[ ok ] AUTH XOAUTH2 accepted",
                 "[ ok ] test message accepted: 250"):
        assert any(line.startswith(step) for line in lines), (step, result.stdout)
    envelope, _ = standin.wait_for_messages(1)[0]
    assert envelope["rcpt_to"] == ["boss@example.com"]


BROKEN = {
    "invalid_grant": (dict(token_mode="invalid_grant"), "[FAIL] refresh token works",
                      ["expired, revoked", "smtp-oauth2-relay authorize --account office"]),
    "invalid_client": (dict(token_mode="invalid_client"), "[FAIL] refresh token works",
                       ["client secret is wrong or expired", "Certificates & secrets"]),
    "smtp_auth_disabled": (dict(fail_auth_with="535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                                               "is disabled for the Tenant."), "[FAIL] AUTH XOAUTH2 accepted",
                           ["SMTP AUTH is disabled for the tenant",
                            "Set-TransportConfig -SmtpClientAuthenticationDisabled $false"]),
    "smtp_auth_disabled_mailbox": (dict(fail_auth_with="535 5.7.139 Authentication unsuccessful, "
                                                       "SmtpClientAuthentication is disabled for the Mailbox."),
                                   "[FAIL] AUTH XOAUTH2 accepted",
                                   [f"Set-CASMailbox -Identity {MAILBOX} -SmtpClientAuthenticationDisabled $false"]),
    "send_as_denied": (dict(fail_mail_with="550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
                       "[FAIL] test message accepted", ["may not send as", "-AccessRights SendAs"]),
    "smtp_down": (dict(smtp_up=False), "[FAIL] upstream reachable", ["connection refused"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_diagnoses_each_broken_setup(relay, standin, case):
    relay.import_token()
    settings, failed_step, diagnosis = BROKEN[case]
    standin.control(**settings)
    result = relay.run("check", "--send-test", "boss@example.com")
    assert result.returncode == 1, result.stdout
    assert failed_step in result.stdout, result.stdout
    for text in diagnosis:
        assert text in result.stdout, result.stdout
    assert "cause:" in result.stdout and "fix:" in result.stdout


def test_check_diagnoses_untrusted_tls_and_a_missing_token(relay, standin):
    relay.accounts["office"].pop("upstream_ca_file")
    result = relay.run("check", "--account", "office")
    assert result.returncode == 1
    assert "no refresh token is stored for account office" in result.stdout
    assert "[FAIL] upstream TLS verified" in result.stdout and "certificate" in result.stdout
    assert relay.run("check", "--account", "nope").returncode == 2


# --- hash-password --------------------------------------------------------------------------------------

def test_hash_password_from_stdin_then_auth_with_the_hash(relay, standin):
    result = subprocess.run([BINARY, "hash-password"], input="Pr1nter-pass\n", capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert re.fullmatch(r"\$pbkdf2-sha256\$310000\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}", hashed), hashed
    assert "Pr1nter-pass" not in result.stdout + result.stderr
    relay.users = [{"name": "printer", "password_hash": hashed, "account": "office"}]
    relay.settings["require_auth"] = True
    relay.start()
    for attempt in range(2):  # the second login is answered from the verification cache
        send_one(relay, f"hashed {attempt}", login=("printer", "Pr1nter-pass"))
    with pytest.raises(smtplib.SMTPAuthenticationError):
        send_one(relay, "wrong", login=("printer", "Pr1nter-pasS"))
    standin.wait_for_messages(2, timeout=20)


def test_a_malformed_password_hash_is_a_config_error(relay, standin):
    relay.users = [{"name": "printer", "password_hash": "$1$md5$nope", "account": "office"}]
    result = relay.run("check")
    assert result.returncode == 2
    assert re.search(r"config\.toml:\d+:\d+: users\[0\]\.password_hash: expected", result.stderr), result.stderr
