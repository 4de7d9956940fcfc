"""Found by the benchmark (issue 7): a client that sent a message and stays connected (a printer
keeping its session) must not keep the 64 KiB DATA read buffer. Measured as the relay's RSS growth
with many such clients; a memory bound, not a timing one."""
import smtplib

import pytest

from conftest import MAILBOX, binary_is_sanitized

CLIENTS = 300


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(binary_is_sanitized(), reason="ASan's shadow memory and quarantine make RSS meaningless")
def test_idle_clients_after_a_message_do_not_keep_the_data_buffer(relay, standin):
    relay.start()
    data = (f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: scan\r\n\r\n" + "x" * 70 + "\r\n") * 100
    # Warm up every path once so the figure is about the idle sessions.
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.sendmail(MAILBOX, ["boss@example.com"], data.encode())
    standin.wait_for_messages(1, timeout=20)
    before = rss_kib(relay.process.pid)
    held = []
    try:
        for _ in range(CLIENTS):
            client = smtplib.SMTP("127.0.0.1", relay.port, timeout=20)
            assert client.sendmail(MAILBOX, ["boss@example.com"], data.encode()) == {}
            held.append(client)
        grown = rss_kib(relay.process.pid) - before
        # About 11 KiB per idle session; keeping the 64 KiB DATA buffer would make it 75 KiB.
        assert grown < CLIENTS * 32, f"RSS grew by {grown} KiB for {CLIENTS} idle clients"
    finally:
        for client in held:
            client.close()
