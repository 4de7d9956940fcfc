"""The stand-in's Microsoft Graph sendMail is as strict as Graph (issue 14): the relay's Graph tests are
only worth what it refuses. Standard-library clients only (urllib), so a relay bug cannot hide a
stand-in bug; the relay binary is not needed.
"""
import base64
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standin"))
from harness import StandIn  # noqa: E402
from standin_control import DEFAULT_SETTINGS  # noqa: E402

USER = "scanner@contoso.com"
SECRET = "test-client-secret"
GRAPH_SCOPE = "https://graph.microsoft.com/Mail.Send offline_access"
MESSAGE = (b"From: scanner@contoso.com\r\nTo: Boss <boss@example.com>\r\nCc: cc@example.com\r\n"
           b"Bcc: hidden@example.com\r\nResent-To: resent@example.com\r\nSubject: graph\r\n\r\nbody\r\n")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandIn(tmp_path_factory.mktemp("standin")) as running:
        yield running


@pytest.fixture(autouse=True)
def reset_switches(standin):
    yield
    standin.control(**DEFAULT_SETTINGS)


def token(standin, scope=GRAPH_SCOPE, user=USER):
    refresh = "test-rt-" + secrets.token_urlsafe(12)
    standin.control(add_refresh_token={"token": refresh, "user": user})
    status, body = standin.token_request(grant_type="refresh_token", client_id="test-client-id",
                                         client_secret=SECRET, refresh_token=refresh, scope=scope)
    assert status == 200, body
    return body["access_token"]


def app_token(standin, scope="https://graph.microsoft.com/.default"):
    status, body = standin.token_request(grant_type="client_credentials", client_id="test-client-id",
                                         client_secret=SECRET, scope=scope)
    assert status == 200, body
    return body["access_token"]


def send(standin, bearer, mime=MESSAGE, mailbox=USER, raw_body=None, content_type="text/plain"):
    data = raw_body if raw_body is not None else base64.b64encode(mime)
    request = urllib.request.Request(f"{standin.graph_url}/v1.0/users/{mailbox}/sendMail", data=data,
                                     method="POST", headers={"Content-Type": content_type,
                                                             "Authorization": f"Bearer {bearer}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["error"], dict(err.headers)


def test_delegated_send_records_header_recipients_and_strips_bcc(standin):
    before = len(standin.messages())
    status, body, _ = send(standin, token(standin))
    assert (status, body) == (202, b"")
    envelope, copy = standin.wait_for_messages(before + 1)[-1]
    # To, Cc and Bcc receive; Resent-To names nobody; the Bcc field reaches no one.
    assert envelope["rcpt_to"] == ["boss@example.com", "cc@example.com", "hidden@example.com"]
    assert envelope["transport"] == "graph" and envelope["mailbox"] == USER
    assert b"Bcc:" not in copy and b"hidden@" not in copy
    assert copy == MESSAGE.replace(b"Bcc: hidden@example.com\r\n", b"")


def test_tokens_are_checked_for_audience_expiry_issuer_user_and_role(standin):
    smtp_token = token(standin, scope="https://outlook.office.com/SMTP.Send offline_access")
    status, error, _ = send(standin, smtp_token)
    assert status == 401 and error["code"] == "InvalidAuthenticationToken" and "audience" in error["message"]
    status, error, _ = send(standin, "EwB" + secrets.token_urlsafe(40))
    assert status == 401 and "not issued" in error["message"]
    status, error, _ = send(standin, token(standin, user="other@contoso.com"))
    assert status == 403 and error["code"] == "ErrorAccessDenied"
    expiring = token(standin)
    standin.control(expire_access_tokens=True)
    status, error, _ = send(standin, expiring)
    assert status == 401 and "expired" in error["message"]
    # App-only: the Mail.Send role, limited to the mailboxes of the application access policy.
    app = app_token(standin)
    status, error, _ = send(standin, app)
    assert status == 403 and "AccessPolicy" in error["message"]
    standin.control(app_mailboxes=[USER])
    assert send(standin, app)[0] == 202
    standin.control(graph_app_roles=[])
    assert send(standin, app_token(standin))[0] == 403
    assert send(standin, app_token(standin, "https://outlook.office365.com/.default"))[0] == 401


def test_content_errors_size_limit_and_send_as(standin):
    bearer = token(standin)
    status, error, _ = send(standin, bearer, raw_body=b"!!not base64!!")
    assert status == 400 and error["code"] == "ErrorMimeContentInvalidBase64String"
    status, error, _ = send(standin, bearer, content_type="application/json")
    assert status == 415
    status, error, _ = send(standin, bearer, mime=b"From: scanner@contoso.com\r\nSubject: x\r\n\r\nno one\r\n")
    assert status == 400 and error["code"] == "ErrorInvalidRecipients"
    status, error, _ = send(standin, bearer, mime=MESSAGE.replace(b"From: scanner@", b"From: ceo@"))
    assert status == 403 and error["code"] == "ErrorSendAsDenied"
    standin.control(send_as={"scanner@contoso.com": ["ceo@contoso.com"]})   # SendAs granted
    assert send(standin, bearer, mime=MESSAGE.replace(b"From: scanner@", b"From: ceo@"))[0] == 202
    assert standin.stats()["send_as_denied"]["scanner@contoso.com"] >= 1
    # 4 MB on the base64 text: 3 MiB of MIME is the most that fits.
    # Lines of 76 octets, as an encoded attachment has: the stand-in refuses lines over 998.
    line = b"x" * 74 + b"\r\n"
    filler = line * ((3 * 1024 * 1024 - len(MESSAGE)) // len(line))
    just_fits = MESSAGE + filler + b"x" * (3 * 1024 * 1024 - len(MESSAGE) - len(filler))
    assert send(standin, bearer, mime=just_fits)[0] == 202
    status, error, _ = send(standin, bearer, mime=just_fits + b"y")
    assert status == 413 and error["code"] == "ErrorRequestEntityTooLarge"


def test_forced_answers_retry_after_and_concurrency_limit(standin):
    bearer = token(standin)
    standin.control(graph_fail={"status": 429, "code": "ApplicationThrottled", "retry_after": "7", "count": 2})
    for _ in range(2):
        status, error, headers = send(standin, bearer)
        assert status == 429 and error["code"] == "ApplicationThrottled" and headers["Retry-After"] == "7"
    assert send(standin, bearer)[0] == 202  # count exhausted
    standin.control(graph_fail={"status": 503, "count": 0})
    assert send(standin, bearer)[0] == 503 and send(standin, bearer)[0] == 503
    standin.control(graph_fail={})
    # A fifth concurrent request for one mailbox is throttled.
    standin.control(graph_delay_ms=600)
    results = []
    threads = [threading.Thread(target=lambda: results.append(send(standin, bearer)[0])) for _ in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert sorted(results) == [202, 202, 202, 202, 429]
    assert standin.stats()["graph_max_concurrent"][USER] == 4
