"""Issue 5 end to end: the relay as a service. The systemd unit (verified and rated by systemd-analyze),
the notify protocol (a datagram socket standing in for systemd), JSON and journald log entries (a
datagram socket standing in for journald), and the .deb (built, listed, installed when we are root).
The commands an administrator runs against it (status, metrics, sendmail, config --check) and the
secret-leak sweep: test_admin_commands.py."""
import fcntl
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import time

import pytest

from conftest import BINARY, MAILBOX, ROOT

UNIT = os.path.join(ROOT, "systemd", "smtp-oauth2-relay.service")


def message(subject, extra_headers=(), body_lines=("Hello from a legacy app.",)):
    lines = [f"From: {MAILBOX}", "To: boss@example.com", f"Subject: {subject}", *extra_headers, ""] + list(body_lines)
    return ("\r\n".join(lines) + "\r\n").encode()


def send(port, data, rcpts=("boss@example.com",), login=None, mechanism=None):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("legacy-app.local")
        if login:
            if mechanism:
                client.user, client.password = login
                client.auth(mechanism, getattr(client, "auth_" + mechanism.lower()), initial_response_ok=False)
            else:
                client.login(*login)
        client.sendmail(MAILBOX, list(rcpts), data)


class DatagramSink:
    """A unix datagram socket standing in for systemd's notify socket or journald's socket."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.received = []

    def drain(self):
        """Everything received so far (what is waiting now is appended)."""
        while True:
            try:
                self.received.append(self.sock.recv(1 << 20))
            except BlockingIOError:
                return self.received

    def wait_for(self, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            found = [m for m in self.received if predicate(m)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching datagram within {timeout} s; got {self.received[-10:]}")

    def close(self):
        self.sock.close()


def parse_journal_entry(data):
    """journald's native protocol: KEY=value lines, or KEY\\n<le64 size><bytes>\\n for binary values."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            size = int.from_bytes(data[nl + 1:nl + 9], "little")
            value = data[nl + 9:nl + 9 + size]
            assert data[nl + 9 + size:nl + 10 + size] == b"\n"
            i = nl + 10 + size
        fields[key.decode()] = value.decode()
    return fields


# --- systemd unit ---------------------------------------------------------------------------------

def test_unit_verifies_and_its_exposure_is_at_most_1_5(tmp_path):
    unit_text = open(UNIT).read()
    assert "Type=notify" in unit_text and "ExecReload=" in unit_text and "WatchdogSec=" in unit_text
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" in unit_text
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE\n" in unit_text
    assert "PrivateUsers=yes" not in unit_text and "PrivateNetwork=yes" not in unit_text  # port 25 on the host
    # verify needs the commands to exist: a copy pointing at the built binary.
    unit = tmp_path / "smtp-oauth2-relay.service"
    unit.write_text(unit_text.replace("/usr/bin/smtp-oauth2-relay", os.path.abspath(BINARY)))
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stdout + verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT], capture_output=True,
                              text=True, timeout=60)
    assert security.returncode == 0, security.stderr
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout).group(1))
    assert exposure <= 1.5, security.stdout
    # A deliberate weakening is noticed: the test can fail.
    weak = tmp_path / "weak.service"
    weak.write_text(unit_text.replace("ProtectSystem=strict", "ProtectSystem=no").replace("NoNewPrivileges=yes", ""))
    weak_out = subprocess.run(["systemd-analyze", "security", "--offline=true", str(weak)], capture_output=True,
                              text=True, timeout=60).stdout
    assert float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", weak_out).group(1)) > exposure


