"""Issue 12 item 3: `systemctl reload` on a broken config fails and the relay keeps its config. The
unit's ExecReload= lines are run as systemd runs them: in order, $MAINPID substituted, stopping at the
first that fails (whose exit status is what `systemctl reload` reports)."""
import os
import re
import shlex
import subprocess
import time

from conftest import BINARY, ROOT

UNIT = os.path.join(ROOT, "systemd", "smtp-oauth2-relay.service")


def reload_as_systemd(relay):
    lines = [line.split("=", 1)[1] for line in open(UNIT).read().splitlines() if line.startswith("ExecReload=")]
    assert len(lines) >= 2 and "config --check" in lines[0] and "kill -HUP $MAINPID" in lines[-1], lines
    out = err = ""
    for line in lines:
        argv = [BINARY if a == "/usr/bin/smtp-oauth2-relay" else
                relay.config_path if a == "/etc/smtp-oauth2-relay/config.toml" else
                str(relay.process.pid) if a == "$MAINPID" else a for a in shlex.split(line)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        out, err = out + result.stdout, err + result.stderr
        if result.returncode != 0:
            break
    return subprocess.CompletedProcess(lines, result.returncode, out, err)


def test_reload_fails_on_a_broken_config_and_the_relay_keeps_the_old_one(relay, standin):
    relay.start()
    relay.settings["max_backoff"] = "forever"
    relay.write_config()
    broken = reload_as_systemd(relay)
    assert broken.returncode == 2 and re.search(r"config\.toml:\d+:\d+: .*max_backoff", broken.stderr), broken.stderr
    time.sleep(1)
    assert relay.log_lines("reload_config_error") == []      # never signalled: nothing to undo
    assert relay.process.poll() is None
    relay.settings["max_backoff"] = "3s"
    relay.write_config()
    fixed = reload_as_systemd(relay)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout == ""           # --quiet: the effective config does not flood the journal
    relay.wait_for_log("reloaded")


def render(page):
    path = os.path.join(os.path.dirname(os.path.abspath(BINARY)), "man", page + ".gz")
    result = subprocess.run(["man", "-l", path], capture_output=True, text=True,
                            env=dict(os.environ, MANPAGER="cat", MANWIDTH="200"))
    assert result.returncode == 0, result.stderr
    return result.stdout.replace("\u2010", "-").replace("\u2212", "-")


def test_man_pages_cover_every_command_and_every_key(relay):
    commands_page = render("smtp-oauth2-relay.8")
    for command in ("serve", "token import", "authorize", "check", "hash-password", "queue", "config", "status",
                    "sendmail"):
        assert re.search(rf"^   {re.escape(command)}$", commands_page, re.M), command
        # The section is the command's own --help text, word for word.
        help_text = subprocess.run([BINARY, *command.split(), "--help"], capture_output=True, text=True).stdout
        first_line = help_text.splitlines()[0].strip()
        assert first_line in commands_page, (command, first_line)
    for option in ("--device", "--paste", "--failed", "--quiet", "-B", "newaliases"):
        assert option in commands_page, option
    keys_page = render("smtp-oauth2-relay.toml.5")
    # Every key `config --check` prints (the loader's whole key table, defaults filled in) has an entry.
    relay.extra_toml = '\n[aliases]\nroot = "it@example.com"\n'
    effective = relay.run("config", "--check").stdout
    keys = set(re.findall(r"^(?:# )?([a-z_]+)(?: = | is not set)", effective, re.M))
    assert len(keys) > 60
    for key in keys:
        assert re.search(rf"^       {key}(\s|$)", keys_page, re.M), key
    assert "[aliases]" in keys_page


def test_man_sendmail_mailq_newaliases_and_usr_lib_sendmail(tmp_path):
    # The package is the host's sendmail (issue 12 item 3); an admin types `man sendmail` or `man mailq`
    # and got "No manual entry" while smtp-oauth2-relay(8) itself pointed to sendmail(8).
    build_dir = os.path.dirname(os.path.abspath(BINARY))
    tree = tmp_path / "tree"
    installed = subprocess.run(["cmake", "--install", build_dir, "--prefix", "/usr"], capture_output=True, text=True,
                               env=dict(os.environ, DESTDIR=str(tree)), timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # FHS 3.0 4.6: /usr/lib/sendmail leads to the MTA's sendmail.
    assert os.readlink(tree / "usr/lib/sendmail") == "../sbin/sendmail"
    assert os.path.realpath(tree / "usr/lib/sendmail") == os.path.realpath(tree / "usr/bin/smtp-oauth2-relay")
    for name in ("sendmail", "mailq", "newaliases"):
        found = subprocess.run(["man", "--manpath", str(tree / "usr/share/man"), "-w", name],
                               capture_output=True, text=True)
        assert found.returncode == 0, (name, found.stderr)
        page = subprocess.run(["man", "-l", found.stdout.strip()], capture_output=True, text=True,
                              env=dict(os.environ, MANPAGER="cat", MANWIDTH="100"))
        assert "SMTP-OAUTH2-RELAY(8)" in page.stdout and "-bv" in page.stdout.replace("\u2010", "-"), name
