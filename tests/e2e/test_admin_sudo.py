"""Issue 12 item 1 end to end: admin commands under sudo against a relay that runs as its own system
user, as the package runs it. The test creates a system user (useradd -r), runs `serve` as that user
(setpriv), and the admin commands as root, the way `sudo smtp-oauth2-relay ...` runs them. Before the
fix, root's request files (0600 root) were unreadable for the relay: `queue delete` said "deleted",
exit 0, and the message later turned up anyway; `token import`/`authorize` left a root-owned token.
A chown of the token file must wake a held account within seconds."""
import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BINARY, MAILBOX, Relay

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a system user and acts as sudo does")


@pytest.fixture
def service_user():
    name = "sor-test-" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    yield pwd.getpwnam(name)
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


class RelayAsUser(Relay):
    """The test relay, but `serve` runs as `user` with spool_dir and state_dir owned by that user and a
    config file root:user 0640, like the package installs them."""

    def __init__(self, workdir, standin, user):
        super().__init__(workdir, standin)
        self.user = user
        os.chmod(self.workdir, 0o755)
        for d, mode in ((self.spool_dir, 0o711), (self.state_dir, 0o700)):   # as the package's tmpfiles.d
            os.makedirs(d, exist_ok=True)
            os.chmod(d, mode)
            os.chown(d, user.pw_uid, user.pw_gid)
        # The stand-in's CA lives under pytest's root-only tmp dir: give the relay a readable copy.
        ca = os.path.join(self.workdir, "standin-ca.pem")
        shutil.copy(standin.ca_file, ca)
        os.chmod(ca, 0o644)
        self.accounts["office"]["upstream_ca_file"] = ca

    def write_config(self):
        path = super().write_config()
        os.chown(path, 0, self.user.pw_gid)
        os.chmod(path, 0o640)
        return path

    def start(self, import_token=True):
        if import_token:
            self.import_token()   # as root, like `sudo smtp-oauth2-relay token import`
        self.write_config()
        self.log_file = open(self.log_path, "a")
        self.process = subprocess.Popen(
            ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups",
             BINARY, "serve", "--config", self.config_path],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"relay exited with {self.process.returncode}:\n{self.log()}"
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("relay did not start listening:\n" + self.log())


@pytest.fixture
def relay_as_user(standin, service_user):
    # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700, which the relay's user cannot enter.
    workdir = tempfile.mkdtemp(prefix="sor-sudo-", dir="/var/tmp")
    os.makedirs(os.path.join(workdir, "relay"))
    os.chmod(workdir, 0o755)
    instance = RelayAsUser(os.path.join(workdir, "relay"), standin, service_user)
    yield instance
    code = instance.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    if code not in (None, 0):
        pytest.fail(f"relay exited with status {code} on SIGTERM:\n{instance.log()}")


def send(relay, subject):
    data = f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.sendmail(MAILBOX, ["boss@example.com"], data)


def queue_ids(relay):
    return relay.queue_files()


def owner(path):
    return pwd.getpwuid(os.stat(path).st_uid).pw_name


def test_queue_commands_as_root_act_as_the_relay_user(relay_as_user, standin, service_user):
    relay = relay_as_user
    standin.set_smtp_up(False)
    relay.start()
    token = os.path.join(relay.state_dir, "tokens", "office.json")
    assert owner(token) == service_user.pw_name    # token import as root stored it as the relay's user
    send(relay, "keep me")
    send(relay, "drop me")
    relay.wait_for_log("deferred", 2)
    keep, drop = queue_ids(relay)

    held = relay.run("queue", "hold", keep)
    assert held.returncode == 0, held.stderr
    assert owner(os.path.join(relay.spool_dir, "queue", keep + ".hold")) == service_user.pw_name
    deleted = relay.run("queue", "delete", drop)
    assert deleted.returncode == 0, deleted.stderr
    relay.wait_for_log("deleted")
    standin.set_smtp_up(True)
    assert relay.run("queue", "retry", "--all").returncode == 0
    time.sleep(3)
    assert standin.messages() == []                      # held stays, deleted is gone for good
    assert relay.run("queue", "release", keep).returncode == 0
    (envelope, body), = standin.wait_for_messages(1, timeout=20)
    assert b"keep me" in body
    relay.wait_for_log("delivered")
    time.sleep(1)
    assert len(standin.messages()) == 1 and relay.failed_files() == []
    assert relay.log_lines("control_request_ignored") == [], relay.log()