def test_sysusers_and_tmpfiles_create_the_user_and_a_private_spool(tmp_path):
    (tmp_path / "etc").mkdir()   # an image root: sysusers writes its etc/passwd, tmpfiles reads it
    sysusers = subprocess.run(["systemd-sysusers", f"--root={tmp_path}",
                               os.path.join(ROOT, "systemd", "smtp-oauth2-relay.sysusers")],
                              capture_output=True, text=True, timeout=30)
    assert sysusers.returncode == 0, sysusers.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"^smtp-oauth2-relay:x:\d+:\d+:[^:]*:/var/lib/smtp-oauth2-relay:/usr/sbin/nologin$", passwd, re.M)
    tmpfiles = subprocess.run(["systemd-tmpfiles", "--create", f"--root={tmp_path}",
                               os.path.join(ROOT, "systemd", "smtp-oauth2-relay.tmpfiles")],
                              capture_output=True, text=True, timeout=30)
    assert tmpfiles.returncode == 0, tmpfiles.stderr
    uid = int(re.search(r"^smtp-oauth2-relay:x:(\d+):", passwd, re.M).group(1))
    # The spool only lets others through to the maildrop (writable, not listable, sticky).
    for directory, mode in (("var/spool/smtp-oauth2-relay", 0o711), ("var/spool/smtp-oauth2-relay/maildrop", 0o1733),
                            ("var/lib/smtp-oauth2-relay", 0o700)):
        st = (tmp_path / directory).stat()
        assert stat.S_IMODE(st.st_mode) == mode and st.st_uid == uid, directory


# --- sd_notify ------------------------------------------------------------------------------------

