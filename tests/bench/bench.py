"""The benchmark driver behind tests/bench/run: starts bench-sink (SMTP + token endpoint), the relay
and bench-load in the combinations the issue asks for, and prints one table:

1. limit: bench-load -> bench-sink directly;
2. relay queue mode (fsync on, as shipped): durable intake (250s seen by bench-load) and end-to-end
   delivery (messages counted by the sink), each as a ratio to (1);
3. relay direct mode (account delivery = "direct", when this build knows the key): throughput and the
   p50/p99 latency it adds over (1);
4. relay memory: RSS idle, with 1,000 idle clients, and the peak growth while relaying a 35 MB message;
5. token requests while 100 deliveries run in parallel across one access-token expiry;
6. p99 of the end-of-data 250 during a password-guessing flood and during a hanging token
   endpoint, each against the same figure at rest in the same run (issue 13).

Everything runs on loopback without TLS (upstream_tls = "none"); the relay's spool is on the disk
under build-bench/, so its fsyncs are real. Figures vary with the load other processes put on the
machine: read ratios within one run, not absolute numbers across runs.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from bench_processes import Relay, Sink, load, status_kib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MATRIX = [(10 * 1024, 1), (10 * 1024, 20), (1024 * 1024, 1), (1024 * 1024, 20)]


def size_label(size):
    return f"{size // 1024} KB" if size < 1024 * 1024 else f"{size // (1024 * 1024)} MB"


def measure_limit(build, sink, duration):
    rows = {}
    for size, clients in MATRIX:
        sink.reset()
        rows[(size, clients)] = load(build, sink.smtp_port, clients, size, duration=duration)
    return rows


def measure_relay(build, workdir, sink, duration, direct):
    relay = Relay(build, workdir, sink, direct=direct)
    if not relay.import_token() or not relay.start():
        return None
    rows = {}
    try:
        for size, clients in MATRIX:
            sink.reset()
            intake = load(build, relay.port, clients, size, duration=duration)
            stats = sink.wait_for_messages(intake["sent"], timeout=120)
            delivered = stats["messages"]
            span = (stats["last_message_ns"] - intake["start_ns"]) / 1e9 if delivered else 0
            rows[(size, clients)] = {"intake": intake, "delivered": delivered,
                                     "delivery_msgs_per_s": delivered / span if span > 0 else 0.0}
    finally:
        relay.stop()
    return rows


def measure_tls(build, workdir, duration):
    """Queue mode, 20 clients x 10 KB, with verified STARTTLS to the sink (a certificate made here)."""
    cert, key = os.path.join(workdir, "sink-cert.pem"), os.path.join(workdir, "sink-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    sink = Sink(build, workdir, tls=(cert, key))
    relay = Relay(build, os.path.join(workdir, "relay-tls"), sink)
    try:
        relay.import_token()
        relay.start()
        sink.reset()
        intake = load(build, relay.port, 20, 10 * 1024, duration=duration)
        stats = sink.wait_for_messages(intake["sent"], timeout=120)
        span = (stats["last_message_ns"] - intake["start_ns"]) / 1e9 if stats["messages"] else 0
        return {"intake": intake, "delivered": stats["messages"],
                "delivery_msgs_per_s": stats["messages"] / span if span > 0 else 0.0}
    finally:
        relay.stop()
        sink.stop()


def measure_memory(build, workdir, sink, idle_clients):
    relay = Relay(build, workdir, sink)
    relay.import_token()
    relay.start()
    pid = relay.pid()
    result = {}
    try:
        time.sleep(0.5)
        result["idle_rss_kib"] = status_kib(pid, "VmRSS")
        # Warm up the whole path (intake, delivery, token) so the 35 MB figure is about the message.
        sink.reset()
        load(build, relay.port, 1, 10 * 1024, messages=5)
        sink.wait_for_messages(5, timeout=30)
        before_hwm = status_kib(pid, "VmHWM")
        before_rss = status_kib(pid, "VmRSS")
        sink.reset()
        big = load(build, relay.port, 1, 35 * 1000 * 1000, messages=1)
        stats = sink.wait_for_messages(1, timeout=120)
        result["big_message"] = {"sent": big["sent"], "delivered": stats["messages"], "bytes": stats["bytes"]}
        result["hwm_before_kib"] = before_hwm
        result["rss_before_kib"] = before_rss
        result["hwm_after_kib"] = status_kib(pid, "VmHWM")
        result["big_growth_kib"] = result["hwm_after_kib"] - before_hwm
        time.sleep(0.3)
        idle = subprocess.Popen([os.path.join(build, "tests/bench/bench-load"), "--port", str(relay.port),
                                 "--idle", str(idle_clients)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = idle.stdout.readline().strip()
        time.sleep(0.5)
        result["idle_clients"] = ready
        result["clients_rss_kib"] = status_kib(pid, "VmRSS")
        idle.stdin.close()
        idle.wait(timeout=30)
        # The same number of clients that each sent one message and stay connected (printers).
        sink.reset()
        idle = subprocess.Popen([os.path.join(build, "tests/bench/bench-load"), "--port", str(relay.port),
                                 "--idle", str(idle_clients), "--idle-send", "--size", "10240"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        result["idle_after_message_clients"] = idle.stdout.readline().strip()
        sink.wait_for_messages(idle_clients, timeout=60)
        time.sleep(0.5)
        result["after_message_rss_kib"] = status_kib(pid, "VmRSS")
        idle.stdin.close()
        idle.wait(timeout=30)
    finally:
        relay.stop()
    return result


def measure_token_refresh(build, workdir, lifetime=10, parallel=100, messages=1500):
    """One expiry inside the run: refresh is due at lifetime - min(600 s, lifetime/5) after import."""
    sink = Sink(build, workdir, token_lifetime=lifetime, data_delay_ms=200)
    relay = Relay(build, os.path.join(workdir, "relay-token"), sink, max_connections=parallel)
    try:
        relay.import_token()
        imported = time.monotonic()
        relay.start()
        sink.reset()
        refresh_due = imported + lifetime - min(600, lifetime / 5)
        # Start just before the refresh is due so that it happens with every session busy.
        time.sleep(max(0.0, refresh_due - 1.5 - time.monotonic()))
        intake = load(build, relay.port, parallel, 10 * 1024, messages=messages)
        stats = sink.wait_for_messages(intake["sent"], timeout=120)
        crossed = time.monotonic() > refresh_due
        return {"token_requests": stats["token_requests"], "peak_parallel_deliveries": stats["peak_in_data"],
                "peak_upstream_sessions": stats["peak_sessions"], "distinct_tokens_used": stats["distinct_tokens_used"],
                "auth_rejected_expired": stats["auth_rejected_expired"], "delivered": stats["messages"],
                "sent": intake["sent"], "expiries_crossed": 1 if crossed else 0, "token_lifetime_s": lifetime}
    finally:
        relay.stop()
        sink.stop()


# ---- issue 13, item 2: the end-of-data 250 while hashing or HTTP is busy ----------------------------

def hang_forever_listener():
    """A token endpoint that accepts connections (the kernel's backlog does) and never answers."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def flood_passwords(port, user, stop, sources=50, per_source=4):
    """Password guessing from `sources` loopback addresses, `per_source` sessions each, every guess
    new (each one costs a KDF run); returns the threads and a counter of replies by code."""
    import socket
    import threading
    import base64
    counts = {}
    lock = threading.Lock()

    def guesser(source, n):
        try:
            s = socket.socket()
            s.bind((source, 0))
            s.settimeout(30)
            s.connect(("127.0.0.1", port))
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if not line or line[3:4] != b"-":
                        return line[:3].decode(errors="replace")

            reply()
            s.sendall(b"EHLO flood.bench\r\n")
            reply()
            i = 0
            while not stop.is_set():
                token = base64.b64encode(f"\0{user}\0guess-{source}-{n}-{i}".encode())
                s.sendall(b"AUTH PLAIN " + token + b"\r\n")
                code = reply()
                with lock:
                    counts[code] = counts.get(code, 0) + 1
                if not code:
                    return
                i += 1
            s.close()
        except OSError:
            pass

    threads = [threading.Thread(target=guesser, args=(f"127.0.1.{1 + a}", n), daemon=True)
               for a in range(sources) for n in range(per_source)]
    for t in threads:
        t.start()
    return threads, counts


def measure_security(build, workdir, duration):
    """p99 of MAIL..end-of-data 250 at rest, during a password-guessing flood (200 sessions from 50
    addresses, every guess a new password hashed with PBKDF2, lockout out of the way) and during a
    hanging token endpoint (4 accounts whose refresh never returns), each in the same relay."""
    import threading
    os.makedirs(workdir, exist_ok=True)
    sink = Sink(build, workdir)
    hang = hang_forever_listener()
    relay = Relay(build, os.path.join(workdir, "relay-security"), sink)
    try:
        hashed = subprocess.run([relay.binary, "hash-password"], input="flood-target-pw\n", capture_output=True,
                                text=True, timeout=60).stdout.strip()
        hang_url = f"http://127.0.0.1:{hang.getsockname()[1]}/token"
        with open(relay.config) as f:
            text = f.read()
        text = text.replace("[relay]\n", "[relay]\nauth_max_failures = 1000\nauth_failure_delay = \"0s\"\n"
                            "max_clients_per_ip = 1024\n", 1)
        text = text.replace("[[users]]\n", f'[[users]]\nname = "target"\npassword_hash = "{hashed}"\n'
                            'account = "bench"\n\n[[users]]\n', 1)
        for i in range(4):
            text += (f'\n[accounts.hang{i}]\nprovider = "microsoft"\ntenant = "bench"\nclient_id = "bench-client"\n'
                     f'client_secret = "bench-secret"\nemail = "hang{i}@example.com"\ntoken_url = "{hang_url}"\n'
                     f'upstream = "127.0.0.1:{sink.smtp_port}"\nupstream_tls = "none"\nrate_per_minute = 0\n')
        with open(relay.config, "w") as f:
            f.write(text)
        relay.import_token()
        os.makedirs(os.path.join(relay.dir, "state", "tokens"), mode=0o700, exist_ok=True)
        for i in range(4):   # a refresh token and no access token: the first delivery refreshes
            path = os.path.join(relay.dir, "state", "tokens", f"hang{i}.json")
            with open(path, "w") as f:
                json.dump({"refresh_token": "rt", "access_token": "", "access_expires_at": 0,
                           "access_obtained_at": 0, "last_refresh": int(time.time())}, f)
            os.chmod(path, 0o600)
        relay.start()
        sink.reset()
        at_rest = load(build, relay.port, 4, 10 * 1024, duration=duration)
        stop = threading.Event()
        threads, counts = flood_passwords(relay.port, "target", stop)
        time.sleep(1.0)
        flood = load(build, relay.port, 4, 10 * 1024, duration=duration)
        stop.set()
        for t in threads:
            t.join(30)
        # Four accounts' deliveries each start a token refresh that never returns.
        for i in range(4):
            subprocess.run(["swaks", "--server", f"127.0.0.1:{relay.port}", "--from", f"hang{i}@example.com",
                            "--to", "x@example.com", "--silent", "2"], capture_output=True, timeout=60)
        time.sleep(1.0)
        hanging = load(build, relay.port, 4, 10 * 1024, duration=duration)
        return {"at_rest": at_rest, "password_flood": flood, "flood_replies": counts,
                "hanging_token_endpoint": hanging}
    finally:
        relay.stop()
        sink.stop()
        hang.close()


def pct(a, b):
    return f"{100.0 * a / b:5.1f}%" if b else "   n/a"


def print_table(results):
    out = []
    out.append("Benchmark: loopback; main matrix without TLS (upstream_tls = \"none\"), no SMTP AUTH from the clients, "
               "spool on disk with fsync (as shipped)")
    out.append(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    out.append("")
    out.append(f"{'size':>6} {'clients':>7} | {'limit msg/s':>11} {'p50 ms':>7} {'p99 ms':>7} | "
               f"{'queue intake':>12} {'ratio':>6} {'delivered':>9} {'ratio':>6} | "
               f"{'direct msg/s':>12} {'ratio':>6} {'+p50 ms':>7} {'+p99 ms':>7}")
    for size, clients in MATRIX:
        key = f"{size}x{clients}"
        lim = results["limit"][key]
        q = results["queue"][key]
        d = results["direct"].get(key) if results["direct"] else None
        line = (f"{size_label(size):>6} {clients:>7} | {lim['msgs_per_s']:>11.1f} {lim['p50_ms']:>7.3f} "
                f"{lim['p99_ms']:>7.3f} | {q['intake']['msgs_per_s']:>12.1f} "
                f"{pct(q['intake']['msgs_per_s'], lim['msgs_per_s']):>6} {q['delivery_msgs_per_s']:>9.1f} "
                f"{pct(q['delivery_msgs_per_s'], lim['msgs_per_s']):>6} | ")
        if d:
            line += (f"{d['intake']['msgs_per_s']:>12.1f} {pct(d['intake']['msgs_per_s'], lim['msgs_per_s']):>6} "
                     f"{d['intake']['p50_ms'] - lim['p50_ms']:>7.3f} {d['intake']['p99_ms'] - lim['p99_ms']:>7.3f}")
        else:
            line += "n/a (not supported by this build)"
        out.append(line)
    t = results.get("tls")
    if t:
        lim = results["limit"][f"{10 * 1024}x20"]
        out.append(f"{'10 KB':>6} {20:>7} | queue mode with verified STARTTLS to the sink: intake "
                   f"{t['intake']['msgs_per_s']:.1f} msgs/s ({pct(t['intake']['msgs_per_s'], lim['msgs_per_s']).strip()}), "
                   f"delivered {t['delivery_msgs_per_s']:.1f} msgs/s")
    out.append("")
    m = results["memory"]
    out.append(f"memory: idle RSS {m['idle_rss_kib'] / 1024:.1f} MiB; with {m['idle_clients']}: "
               f"RSS {m['clients_rss_kib'] / 1024:.1f} MiB; the same after one message each "
               f"({m['idle_after_message_clients']}): RSS {m['after_message_rss_kib'] / 1024:.1f} MiB")
    out.append(f"memory: 35 MB message: peak RSS growth "
               f"{m['big_growth_kib'] / 1024:.2f} MiB (VmHWM {m['hwm_before_kib']} -> {m['hwm_after_kib']} KiB, "
               f"delivered {m['big_message']['delivered']}, {m['big_message']['bytes']} bytes)")
    sec = results.get("security")
    if sec:
        rest = sec["at_rest"]["p99_ms"]
        for label, key in (("password-guessing flood", "password_flood"), ("hanging token endpoint", "hanging_token_endpoint")):
            p99 = sec[key]["p99_ms"]
            out.append(f"end-of-data 250 p99 during a {label}: {p99:.1f} ms vs {rest:.1f} ms at rest "
                       f"(ratio {p99 / rest if rest else float('nan'):.2f}; {sec[key]['msgs_per_s']:.1f} vs "
                       f"{sec['at_rest']['msgs_per_s']:.1f} msgs/s)")
    t = results["token"]
    out.append(f"token refresh: {t['token_requests']} token request(s) across {t['expiries_crossed']} expiry "
               f"(lifetime {t['token_lifetime_s']} s) with up to {t['peak_parallel_deliveries']} deliveries in "
               f"parallel on {t['peak_upstream_sessions']} upstream sessions; {t['distinct_tokens_used']} distinct "
               f"tokens used, {t['auth_rejected_expired']} AUTH refused as expired, "
               f"{t['delivered']}/{t['sent']} delivered")
    print("\n".join(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build-bench")
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "bench", "results.json"))
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per matrix cell")
    parser.add_argument("--idle-clients", type=int, default=1000)
    parser.add_argument("--only", choices=["matrix", "memory", "token", "security"], help="run one part (for profiling)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    workdir = os.path.join(build, "bench-run")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)

    results = {"limit": {}, "queue": {}, "direct": {}, "tls": None, "memory": None, "token": None, "security": None}
    sink = Sink(build, workdir)
    try:
        if args.only in (None, "matrix"):
            print("measuring: limit ...", file=sys.stderr, flush=True)
            for k, v in measure_limit(build, sink, args.duration).items():
                results["limit"][f"{k[0]}x{k[1]}"] = v
            print("measuring: relay, queue mode ...", file=sys.stderr, flush=True)
            for k, v in measure_relay(build, os.path.join(workdir, "relay-queue"), sink, args.duration, False).items():
                results["queue"][f"{k[0]}x{k[1]}"] = v
            print("measuring: relay, direct mode ...", file=sys.stderr, flush=True)
            direct = measure_relay(build, os.path.join(workdir, "relay-direct"), sink, args.duration, True)
            results["direct"] = {f"{k[0]}x{k[1]}": v for k, v in direct.items()} if direct else None
            print("measuring: relay, queue mode with STARTTLS upstream ...", file=sys.stderr, flush=True)
            results["tls"] = measure_tls(build, workdir, args.duration)
        if args.only in (None, "memory"):
            print("measuring: memory ...", file=sys.stderr, flush=True)
            results["memory"] = measure_memory(build, os.path.join(workdir, "relay-memory"), sink, args.idle_clients)
    finally:
        sink.stop()
    if args.only in (None, "token"):
        print("measuring: token refresh ...", file=sys.stderr, flush=True)
        results["token"] = measure_token_refresh(build, workdir)
    if args.only in (None, "security"):
        print("measuring: end-of-data 250 during a password flood and a hanging token endpoint ...",
              file=sys.stderr, flush=True)
        results["security"] = measure_security(build, os.path.join(workdir, "security"), args.duration)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    if args.only is None:
        print_table(results)
    else:
        print(json.dumps(results, indent=2))
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
