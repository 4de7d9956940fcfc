"""What the stand-in's SMTP server refuses in a message at the end of data, as Exchange Online does.

The SendAs rule: the envelope sender and the From: header (Resent-From: of a resent message) must be
the mailbox or an address granted to it in the send_as switch, else 554 5.2.252 SendAsDenied.

Content rules of a strict server (issue 11), checked at the end of data so the relay's re-encoding is
what makes a message pass: a text line longer than 998 octets (RFC 5321 4.5.3.1.6) gets
LINE_TOO_LONG, and 8-bit octets in a transaction that did not declare BODY=8BITMIME (RFC 6152 3:
without it the body must be 7-bit; the stand-in advertises 8BITMIME, so a client has no excuse)
get UNDECLARED_8BIT. Both are 554 with an X.6.0 "media" code: permanent refusals of this content,
not of the sender or the session (RFC 5321 4.2.2 uses 554 for a failed transaction, RFC 3463 X.6.x
for content); a real strict server answers these with wording of its own.
"""
import email.utils
import re

LINE_TOO_LONG = "554 5.6.0 Message refused: a text line is longer than 998 characters (RFC 5321 4.5.3.1.6)"
EIGHT_BIT = re.compile(rb"[\x80-\xff]")
UNDECLARED_8BIT = "554 5.6.0 Message refused: 8-bit data without BODY=8BITMIME (RFC 6152)"


def header_senders(body):
    """The From: addresses Exchange checks (Resent-From of a resent message), [] when there is none."""
    header = body.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").replace("\r\n ", " ").replace("\r\n\t", " ")
    fields = {}
    for line in header.split("\r\n"):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in ("from", "resent-from"):
            fields.setdefault(name.strip().lower(), value)
    value = fields.get("resent-from", fields.get("from"))
    return [a for _, a in email.utils.getaddresses([value]) if a] if value else []


def send_as_denied(mailbox, sender):
    return (f"554 5.2.252 SendAsDenied; {mailbox} not allowed to send as {sender or '<>'}; "
            "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
            "Failed to process message due to a permanent exception with message Cannot submit message.")


def content_refusal(body, transfer, mail_params):
    """The content rules (module docstring) for a body sent with DATA or BDAT under MAIL FROM's
    parameters; None when the body passes."""
    if transfer != "DATA":
        return None  # BDAT is for BINARYMIME too (RFC 3030): no line or 8-bit rule
    if any(len(line.rstrip(b"\r")) > 998 for line in body.split(b"\n")):
        return LINE_TOO_LONG
    declared = [p.upper() for p in (mail_params or "").split()]
    if EIGHT_BIT.search(body) and not ({"BODY=8BITMIME", "BODY=BINARYMIME"} & set(declared)):
        return UNDECLARED_8BIT
    return None
