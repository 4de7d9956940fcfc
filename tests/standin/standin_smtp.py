"""The stand-in's SMTP submission server, behaving like Exchange Online (or Gmail) on port 587.

One asyncio task per connection. What it insists on, because the real service does: AUTH only after
STARTTLS (RFC 3207, RFC 4954 section 4), XOAUTH2 tokens that the stand-in's own token endpoint
issued for this user and that have not expired, a sender the mailbox may send as (Exchange's SendAs
rule: the mailbox or an address granted in the send_as switch; envelope and From: header both), at
most N concurrent authenticated sessions per mailbox. It implements PIPELINING (RFC 2920) by
reading command by command from one buffer, discards plaintext pipelined
after STARTTLS (RFC 3207 section 4.2, the CVE-2011-0411 injection), un-stuffs dots (RFC 5321
section 4.5.2) and only takes CRLF.CRLF as the end of data (no SMTP smuggling via bare LF), and
takes BDAT chunks (RFC 3030). Failure modes come from Settings at the moment they matter.

What a message itself may contain, and whom it may claim to be from, is checked at the end of data
by standin_message_rules.py.
"""
import asyncio
import email.utils
import re
import secrets
import sys
import time

from standin_mailstore import MailStore
from standin_message_rules import content_refusal, header_senders, send_as_denied
from standin_sasl import (decode_response, google_failure_challenge, parse_oauthbearer,
                          parse_xoauth2)

IDLE_TIMEOUT = 300
MAX_COMMAND_LINE = 16384      # AUTH initial responses carry whole tokens (RFC 4954 section 4: 12288+)
MAX_RECIPIENTS = 500          # Exchange Online: about 500 recipients per message
READ_LIMIT = 1 << 20
ADDRESS_ARG = re.compile(r"^(FROM|TO):\s*<([^<>]*)>((?:\s+\S+)*)\s*$", re.IGNORECASE)

FLAVORS = {
    "microsoft": {
        "host": "SN7PR04CA0042.outlook.office365.com",
        "mailbox_server": "MN2PR11MB4048.namprd11.prod.outlook.com",
        "size": 157286400,
        "extensions": ["PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "STARTTLS", "8BITMIME",
                       "BINARYMIME", "CHUNKING", "SMTPUTF8"],
        "auth": "AUTH LOGIN XOAUTH2",
        "auth_ok": "235 2.7.0 Authentication successful",
        "not_authenticated": "530 5.7.57 Client not authenticated to send mail. [{host}]",
    },
    "google": {
        "host": "smtp.gmail.com",
        "mailbox_server": "smtp.gmail.com",
        "size": 35882577,
        "extensions": ["8BITMIME", "STARTTLS", "ENHANCEDSTATUSCODES", "PIPELINING", "CHUNKING",
                       "SMTPUTF8"],
        "auth": "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
        "auth_ok": "235 2.7.0 Accepted",
        "not_authenticated": "530-5.7.0 Authentication Required. Learn more at\r\n"
                             "530 5.7.0  https://support.google.com/mail/?p=WantAuthError - gsmtp",
    },
}
GOOGLE_BAD_CREDENTIALS = ("535-5.7.8 Username and Password not accepted. Learn more at\r\n"
                          "535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp")
CONTINUOUS_ERRORS = ("550 5.2.251 Submission blocked: continuous errors from this mailbox "
                     "(stand-in model of Exchange's continuous-error throttling)")
CONCURRENCY_LIMIT = ("432 4.3.2 Concurrent connections limit exceeded. Visit "
                     "https://aka.ms/concurrent_sending for more information.")


def log(text):
    print(f"ms_standin: {text}", file=sys.stderr, flush=True)


class Disconnect(Exception):
    """End this session now (after QUIT, a fatal reply, or a dropped connection)."""


