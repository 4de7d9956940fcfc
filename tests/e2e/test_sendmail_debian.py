"""sendmail as a Debian host's programs call it (issue 12 item 2) and the header attacks of issue 13
item 5. Each invocation below is the exact argument list the program uses: Debian's cron
(`-FCronDaemon -i -B8BITMIME -oem root`), bsd-mailx (`-i -- NAME`), PHP's mail() (`-t -i`), Symfony
Mailer (`-bs`, SMTP on stdin); bare names resolve through [aliases], the alias_file and the default
account's domain, and the stand-in shows where each message really went."""
import os
import subprocess

from conftest import BINARY, MAILBOX, sendmail



def with_aliases(relay):
    alias_file = os.path.join(relay.workdir, "aliases")
    with open(alias_file, "w") as f:
        f.write("# as /etc/aliases\npostmaster: root\nwww-data: web@example.com,\n  |/usr/bin/logger\n")
    relay.settings["alias_file"] = alias_file
    relay.extra_toml = '\n[aliases]\nroot = ["it@example.com", "ops@example.com"]\n'


def delivered_to(standin, count):
    return [(sorted(env["rcpt_to"]), data) for env, data in standin.wait_for_messages(count, timeout=20)]


def test_cron_bsd_mailx_php_and_symfony_invocations_reach_the_alias_targets(relay, standin):
    with_aliases(relay)
    relay.start()
    cron = sendmail(relay, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                    b"Subject: Cron <root@host> run-parts /etc/cron.daily\n\nline one\n.\nline three\n")
    assert cron.returncode == 0, cron.stderr
    rcpts, data = delivered_to(standin, 1)[0]
    assert rcpts == ["it@example.com", "ops@example.com"]
    assert f'From: "CronDaemon" <{MAILBOX}>'.encode() in data and b"line one\r\n.\r\nline three" in data

    mailx = sendmail(relay, ["-i", "--", "www-data"], b"Subject: from mailx\n\nhello\n")
    assert mailx.returncode == 0, mailx.stderr
    assert delivered_to(standin, 2)[1][0] == ["web@example.com"]   # the |command target is skipped

    php = sendmail(relay, ["-t", "-i"], b"To: nobody, postmaster@localhost\nSubject: php\n\nfrom PHP\n")
    assert php.returncode == 0, php.stderr
    # "nobody" has no alias: the default account's domain; postmaster -> root -> [aliases].
    assert delivered_to(standin, 3)[2][0] == ["it@example.com", "nobody@contoso.com", "ops@example.com"]

    # -bs as Symfony Mailer uses it: one command at a time, each reply read before the next.
    bs = subprocess.Popen([os.path.join(relay.workdir, "sendmail"), "-bs"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, env=dict(os.environ, SMTP_OAUTH2_RELAY_CONFIG=relay.config_path))

    def reply():
        lines = []
        while True:
            line = bs.stdout.readline()
            assert line, lines
            lines.append(line)
            if line[3:4] == b" ":
                return int(line[:3]), lines

    def say(text):
        bs.stdin.write(text.encode() + b"\r\n")
        bs.stdin.flush()
        return reply()

    assert reply()[0] == 220
    assert say("EHLO app.local")[0] == 250
    assert say(f"MAIL FROM:<{MAILBOX}>")[0] == 250
    assert say("RCPT TO:<boss@example.com>")[0] == 250
    assert say("DATA")[0] == 354
    code, lines = say("Subject: over -bs\r\n\r\nsymfony\r\n.")
    assert code == 250 and b"queued as" in lines[-1], lines
    assert say("QUIT")[0] == 221
    bs.stdin.close()
    assert bs.wait(timeout=20) == 0
    rcpts, data = delivered_to(standin, 4)[3]
    assert rcpts == ["boss@example.com"] and b"symfony" in data

    mailq = sendmail(relay, [], b"", name="mailq")
    assert mailq.returncode == 0, mailq.stderr
    newaliases = sendmail(relay, [], b"", name="newaliases")
    assert newaliases.returncode == 0 and b"[aliases]" in newaliases.stdout


def test_bcc_and_resent_bcc_never_reach_the_message(relay, standin):
    relay.start()
    # Without -t: the recipients are the arguments and the Bcc: header must still go.
    plain = sendmail(relay, ["-i", "boss@example.com", "audit@example.com"],
                     b"To: boss@example.com\nBcc: audit@example.com,\n hidden@example.com\nSubject: a\n\nbody\n")
    assert plain.returncode == 0, plain.stderr
    rcpts, data = delivered_to(standin, 1)[0]
    assert rcpts == ["audit@example.com", "boss@example.com"]
    assert b"Bcc" not in data and b"hidden@example.com" not in data and b"audit@" not in data
    # With -t on a resent message: the Resent- recipients, Resent-Bcc removed.
    resent = sendmail(relay, ["-t", "-i"], b"From: a@example.com\nTo: old@example.com\nResent-From: " + MAILBOX.encode()
                      + b"\nResent-To: new@example.com\nResent-Bcc: quiet@example.com\nSubject: b\n\nbody\n")
    assert resent.returncode == 0, resent.stderr
    rcpts, data = delivered_to(standin, 2)[1]
    assert rcpts == ["new@example.com", "quiet@example.com"]
    assert b"quiet@example.com" not in data and b"Resent-Bcc" not in data


def test_control_characters_in_f_and_F_are_refused_before_anything_is_sent(relay, standin):
    relay.start()
    injected_name = sendmail(relay, ["-F", "Cron\r\nBcc: victim@example.com\r\nX-Evil: 1", "boss@example.com"],
                             b"Subject: x\n\nbody\n")
    assert injected_name.returncode == 64 and b"-F" in injected_name.stderr
    injected_sender = sendmail(relay, ["-f", f"{MAILBOX}>\r\nRCPT TO:<victim@example.com", "boss@example.com"],
                               b"Subject: x\n\nbody\n")
    assert injected_sender.returncode == 64 and b"-f" in injected_sender.stderr
    # A name that needs quoting or encoding is carried safely, not refused.
    fine = sendmail(relay, ["-F", 'J\u00fcrgen "the admin"', "boss@example.com"], b"Subject: x\n\nbody\n")
    assert fine.returncode == 0, fine.stderr
    rcpts, data = delivered_to(standin, 1)[0]
    assert rcpts == ["boss@example.com"] and b"victim" not in data and b"X-Evil" not in data
    assert b"From: =?UTF-8?B?" in data


def test_hash_password_refuses_a_short_password():
    short = subprocess.run([BINARY, "hash-password"], input=b"x\n", capture_output=True, timeout=30)
    assert short.returncode == 2 and b"at least 12" in short.stderr and short.stdout == b""
    # The boundary (issue 12, item 5): 11 characters are refused, 12 are enough.
    eleven = subprocess.run([BINARY, "hash-password"], input=b"a" * 11 + b"\n", capture_output=True, timeout=30)
    assert eleven.returncode == 2 and b"has 11 characters" in eleven.stderr and eleven.stdout == b""
    twelve = subprocess.run([BINARY, "hash-password"], input=b"a" * 12 + b"\n", capture_output=True, timeout=60)
    assert twelve.returncode == 0 and twelve.stdout.startswith(b"$pbkdf2-sha256$"), twelve.stderr


def test_relay_down_sendmail_exits_0_and_the_mail_goes_out_when_it_starts(relay, standin):
    with_aliases(relay)
    relay.start()
    relay.stop()
    # Debian's cron, with the relay stopped: cron would throw the mail away on any exit but 0.
    cron = sendmail(relay, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                    b"Subject: Cron <root@host> backup\n\nbackup done\n")
    assert cron.returncode == 0, cron.stderr
    maildrop = os.path.join(relay.spool_dir, "maildrop")
    assert len(os.listdir(maildrop)) == 1 and standin.messages() == []
    assert oct(os.stat(maildrop).st_mode & 0o7777) == "0o1733"
    relay.start()
    rcpts, data = delivered_to(standin, 1)[0]
    assert rcpts == ["it@example.com", "ops@example.com"] and b"backup done" in data
    relay.wait_for_log("maildrop_submitted")
    assert os.listdir(maildrop) == []


def test_grouped_flags_and_bv_as_getopt_and_postfix_take_them(relay, standin):
    with_aliases(relay)
    relay.start()
    # "-it" used to be -i alone (no recipients: exit 64); "-ti" lost its -i (the "." line ended the body).
    for n, flags in enumerate((["-it"], ["-ti"], ["-oi", "-t"]), start=1):
        sent = sendmail(relay, flags, b"To: root\nSubject: grouped\n\nbefore\n.\nafter\n")
        assert sent.returncode == 0, (flags, sent.stderr)
        rcpts, data = delivered_to(standin, n)[n - 1]
        assert rcpts == ["it@example.com", "ops@example.com"] and b"before\r\n.\r\nafter" in data, data
    # -bv: where local names go, nothing sent.
    verify = sendmail(relay, ["-bv", "root", "nobody"], b"")
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.decode().splitlines() == ["root... deliverable: it@example.com, ops@example.com",
                                                   "nobody... deliverable: nobody@contoso.com"]
    assert len(standin.messages()) == 3


def test_a_refused_config_keeps_cron_mail_in_the_maildrop(relay, standin):
    # Right after installing the package the config still has the placeholder client_id, which
    # config --check and serve refuse. cron mails hourly meanwhile; exit 78 made it throw that away.
    relay.extra_toml = '\n[aliases]\nroot = "it@example.com"\n'
    relay.start()
    relay.stop()
    relay.accounts["office"]["client_id"] = "00000000-0000-0000-0000-000000000000"
    cron = sendmail(relay, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                    b"Subject: Cron <root@host> hourly\n\nwhile unconfigured\n",
                    SMTP_OAUTH2_RELAY_SPOOL=relay.spool_dir)   # what the package's default spool is here
    assert cron.returncode == 0, cron.stderr
    assert b"placeholder" in cron.stderr and b"waits in" in cron.stderr
    assert len(os.listdir(os.path.join(relay.spool_dir, "maildrop"))) == 1
    relay.accounts["office"]["client_id"] = "test-client-id"   # the admin finishes the config
    relay.start()
    rcpts, data = delivered_to(standin, 1)[0]
    assert rcpts == ["it@example.com"] and b"while unconfigured" in data


def test_logwatch_and_unattended_upgrades_mail_arrives_with_the_shipped_rewrite_setting(relay, standin):
    # The stand-in refuses a From: the mailbox may not send as (SendAsDenied), as Exchange does, and
    # rewrite_sender stays at its shipped "never". Both programs write a local name as From:.
    standin.control(send_as_check="end_of_data")
    relay.extra_toml = '\n[aliases]\nroot = "it@example.com"\n'
    relay.start()
    logwatch = sendmail(relay, ["-t"], b"To: root\nFrom: Logwatch\nSubject: Logwatch for host (Linux)\n"
                        b"MIME-Version: 1.0\nContent-Type: text/plain; charset=\"UTF-8\"\n\nreport\n")
    assert logwatch.returncode == 0, logwatch.stderr
    upgrades = sendmail(relay, ["-oi", "-t"], b"Subject: unattended-upgrades result for host: True\nFrom: root\n"
                        b"To: root\nAuto-Submitted: auto-generated\n\nPackages upgraded\n")
    assert upgrades.returncode == 0, upgrades.stderr
    delivered = delivered_to(standin, 2)
    assert [rcpts for rcpts, _ in delivered] == [["it@example.com"], ["it@example.com"]]
    assert f'From: "Logwatch" <{MAILBOX}>'.encode() in delivered[0][1]
    assert f'From: "root" <{MAILBOX}>'.encode() in delivered[1][1]
    assert relay.log_lines("sender_denied") == []


def symfony_bs(argv, env, rcpt, body, preexec=None):
    """`sendmail -bs` as Symfony Mailer drives it: each reply read before the next command."""
    bs = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def reply():
        lines = []
        while True:
            line = bs.stdout.readline()
            assert line, (lines, bs.stderr.read() if bs.poll() is not None else b"")
            lines.append(line)
            if line[3:4] == b" ":
                return int(line[:3])

    def say(text):
        bs.stdin.write(text.encode() + b"\r\n")
        bs.stdin.flush()
        return reply()

    codes = [reply(), say("EHLO app.local"), say(f"MAIL FROM:<{MAILBOX}>"), say(f"RCPT TO:<{rcpt}>"), say("DATA"),
             say(body + "\r\n."), say("QUIT")]
    bs.stdin.close()
    return codes, bs.wait(timeout=20)


def test_bs_with_the_relay_down_answers_itself_and_the_maildrop_keeps_the_message(relay, standin):
    relay.start()
    relay.stop()
    relay.write_config()
    link = os.path.join(relay.workdir, "sendmail")
    os.symlink(os.path.abspath(BINARY), link)
    env = dict(os.environ, SMTP_OAUTH2_RELAY_CONFIG=relay.config_path)
    # It used to exit 75 at once: Symfony Mailer reports a failure and the message is gone.
    codes, exit_code = symfony_bs([link, "-bs"], env, "boss@example.com",
                                  "Subject: -bs while down\r\n\r\n..leading dot\r\nsymfony")   # dot-stuffed, as a client sends it
    assert codes == [220, 250, 250, 250, 354, 250, 221] and exit_code == 0
    assert len(os.listdir(os.path.join(relay.spool_dir, "maildrop"))) == 1
    relay.start()
    rcpts, data = delivered_to(standin, 1)[0]
    assert rcpts == ["boss@example.com"] and b"\r\n.leading dot\r\nsymfony" in data


def test_config_check_warns_when_the_hosts_own_mail_would_be_refused(relay):
    # sendmail and the maildrop submit over loopback without logging in: an admin who turns on
    # require_auth for the printers, or lists only the LAN in allow_networks, silently lost cron's mail.
    assert "own mail" not in relay.run("config", "--check", "--quiet").stderr
    relay.settings["require_auth"] = True
    strict = relay.run("config", "--check", "--quiet")
    assert strict.returncode == 0 and "require_auth = true" in strict.stderr and "own mail is refused" in strict.stderr
    relay.settings["require_auth"] = False
    relay.settings["allow_networks"] = ["192.168.0.0/16"]
    lan_only = relay.run("config", "--check", "--quiet")
    assert lan_only.returncode == 0 and 'add "127.0.0.0/8"' in lan_only.stderr, lan_only.stderr


def test_mailq_prints_postfixs_format_for_monitoring(relay, standin):
    # check_mailq and munin's postfix_mailqueue parse mailq's last line or its "empty" line.
    relay.start()
    empty = sendmail(relay, [], b"", name="mailq")
    assert empty.returncode == 0 and empty.stdout == b"Mail queue is empty\n", empty.stdout
    standin.set_smtp_up(False)
    assert sendmail(relay, ["-i", "boss@example.com", "clerk@example.com"], b"Subject: waits\n\nbody\n").returncode == 0
    relay.wait_for_log("deferred")
    lines = sendmail(relay, [], b"", name="mailq").stdout.decode().splitlines()
    assert lines[0] == "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------", lines
    qid, size = lines[1].split()[:2]
    assert len(qid) == 16 and int(size) > 0 and lines[1].endswith(f"  {MAILBOX}"), lines
    assert lines[2].startswith("(") and lines[2].endswith(")"), lines       # the last reply
    assert [line.strip() for line in lines[3:5]] == ["boss@example.com", "clerk@example.com"]
    assert lines[3].startswith(" " * 41)
    assert lines[-1] == f"-- {(int(size) + 1023) // 1024} Kbytes in 1 Request.", lines
    assert sendmail(relay, ["-bp"], b"").stdout.decode().splitlines() == lines