def test_queue_command_by_a_user_the_relay_cannot_read_is_an_error(relay_as_user, standin):
    relay = relay_as_user
    standin.set_smtp_up(False)
    relay.start()
    send(relay, "stays")
    relay.wait_for_log("deferred")
    (qid,) = queue_ids(relay)
    os.chmod(relay.config_path, 0o644)
    as_nobody = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", BINARY, "queue",
                                "delete", qid, "--config", relay.config_path], capture_output=True, text=True)
    assert as_nobody.returncode == 1 and "must run as root" in as_nobody.stderr, as_nobody.stderr
    assert queue_ids(relay) == [qid]


def authorize_on_a_device(relay, standin):
    """`sudo smtp-oauth2-relay authorize --device`, the code approved in the stand-in's sign-in page."""
    standin.control(device_interval=1)
    cli = subprocess.Popen([BINARY, "authorize", "--account", "office", "--device", "--config", relay.config_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    line = ""
    deadline = time.monotonic() + 15
    while "enter the code" not in line and time.monotonic() < deadline:
        line = cli.stdout.readline()
    standin.device_decision(line.split("enter the code")[1].split()[0], "approve")
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, out + err


def test_authorize_as_root_checks_it_can_store_before_the_url(relay_as_user, standin, service_user):
    relay = relay_as_user
    relay.accounts["office"].update(authorize_url=standin.sign_in_url("authorize"),
                                    devicecode_url=standin.sign_in_url("devicecode"))
    tokens = os.path.join(relay.state_dir, "tokens")
    os.makedirs(tokens)
    os.chown(tokens, service_user.pw_uid, service_user.pw_gid)
    os.chmod(tokens, 0o500)   # the relay's user cannot write here: nothing may be signed in
    refused = relay.run("authorize", "--account", "office", "--device", "--timeout", "5")
    assert refused.returncode == 1 and "cannot store tokens" in refused.stderr, refused.stdout + refused.stderr
    assert "enter the code" not in refused.stdout and "http" not in refused.stdout
    os.chmod(tokens, 0o700)
    authorize_on_a_device(relay, standin)
    assert owner(os.path.join(tokens, "office.json")) == service_user.pw_name


def test_chown_of_the_token_file_wakes_a_held_account(relay_as_user, standin, service_user):
    relay = relay_as_user
    # Backoff long enough that only noticing the chown can deliver the mail within the test.
    relay.settings.update(min_backoff="300s", max_backoff="600s")
    relay.import_token()
    token = os.path.join(relay.state_dir, "tokens", "office.json")
    # The admin's mistake: the token file ends up root-owned 0600, the relay cannot read it ...
    os.chown(token, 0, 0)
    relay.start(import_token=False)
    send(relay, "waits for the chown")
    time.sleep(3)
    assert standin.messages() == []
    # ... and the fix is a chown, nothing else: the account wakes within seconds.
    os.chown(token, service_user.pw_uid, service_user.pw_gid)
    started = time.monotonic()
    standin.wait_for_messages(1, timeout=20)
    assert time.monotonic() - started < 15, relay.log()


def test_sendmail_by_an_unprivileged_user_who_may_not_read_the_config(relay_as_user, standin):
    relay = relay_as_user
    relay.extra_toml = '\n[aliases]\nroot = "it@example.com"\n'
    relay.start()
    env = dict(os.environ, SMTP_OAUTH2_RELAY_CONFIG=relay.config_path, SMTP_OAUTH2_RELAY_SPOOL=relay.spool_dir)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    assert subprocess.run(as_nobody + ["cat", relay.config_path], capture_output=True).returncode != 0
    # A user's crontab: cron runs sendmail as that user.
    cron = subprocess.run(as_nobody + [BINARY, "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                          input=b"Subject: Cron <nobody@host> report\n\nfrom a user crontab\n", env=env,
                          capture_output=True, timeout=30)
    assert cron.returncode == 0, cron.stderr
    (envelope, data), = standin.wait_for_messages(1, timeout=20)
    assert envelope["rcpt_to"] == ["it@example.com"] and b"from a user crontab" in data
    # Users cannot look into the maildrop (another user's mail stays theirs).
    listing = subprocess.run(as_nobody + ["ls", os.path.join(relay.spool_dir, "maildrop")], capture_output=True)
    assert listing.returncode != 0
    assert "user=nobody" in relay.wait_for_log("maildrop_submitted")[0]


def test_a_user_who_may_not_read_the_config_gets_usage_errors_and_hints_not_silence(relay_as_user, standin):
    relay = relay_as_user
    relay.start()
    env = dict(os.environ, SMTP_OAUTH2_RELAY_CONFIG=relay.config_path, SMTP_OAUTH2_RELAY_SPOOL=relay.spool_dir)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    # PHP's mail() (-t -i) from www-data with no To: header: root gets exit 64 at once; this user's
    # message used to go into the maildrop with exit 0, where the relay could only throw it away.
    nothing = subprocess.run(as_nobody + [BINARY, "sendmail", "-t", "-i"], input=b"Subject: no To\n\nbody\n",
                             env=env, capture_output=True, timeout=30)
    assert nothing.returncode == 64 and b"no recipients" in nothing.stderr, nothing.stderr
    time.sleep(1)
    assert relay.log_lines("maildrop_refused") == []
    # mailq (or `status`) without sudo: not a "configuration error", the way out is named.
    link = os.path.join(relay.workdir, "mailq")
    os.symlink(os.path.abspath(BINARY), link)
    mailq = subprocess.run(as_nobody + [link], env=env, capture_output=True, text=True, timeout=30)
    assert mailq.returncode != 0 and "sudo" in mailq.stderr and "configuration has" not in mailq.stderr, mailq.stderr


def test_authorize_as_root_makes_a_private_tokens_directory(relay_as_user, standin, service_user):
    relay = relay_as_user
    relay.accounts["office"].update(authorize_url=standin.sign_in_url("authorize"),
                                    devicecode_url=standin.sign_in_url("devicecode"))
    relay.write_config()
    authorize_on_a_device(relay, standin)
    # sudo's umask (022) made it 0755, and the relay's first start warned permissions_fixed.
    assert oct(os.stat(os.path.join(relay.state_dir, "tokens")).st_mode & 0o777) == "0o700"
    relay.start(import_token=False)
    assert relay.log_lines("permissions_fixed") == []


def test_bs_by_a_user_who_may_not_read_the_config(relay_as_user, standin):
    # Symfony Mailer and Laravel default to `sendmail -bs`, run as www-data: it used to exit 78.
    from test_sendmail_debian import symfony_bs
    relay = relay_as_user
    relay.start()
    env = dict(os.environ, SMTP_OAUTH2_RELAY_CONFIG=relay.config_path, SMTP_OAUTH2_RELAY_SPOOL=relay.spool_dir)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    codes, exit_code = symfony_bs(as_nobody + [BINARY, "sendmail", "-bs"], env, "boss@example.com",
                                  "Subject: from a web app\r\n\r\nover -bs")
    assert codes == [220, 250, 250, 250, 354, 250, 221] and exit_code == 0
    (envelope, data), = standin.wait_for_messages(1, timeout=20)
    assert envelope["rcpt_to"] == ["boss@example.com"] and b"over -bs" in data
    assert "user=nobody" in relay.wait_for_log("maildrop_submitted")[0]
