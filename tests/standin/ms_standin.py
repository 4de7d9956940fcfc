#!/usr/bin/python3
"""Microsoft (Office 365) stand-in for the relay's end-to-end tests and README demo.

Runs, on loopback only, a Microsoft identity platform v2.0 token endpoint and an Exchange Online-like
SMTP submission server that REALLY checks the tokens the endpoint issued, so the relay is tested
against the rules of the real service (see /work/shared/PROVIDERS.md) without the Internet. On start
it prints one JSON "ready" line to stdout; it logs to stderr (never a whole token or secret) and
exits 0 on SIGTERM/SIGINT. Pieces: standin_tokens (identity platform), standin_http (token endpoint
and /_control), standin_userflows (authorize + PKCE, device code), standin_smtp (SMTP), standin_tls (test CA),
standin_control (switches, counters), standin_appauth (client credentials: JWT client assertions checked
against --client-cert).
Standard library only; Python 3.11 (StreamWriter.start_tls).
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time

from standin_control import ROTATIONS, Settings, Stats
from standin_graph import GraphStandIn
from standin_http import StandInHttpServer
from standin_smtp import SmtpStandIn, log
from standin_tls import ensure_tls_material, server_context
from standin_tokens import TokenAuthority
from standin_userflows import UserFlows


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--http-port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--smtp-port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--client-id", default="test-client-id")
    parser.add_argument("--client-secret", default="test-client-secret")
    parser.add_argument("--user", default="scanner@contoso.com")
    parser.add_argument("--refresh-token", default="initial-refresh-token")
    parser.add_argument("--token-lifetime", type=int, default=3600, help="seconds")
    parser.add_argument("--rotation", choices=ROTATIONS, default="keep")
    parser.add_argument("--flavor", choices=("microsoft", "google"), default="microsoft")
    parser.add_argument("--mail-dir", help="default: <state-dir>/mail")
    parser.add_argument("--smtp-tls", choices=("starttls", "implicit"), default="starttls")
    parser.add_argument("--tenant", default="organizations", help="tenant shown in token_url")
    parser.add_argument("--client-cert", help="PEM certificate registered on the app (JWT client assertions)")
    args = parser.parse_args(argv)
    if args.token_lifetime < 1:
        parser.error("--token-lifetime must be at least 1")
    return args


async def serve(args):
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    mail_dir = os.path.abspath(args.mail_dir or os.path.join(state_dir, "mail"))
    ca_file, cert_file, key_file = ensure_tls_material(state_dir)

    authority = TokenAuthority(os.path.join(state_dir, "tokens.json"), client_id=args.client_id,
                               client_secret=args.client_secret, flavor=args.flavor,
                               client_cert=args.client_cert)
    authority.add_refresh_token(args.refresh_token, args.user, replace=False)
    authority.user_flows = UserFlows(authority, args.user, time.time)
    settings = Settings(token_lifetime=args.token_lifetime, rotation=args.rotation)
    stats = Stats()

    smtp = SmtpStandIn(args.smtp_port, authority=authority, settings=settings, stats=stats,
                       flavor=args.flavor, tls_context=server_context(cert_file, key_file),
                       implicit_tls=args.smtp_tls == "implicit", mail_dir=mail_dir)
    await smtp.set_up(True)

    loop = asyncio.get_running_loop()

    def switch_smtp(up):  # runs in an HTTP thread; the listener belongs to the event loop
        asyncio.run_coroutine_threadsafe(smtp.set_up(up), loop).result(timeout=10)

    graph = GraphStandIn(authority, settings, stats, smtp.store)
    http = StandInHttpServer(args.http_port, authority=authority, settings=settings, stats=stats,
                             on_smtp_up=switch_smtp, graph=graph)
    http.serve_in_thread()
    http_port = http.server_address[1]
    token_path = "/token" if args.flavor == "google" else f"/{args.tenant}/oauth2/v2.0/token"

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    ready = {"ready": True, "http_port": http_port, "smtp_port": smtp.port, "ca_file": ca_file,
             "mail_dir": mail_dir, "token_url": f"http://127.0.0.1:{http_port}{token_path}",
             "graph_url": f"http://127.0.0.1:{http_port}"}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    log(f"ready: flavor={args.flavor} user={args.user} http={http_port} smtp={smtp.port}")

    await stop.wait()
    log("stopping")
    await smtp.set_up(False)
    await loop.run_in_executor(None, http.shutdown)
    http.server_close()


def main(argv=None):
    asyncio.run(serve(parse_args(argv if argv is not None else sys.argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