class SmtpStandIn:
    """The listener: can be closed and reopened on the same port through the control API."""

    def __init__(self, port, *, authority, settings, stats, flavor, tls_context, implicit_tls,
                 mail_dir):
        self.port, self.authority, self.settings, self.stats = port, authority, settings, stats
        self.flavor, self.text = flavor, FLAVORS[flavor]
        self.tls_context, self.implicit_tls = tls_context, implicit_tls
        self.store = MailStore(mail_dir)
        self._server = None
        self._writers = set()

    async def set_up(self, up):
        if up and self._server is None:
            self._server = await asyncio.start_server(
                self._session, "127.0.0.1", self.port, limit=READ_LIMIT, reuse_address=True,
                ssl=self.tls_context if self.implicit_tls else None)
            self.port = self._server.sockets[0].getsockname()[1]
            log(f"smtp listening on 127.0.0.1:{self.port}")
        elif not up and self._server is not None:
            self._server.close()
            self._server = None
            for writer in list(self._writers):  # an outage drops sessions mid-flight
                writer.transport.abort()
            log("smtp down: listener closed, sessions dropped")

    async def _session(self, reader, writer):
        self.stats.smtp_connection()
        self._writers.add(writer)
        session = Session(self, reader, writer)
        try:
            await session.run()
        except (Disconnect, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except Exception as err:  # a bug here must end one session, not the stand-in
            log(f"session error: {type(err).__name__}: {err}")
        finally:
            session.release()
            self._writers.discard(writer)
            writer.close()
            try:  # a graceful close lets the final reply (221, 421, 432) reach the client
                await asyncio.wait_for(writer.wait_closed(), 5)
            except (OSError, asyncio.TimeoutError):
                writer.transport.abort()


class Session:
    def __init__(self, server, reader, writer):
        self.server, self.text, self.reader, self.writer = server, server.text, reader, writer
        self.tls = server.implicit_tls
        self.helo = None
        self.auth_user = self.auth_mechanism = None
        self._counted_user = None
        self._reset_transaction()

    def _reset_transaction(self):
        self.mail_from, self.rcpt_to, self.mail_params = None, [], ""
        self.bdat_chunks = None  # list of chunks while a BDAT transfer is open

    def release(self):
        if self._counted_user is not None:
            self.server.stats.end_session(self._counted_user)
            self._counted_user = None

    async def reply(self, line):
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    async def read_line(self, limit=MAX_COMMAND_LINE):
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\n"), IDLE_TIMEOUT)
        except asyncio.TimeoutError:
            await self.reply("421 4.4.2 Connection dropped due to timeout")
            raise Disconnect()
        except asyncio.LimitOverrunError:
            await self.reply("500 5.5.6 Line too long")
            raise Disconnect()
        if len(line) > limit:
            await self.reply("500 5.5.6 Line too long")
            raise Disconnect()
        return line

    async def run(self):
        stamp = email.utils.formatdate(usegmt=False)
        if self.server.flavor == "google":
            await self.reply(f"220 smtp.gmail.com ESMTP {secrets.token_hex(6)} - gsmtp")
        else:
            await self.reply(f"220 {self.text['host']} Microsoft ESMTP MAIL Service ready at {stamp}")
        while True:
            raw = await self.read_line()
            command = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            verb, _, arg = command.partition(" ")
            handler = getattr(self, "cmd_" + verb.upper(), None) if verb.isalpha() else None
            if handler is None:
                await self.reply(f"500 5.3.3 Unrecognized command '{verb[:32]}'")
            else:
                await handler(arg.strip())

    # --- session commands -----------------------------------------------------------------

    async def cmd_EHLO(self, arg):
        if not arg:
            await self.reply("501 5.5.4 Invalid domain name")
            return
        self.helo = arg
        self._reset_transaction()
        greeting = (f"{self.text['host']} at your service, [127.0.0.1]"
                    if self.server.flavor == "google" else f"{self.text['host']} Hello [127.0.0.1]")
        lines = [greeting, f"SIZE {self.text['size']}"]
        for ext in self.text["extensions"]:
            if ext == "STARTTLS":
                auth = self.text["auth"]
                if self.server.settings.get("basic_auth_password") and "PLAIN" not in auth.split():
                    auth += " PLAIN"  # basic auth switched on: offer both basic mechanisms
                lines.append(auth if self.tls else "STARTTLS")
            else:
                lines.append(ext)
        await self.reply("\r\n".join(f"250-{l}" for l in lines[:-1]) + f"\r\n250 {lines[-1]}")

    async def cmd_HELO(self, arg):
        if not arg:
            await self.reply("501 5.5.4 Invalid domain name")
            return
        self.helo = arg
        self._reset_transaction()
        await self.reply(f"250 {self.text['host']} Hello [127.0.0.1]")

    async def cmd_STARTTLS(self, arg):
        if self.tls:
            await self.reply("503 5.5.1 TLS already active")  # RFC 3207 section 4
            return
        if arg:
            await self.reply("501 5.5.4 Syntax error (no parameters allowed)")
            return
        # RFC 3207 section 4.2: anything the client pipelined after STARTTLS arrived in plaintext
        # and must not be executed inside the TLS session. StreamReader offers no public "drop
        # what is buffered", hence the private attribute.
        leftover = len(self.reader._buffer)
        if leftover:
            del self.reader._buffer[:]
            self.server.stats.discarded_after_starttls(leftover)
            log(f"discarded {leftover} plaintext bytes pipelined after STARTTLS")
        self.writer.write(b"220 2.0.0 SMTP server ready\r\n")
        await self.writer.start_tls(self.server.tls_context)
        self.tls = True
        self.helo = None  # RFC 3207 section 4.2: the client starts again with EHLO
        self._reset_transaction()

    async def cmd_NOOP(self, arg):
        await self.reply("250 2.0.0 OK")

    async def cmd_RSET(self, arg):
        self._reset_transaction()
        await self.reply("250 2.0.0 Resetting")

    async def cmd_VRFY(self, arg):
        await self.reply("252 2.1.5 Cannot VRFY user, but will accept message for delivery")

    async def cmd_QUIT(self, arg):
        await self.reply("221 2.0.0 Service closing transmission channel")
        raise Disconnect()

    # --- authentication (RFC 4954) ------------------------------------------------------------

    async def cmd_AUTH(self, arg):
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        if self.helo is None:
            await self.reply("503 5.5.2 Send hello first")
        elif not self.tls:
            await self.reply("530 5.7.0 Must issue a STARTTLS command first"
                             if self.server.flavor == "google" else
                             "504 5.7.4 Unrecognized authentication type")
        elif self.auth_user is not None:
            await self.reply("503 5.5.2 Already authenticated")
        elif self.mail_from is not None:
            await self.reply("503 5.5.2 Not allowed during a mail transaction")
        elif self.server.settings.get("fail_auth_with"):
            self.server.stats.auth_attempt(mechanism, False)
            await self.reply(self.server.settings.get("fail_auth_with"))
        elif mechanism == "XOAUTH2":
            await self._auth_oauth(mechanism, initial.strip())
        elif mechanism == "OAUTHBEARER" and self.server.flavor == "google":
            await self._auth_oauth(mechanism, initial.strip())
        elif mechanism in ("LOGIN", "PLAIN") and self.server.settings.get("basic_auth_password"):
            await self._auth_basic(mechanism, initial.strip())
        elif mechanism in ("LOGIN", "PLAIN") and mechanism in self.text["auth"].split():
            self.server.stats.auth_attempt(mechanism, False)
            await self.reply(GOOGLE_BAD_CREDENTIALS if self.server.flavor == "google" else
                             "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.")
        else:
            await self.reply("504 5.7.4 Unrecognized authentication type")

    async def _client_response(self, initial):
        """The client's SASL response, from the AUTH line or after an empty 334 challenge."""
        if not initial:
            await self.reply("334 ")
            initial = (await self.read_line()).rstrip(b"\r\n").decode("ascii", "replace")
            if initial == "*":
                await self.reply("501 5.0.0 Authentication cancelled")  # RFC 4954 section 4
                return None
        raw = decode_response(initial)
        if raw is None:
            await self.reply("501 5.5.2 Cannot decode response")
        return raw

    async def _auth_oauth(self, mechanism, initial):
        raw = await self._client_response(initial)
        if raw is None:
            self.server.stats.auth_attempt(mechanism, False)
            return
        try:
            if mechanism == "XOAUTH2":
                user, token = parse_xoauth2(raw)
            else:
                user, token, _ = parse_oauthbearer(raw)
            reason = self.server.authority.check_bearer(user, token, self.server.settings.get("app_mailboxes"))
        except ValueError as err:
            user, reason = None, f"malformed {mechanism} response ({err})"
        if reason is not None:
            self.server.stats.auth_attempt(mechanism, False)
            log(f"auth {mechanism} failed for {user!r}: {reason}")
            await self._auth_failed(mechanism)
            return
        await self._auth_succeeded(mechanism, user)

    async def _auth_basic(self, mechanism, initial):
        """AUTH PLAIN (RFC 4616) or LOGIN with the password set by basic_auth_password."""
        if mechanism == "PLAIN":
            raw = await self._client_response(initial)
            if raw is None:  # already answered (cancelled or undecodable)
                self.server.stats.auth_attempt(mechanism, False)
                return
            parts = raw.split(b"\0")
            user, password = (parts[1], parts[2]) if len(parts) == 3 else (b"", None)
        else:
            await self.reply("334 VXNlcm5hbWU6")  # "Username:"
            user = decode_response((await self.read_line()).rstrip(b"\r\n").decode("ascii", "replace"))
            await self.reply("334 UGFzc3dvcmQ6")  # "Password:"
            password = decode_response((await self.read_line()).rstrip(b"\r\n").decode("ascii", "replace"))
        expected = self.server.settings.get("basic_auth_password").encode()
        user = (user or b"").decode("utf-8", "replace")
        if not user or password is None or not secrets.compare_digest(password, expected):
            self.server.stats.auth_attempt(mechanism, False)
            log(f"auth {mechanism} failed for {user!r}: wrong password")
            await self.reply("535 5.7.3 Authentication unsuccessful")
            return
        await self._auth_succeeded(mechanism, user)

    async def _auth_succeeded(self, mechanism, user):
        """Credentials checked (token or password): the session counts against max_sessions_per_user,
        Exchange's concurrency limit, before the 235."""
        if not self.server.stats.try_begin_session(user, self.server.settings.get("max_sessions_per_user")):
            self.server.stats.auth_attempt(mechanism, False)
            log(f"auth {mechanism} refused for {user!r}: concurrent session limit")
            await self.reply(CONCURRENCY_LIMIT)
            raise Disconnect()
        self._counted_user = user
        self.auth_user, self.auth_mechanism = user, mechanism
        self.server.stats.auth_attempt(mechanism, True)
        log(f"auth {mechanism} ok for {user!r}")
        await self.reply(self.text["auth_ok"])

    async def _auth_failed(self, mechanism):
        if self.server.flavor != "google":
            await self.reply("535 5.7.3 Authentication unsuccessful")
            return
        # Google (and RFC 7628 section 3.2.2): error details in a 334 challenge, the client answers
        # (empty line for XOAUTH2, ^A for OAUTHBEARER), then the final failure.
        status = "401" if mechanism == "XOAUTH2" else "invalid_token"
        await self.reply("334 " + google_failure_challenge(status))
        await self.read_line()
        await self.reply(GOOGLE_BAD_CREDENTIALS)

    # --- mail transaction (RFC 5321 section 3.3) ------------------------------------------------

    async def cmd_MAIL(self, arg):
        match = ADDRESS_ARG.match(arg)
        if self.helo is None:
            await self.reply("503 5.5.2 Send hello first")
        elif self.auth_user is None:
            await self.reply(self.text["not_authenticated"].format(host=self.text["host"]))
        elif self.mail_from is not None:
            await self.reply("503 5.5.2 Sender already specified")
        elif not match or match.group(1).upper() != "FROM":
            await self.reply("501 5.5.4 Invalid arguments")
        elif self._declared_size(match.group(3)) > self.text["size"]:
            await self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
        elif self._throttled():
            await self.reply(CONTINUOUS_ERRORS)
        elif (self.server.flavor == "microsoft" and self.server.settings.get("send_as_check") == "mail_from"
              and not self.server.settings.may_send_as(self.auth_user, match.group(2))):
            self.server.stats.send_as_denied(self.auth_user)
            await self.reply("550 5.7.60 SMTP; Client does not have permissions to send as this sender")
        else:
            self.mail_from, self.mail_params = match.group(2), match.group(3).strip()
            await self.reply("250 2.1.0 Sender OK")

    def _throttled(self):
        limit = self.server.settings.get("send_as_throttle_after")
        return bool(limit) and self.server.stats.send_as_denials(self.auth_user) >= limit

    @staticmethod
    def _declared_size(params):
        for param in params.split():
            key, _, value = param.partition("=")
            if key.upper() == "SIZE" and value.isdigit():
                return int(value)  # RFC 1870 section 6
        return 0

    async def cmd_RCPT(self, arg):
        match = ADDRESS_ARG.match(arg)
        if self.mail_from is None:
            await self.reply("503 5.5.2 Need mail command")
        elif not match or match.group(1).upper() != "TO" or not match.group(2):
            await self.reply("501 5.5.4 Invalid arguments")
        elif len(self.rcpt_to) >= MAX_RECIPIENTS:
            await self.reply("452 4.5.3 Too many recipients")
        elif match.group(2).lower() in self.server.settings.get("reject_rcpt"):
            await self.reply(self.server.settings.get("reject_rcpt")[match.group(2).lower()])
        else:
            self.rcpt_to.append(match.group(2))
            await self.reply("250 2.1.5 Recipient OK")

    async def cmd_DATA(self, arg):
        if self.mail_from is None or not self.rcpt_to or self.bdat_chunks is not None:
            await self.reply("503 5.5.2 Need rcpt command")
            return
        await self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
        body, size, previous_ended_crlf = bytearray(), 0, True
        while True:
            line = await self.read_line(limit=READ_LIMIT)
            if line == b".\r\n" and previous_ended_crlf:
                break
            if line.startswith(b".") and previous_ended_crlf:
                line = line[1:]  # RFC 5321 section 4.5.2 transparency
            size += len(line)
            if size <= self.text["size"]:
                body += line
            previous_ended_crlf = line.endswith(b"\r\n")
        if size > self.text["size"]:  # answered once, at the end (RFC 5321 section 4.5.3.1.10)
            self._reset_transaction()
            await self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
            return
        await self._finish(bytes(body), "DATA")

    async def cmd_BDAT(self, arg):
        parts = arg.split()
        if not parts or not parts[0].isdigit() or len(parts) > 2 or (
                len(parts) == 2 and parts[1].upper() != "LAST"):
            await self.reply("501 5.5.4 Invalid arguments")
            raise Disconnect()  # RFC 3030 section 2: cannot know where the chunk ends
        chunk = await self.reader.readexactly(int(parts[0]))  # read it even if refused (RFC 3030)
        if self.mail_from is None or not self.rcpt_to:
            await self.reply("503 5.5.2 Need rcpt command")
            return
        self.bdat_chunks = (self.bdat_chunks or []) + [chunk]
        if len(parts) == 2:
            await self._finish(b"".join(self.bdat_chunks), "BDAT")
        else:
            await self.reply(f"250 2.0.0 BDAT {len(chunk)} octets received")

    async def _finish(self, body, transfer):
        settings = self.server.settings
        fail_with = settings.get("fail_mail_with")
        refusal = content_refusal(body, transfer, self.mail_params)
        refused = [s for s in [self.mail_from] + header_senders(body)
                   if self.server.flavor == "microsoft" and not settings.may_send_as(self.auth_user, s)]
        if fail_with:
            reply = fail_with
        elif refusal:
            reply = refusal
            log(f"refused a message: {refusal}")
        elif refused:
            self.server.stats.send_as_denied(self.auth_user)
            reply = send_as_denied(self.auth_user, refused[0])
            log(f"SendAsDenied for {self.auth_user!r}: {refused[0]!r}")
        elif settings.next_message_is_throttled():
            reply = "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
        else:
            message_id = secrets.token_hex(16).upper()
            envelope = {"mail_from": self.mail_from, "rcpt_to": self.rcpt_to,
                        "auth_user": self.auth_user, "auth_mechanism": self.auth_mechanism,
                        "tls": self.tls, "size": len(body), "received_at": time.time(),
                        "helo": self.helo, "mail_params": self.mail_params, "transfer": transfer}
            seq = self.server.store.store(message_id, body, envelope)
            host = self.text["mailbox_server"]
            reply = f"250 2.0.0 OK <{message_id}@{host}> [Hostname={host}]"
            log(f"accepted message {seq} ({len(body)} bytes, {len(self.rcpt_to)} recipients)")
        self.server.stats.message(reply.startswith("250"))
        self._reset_transaction()
        await self.reply(reply)
