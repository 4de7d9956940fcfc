"""Where the stand-in puts the messages it accepted, and how tests read them back.

Each message is `<seq>-<id>.eml` (the exact bytes after dot-unstuffing, CRLF kept, without the
terminating ".\r\n") plus `<seq>-<id>.json` (the envelope). Both are written to a temp name and renamed;
the .json goes last, so whoever sees a .json can read a complete .eml. Sequence numbers continue
after the highest one already in the directory, so a restarted stand-in never overwrites mail.
"""
import json
import os
import re
import threading

NAME = re.compile(r"^(\d+)-([0-9A-Za-z]+)\.json$")


def _write_atomically(path, data):
    temp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(temp, "wb") as f:
        f.write(data)
    os.replace(temp, path)


class MailStore:
    def __init__(self, mail_dir):
        self.mail_dir = mail_dir
        os.makedirs(mail_dir, exist_ok=True)
        seqs = [int(m.group(1)) for m in map(NAME.match, os.listdir(mail_dir)) if m]
        self._next_seq = max(seqs, default=0) + 1
        self._lock = threading.Lock()  # SMTP (asyncio thread) and Graph (HTTP threads) share one store

    def store(self, message_id, body, envelope):
        """Write one accepted message; returns its sequence number."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
        stem = os.path.join(self.mail_dir, f"{seq:06d}-{message_id}")
        _write_atomically(stem + ".eml", body)
        _write_atomically(stem + ".json", json.dumps(dict(envelope, seq=seq, id=message_id),
                                                     indent=1).encode())
        return seq


def read_messages(mail_dir):
    """All complete messages as (envelope dict, body bytes), in the order they were accepted."""
    found = []
    for name in os.listdir(mail_dir) if os.path.isdir(mail_dir) else []:
        match = NAME.match(name)
        if match:
            found.append((int(match.group(1)), name))
    messages = []
    for _, name in sorted(found):
        with open(os.path.join(mail_dir, name), encoding="utf-8") as f:
            envelope = json.load(f)
        with open(os.path.join(mail_dir, name[:-len(".json")] + ".eml"), "rb") as f:
            messages.append((envelope, f.read()))
    return messages