def test_notify_ready_status_watchdog_and_reload(relay, tmp_path, monkeypatch):
    sink = DatagramSink(str(tmp_path / "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    try:
        relay.start()
        ready = sink.wait_for(lambda m: b"READY=1" in m)
        # READY=1 means listening: the port answers (start() connected already) and STATUS names the queue.
        assert any(b"STATUS=0 messages (0 queued" in m for m in sink.received), sink.received
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
            assert s.recv(512).startswith(b"220 ")
        send(relay.port, message("notify"))
        relay.wait_for_log("delivered")
        # WATCHDOG=1 at half of 0.4 s: several within a second.
        time.sleep(1.0)
        sink.drain()
        assert len([m for m in sink.received if m == b"WATCHDOG=1"]) >= 3, sink.received
        before = len(sink.received)
        relay.process.send_signal(signal.SIGHUP)
        reloading = sink.wait_for(lambda m: m.startswith(b"RELOADING=1"))
        assert re.match(rb"RELOADING=1\nMONOTONIC_USEC=\d+$", reloading[0]), reloading
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(b"READY=1" in m for m in sink.drain()[before:]):
            time.sleep(0.05)
        after = sink.received[before:]
        first_reloading = next(i for i, m in enumerate(after) if m.startswith(b"RELOADING=1"))
        assert any(b"READY=1" in m for m in after[first_reloading + 1:]), after
        relay.wait_for_log("reloaded")
        assert relay.stop() == 0
        assert b"STOPPING=1" in sink.drain()
        assert len(ready) == 1  # READY=1 once at start (the second one came after RELOADING)
    finally:
        sink.close()


def test_notify_to_an_abstract_socket_and_nothing_without_notify_socket(relay, monkeypatch):
    name = f"smtp-oauth2-relay-test-{os.getpid()}-{relay.port}"
    sink = DatagramSink("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        relay.start()
        sink.wait_for(lambda m: b"READY=1" in m)
    finally:
        sink.close()
    relay.stop()
    monkeypatch.delenv("NOTIFY_SOCKET")
    relay.start()  # no NOTIFY_SOCKET: runs the same, nothing to notify
    send(relay.port, message("plain"))
    relay.wait_for_log("delivered")


# --- log formats ----------------------------------------------------------------------------------

def test_json_log_lines_carry_every_per_message_field(relay, standin):
    relay.settings["log_format"] = "json"
    relay.start()
    send(relay.port, message("json ok"))
    standin.wait_for_messages(1)
    standin.control(fail_mail_with="451 4.7.500 Server busy, please try again later")
    send(relay.port, message("json deferred"))
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in relay.log().splitlines() if line.strip()]
        if any(e["event"] == "deferred" for e in lines):
            break
        time.sleep(0.1)
    standin.control(fail_mail_with="554 5.6.0 Message content rejected")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in relay.log().splitlines() if line.strip()]
        if any(e["event"] == "failed" for e in lines):
            break
        time.sleep(0.1)
    events = {}
    for e in lines:
        assert set(e) >= {"time", "level", "event"}, e
        events.setdefault(e["event"], []).append(e)
    received = events["received"][0]
    assert set(received) >= {"queue_id", "account", "from", "rcpt_count", "size", "client"}
    assert received["account"] == "office" and received["from"] == MAILBOX and received["rcpt_count"] == 1
    delivered = events["delivered"][0]
    assert delivered["queue_id"] == received["queue_id"]
    assert set(delivered) >= {"account", "from", "rcpt_count", "size", "upstream_reply", "attempt", "delay_ms"}
    assert delivered["upstream_reply"].startswith("250 ")
    assert delivered["upstream_queue_id"] and delivered["upstream_queue_id"] in delivered["upstream_reply"]
    deferred = events["deferred"][0]
    assert deferred["upstream_reply"].startswith("451 4.7.500") and deferred["next_try_in_s"] >= 1 and deferred["attempt"] == 1
    failed = events["failed"][0]
    assert failed["queue_id"] == deferred["queue_id"] and "554 5.6.0" in failed["upstream_reply"]


def test_journal_entries_have_upper_case_fields_and_auto_detection(relay, tmp_path, monkeypatch):
    journal = DatagramSink(str(tmp_path / "journal.sock"))
    monkeypatch.setenv("SMTP_OAUTH2_RELAY_JOURNAL_SOCKET", str(tmp_path / "journal.sock"))
    # log_format is left at "auto": JOURNAL_STREAM naming the relay's stderr switches it to journal.
    open(relay.log_path, "a").close()
    st = os.stat(relay.log_path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    try:
        relay.start()
        send(relay.port, message("journal"))
        entries = journal.wait_for(lambda m: b"EVENT=delivered\n" in m)
        delivered = parse_journal_entry(entries[0])
        for key in ("QUEUE_ID", "ACCOUNT", "MAIL_FROM", "RCPT_COUNT", "SIZE", "UPSTREAM_REPLY", "UPSTREAM_QUEUE_ID", "DELAY_MS",
                    "ATTEMPT", "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"):
            assert key in delivered, (key, delivered)
        assert delivered["PRIORITY"] == "6" and delivered["ACCOUNT"] == "office"
        assert delivered["MAIL_FROM"] == MAILBOX and delivered["UPSTREAM_REPLY"].startswith("250 ")
        assert delivered["MESSAGE"].startswith("info delivered queue_id=" + delivered["QUEUE_ID"])
        received = [parse_journal_entry(m) for m in journal.drain() if b"EVENT=received\n" in m]
        assert received and received[0]["QUEUE_ID"] == delivered["QUEUE_ID"]
        # Nothing went to stderr: the journal had every line.
        assert relay.log() == ""
    finally:
        journal.close()


def test_journal_falls_back_to_stderr_when_journald_is_absent(relay, tmp_path, monkeypatch):
    relay.settings["log_format"] = "journal"
    monkeypatch.setenv("SMTP_OAUTH2_RELAY_JOURNAL_SOCKET", str(tmp_path / "nobody-listens.sock"))
    relay.start()
    send(relay.port, message("fallback"))
    assert relay.wait_for_log("delivered")


# --- packaging ------------------------------------------------------------------------------------

def test_deb_is_built_with_unit_config_man_pages_and_installs(tmp_path):
    build_dir = os.path.dirname(os.path.abspath(BINARY))
    out_dir = tmp_path / "deb"
    built = subprocess.run(["cpack", "-G", "DEB", "-B", str(out_dir)], cwd=build_dir, capture_output=True,
                           text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    debs = [p for p in out_dir.iterdir() if p.name.endswith(".deb")]
    assert len(debs) == 1
    deb = str(debs[0])
    contents = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    for path in ("./usr/bin/smtp-oauth2-relay", "./lib/systemd/system/smtp-oauth2-relay.service",
                 "./usr/lib/sysusers.d/smtp-oauth2-relay.conf", "./usr/lib/tmpfiles.d/smtp-oauth2-relay.conf",
                 "./etc/smtp-oauth2-relay/config.toml", "./usr/share/man/man8/smtp-oauth2-relay.8.gz",
                 "./usr/share/man/man5/smtp-oauth2-relay.toml.5.gz",
                 "./usr/lib/smtp-oauth2-relay/sendmail -> ../../bin/smtp-oauth2-relay",
                 # The host's MTA, the usual way (issue 12): cron and bsd-mailx find sendmail here.
                 "./usr/sbin/sendmail -> ../bin/smtp-oauth2-relay", "./usr/bin/mailq -> smtp-oauth2-relay",
                 "./usr/sbin/newaliases -> ../bin/smtp-oauth2-relay"):
        assert path in contents, path
    info = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True, check=True).stdout
    assert "Package: smtp-oauth2-relay" in info and "libssl3" in info
    for field in ("Provides", "Conflicts", "Replaces"):
        assert re.search(rf"^ {field}: mail-transport-agent$", info, re.M), info
    assert re.search(r"^ Version: \d+\.\d+\.\d+-\d+$", info, re.M), info          # a Debian revision
    maintainer = re.search(r"^ Maintainer: (.*)$", info, re.M).group(1)
    assert re.fullmatch(r"[^<>]+ <[^@\s<>]+@[^@\s<>]+\.[a-z]+>", maintainer) and "localhost" not in maintainer
    conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], capture_output=True, text=True).stdout
    assert conffiles.split() == ["/etc/smtp-oauth2-relay/config.toml"]
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-x", deb, str(tree)], check=True)
    page = subprocess.run(["man", "-l", str(tree / "usr/share/man/man8/smtp-oauth2-relay.8.gz")],
                          capture_output=True, text=True, env=dict(os.environ, MANPAGER="cat", MANWIDTH="100"))
    assert "journalctl -u smtp-oauth2-relay QUEUE_ID=" in page.stdout.replace("\u2010", "-"), page.stderr
    installed = subprocess.run([str(tree / "usr/bin/smtp-oauth2-relay"), "--version"], capture_output=True, text=True)
    assert installed.stdout.startswith("smtp-oauth2-relay ")

    # dpkg -i on this machine only as root, when the package is not installed otherwise; one at a time.
    if os.geteuid() != 0 or not shutil.which("dpkg"):
        pytest.skip("not root: .deb built and checked, not installed")
    with open("/tmp/smtp-oauth2-relay-dpkg-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if subprocess.run(["dpkg", "-s", "smtp-oauth2-relay"], capture_output=True).returncode == 0:
            pytest.skip("smtp-oauth2-relay is installed on this machine; not touching it")
        try:
            install = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, timeout=120)
            assert install.returncode == 0, install.stdout + install.stderr
            version = subprocess.run(["/usr/bin/smtp-oauth2-relay", "--version"], capture_output=True, text=True)
            assert version.returncode == 0 and version.stdout.startswith("smtp-oauth2-relay 0.")
            config = os.stat("/etc/smtp-oauth2-relay/config.toml")
            assert stat.S_IMODE(config.st_mode) == 0o640
            assert os.path.isdir("/var/spool/smtp-oauth2-relay")
            # The shipped config has no working login and a placeholder client id, which is refused.
            check = subprocess.run(["/usr/bin/smtp-oauth2-relay", "config", "--check"], capture_output=True, text=True)
            assert check.returncode == 2 and "client_id: 00000000-0000-0000-0000-000000000000 is the example's " \
                "placeholder" in check.stderr, check.stdout + check.stderr
            assert "[[users]]\nname" not in open("/etc/smtp-oauth2-relay/config.toml").read()
            assert os.path.realpath("/usr/sbin/sendmail") == "/usr/bin/smtp-oauth2-relay"
            # What a running relay leaves in the spool besides mail.
            for d in ("control", "recycled", "incoming"):
                os.makedirs(f"/var/spool/smtp-oauth2-relay/{d}", exist_ok=True)
                open(f"/var/spool/smtp-oauth2-relay/{d}/leftover", "w").close()
        finally:
            purge = subprocess.run(["dpkg", "--purge", "smtp-oauth2-relay"], capture_output=True, text=True, timeout=120)
        assert purge.returncode == 0, purge.stdout + purge.stderr
        # Purge leaves nothing the package created.
        for path in ("/usr/bin/smtp-oauth2-relay", "/usr/sbin/sendmail", "/usr/bin/mailq", "/etc/smtp-oauth2-relay",
                     "/var/lib/smtp-oauth2-relay", "/var/spool/smtp-oauth2-relay", "/lib/systemd/system/smtp-oauth2-relay.service"):
            assert not os.path.lexists(path), path
