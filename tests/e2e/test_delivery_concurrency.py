"""Found by the benchmark (issue 7): a message that arrives while the only upstream session is busy
starts a second worker; when that worker's upstream answers slowly, the first worker has delivered
the message already by the time the second one is connected. The second must then wait for more
mail, not take a message from the empty queue (the relay crashed there). The upstream here is a
small scripted SMTP server: its first session is quick but slow to accept data, later sessions are
slow to greet."""
import smtplib
import socket
import threading
import time

from conftest import MAILBOX
from harness import free_port


class ScriptedUpstream:
    """Plain SMTP on loopback (upstream_tls = "none", upstream_auth = "none"); counts messages."""

    def __init__(self, data_delay_first=0.4, greeting_delay_later=1.2):
        self.port = free_port()
        self.data_delay_first = data_delay_first
        self.greeting_delay_later = greeting_delay_later
        self.messages = 0
        self.sessions = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.sessions += 1
                first = self.sessions == 1
            threading.Thread(target=self._serve, args=(conn, first), daemon=True).start()

    def _serve(self, conn, first):
        with conn, conn.makefile("rb") as reader:
            if not first:
                time.sleep(self.greeting_delay_later)
            conn.sendall(b"220 scripted ESMTP\r\n")
            for line in reader:
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-scripted\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    for body_line in reader:
                        if body_line == b".\r\n":
                            break
                    if first:
                        time.sleep(self.data_delay_first)
                    with self.lock:
                        self.messages += 1
                    conn.sendall(b"250 2.0.0 OK\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 2.0.0 OK\r\n")

    def wait_for_messages(self, count, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.messages < count:
            time.sleep(0.02)
        return self.messages

    def close(self):
        self.listener.close()


def test_worker_connecting_after_the_queue_drained_waits_instead_of_crashing(relay, standin):
    upstream = ScriptedUpstream()
    try:
        relay.accounts["office"].update(upstream=f"127.0.0.1:{upstream.port}", upstream_tls="none",
                                        upstream_auth="none", max_connections=3)
        relay.start(import_token=False)  # upstream_auth = "none": no token to import
        data = f"From: {MAILBOX}\r\nTo: boss@example.com\r\nSubject: burst\r\n\r\nscan\r\n".encode()
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
            assert client.sendmail(MAILBOX, ["boss@example.com"], data) == {}
            time.sleep(0.15)  # the first session is connected and busy with message 1
            assert client.sendmail(MAILBOX, ["boss@example.com"], data) == {}
        assert upstream.wait_for_messages(2, timeout=10) == 2
        # The second worker connects only now, to an empty queue.
        time.sleep(upstream.greeting_delay_later + 0.5)
        assert upstream.sessions == 2
        assert relay.process.poll() is None, relay.log()
        assert relay.log_lines("failed") == []
        assert len(relay.log_lines("delivered")) == 2
    finally:
        upstream.close()
