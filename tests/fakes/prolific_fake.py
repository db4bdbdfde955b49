#!/usr/bin/python3
"""A fake Prolific API server for tests (Python 3 standard library only).

Run: /usr/bin/python3 tests/fakes/prolific_fake.py --port 0 --port-file PATH [--token TOKEN]
The chosen port is written to PATH once the server listens.

Every request under /api/v1/ is checked against the shapes Prolific documents (method, path with its trailing
slash, `Authorization: Token <token>`, JSON content type, required fields, types, enum values). A request that
breaks a rule gets 400 with Prolific's error shape and is recorded as a violation; a well-formed request that the
current state does not allow (e.g. approving a submission that is not AWAITING REVIEW) gets 400 too but is recorded
as a refusal, not a violation. Control endpoints live under /_fake/ (no auth): see docs/prolific-wire.md.

This file holds the HTTP server (authentication, routing, fault injection, the record of calls) and the command
line; the rest sits beside it: prolific_fake_api.py (the /api/v1/ handlers and their routes), prolific_fake_control.py
(the /_fake/ endpoints), prolific_fake_rules.py (request shapes and validation helpers), prolific_fake_state.py (the
state).
"""

import argparse
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Started by path, this folder is sys.path[0] already; loaded any other way (e.g. by file path from a test), it is
# added so that the modules beside this file import by their plain names.
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from prolific_fake_api import COMPILED  # noqa: E402
from prolific_fake_control import fake_complete, fake_config, fake_set_status, fake_start_participant  # noqa: E402
from prolific_fake_rules import ApiError, violation  # noqa: E402
from prolific_fake_state import State  # noqa: E402


def encode(out):
    return None if out is None else json.dumps(out).encode()


def error_body(status, title, detail):
    return {"error": {"status": status, "error_code": 140000 + status, "title": title, "detail": detail}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    server_version = "ProlificFake/1.0"
    # Buffered writes: status line, headers and body leave in one segment (flushed after each request), so
    # Nagle's algorithm and delayed ACKs do not add 40 ms to every call.
    wbufsize = 1 << 16

    def log_message(self, *args):  # quiet: tests read /_fake/calls instead
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.conn_lock:
                self.server.connections.discard(self.connection)

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def send(self, status, body, headers=None):
        data = b"" if body is None else body if isinstance(body, bytes) else encode(body)
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def read_raw(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def dispatch(self):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query, keep_blank_values=True)
        raw = self.read_raw()
        if path.startswith("/_fake/"):
            return self.control(state, path, query, raw)
        return self.api(state, path, query, raw)

    def control(self, state, path, query, raw):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self.send(400, error_body(400, "Bad request", "Body is not JSON."))
        try:
            with state.lock:
                if path == "/_fake/config" and self.command == "POST":
                    status, out = fake_config(state, body)
                elif path == "/_fake/reset" and self.command == "POST":
                    state.reset()
                    status, out = 200, {}
                elif path == "/_fake/calls" and self.command == "GET":
                    since = int(query.get("since", ["0"])[-1])
                    status, out = 200, {"total": len(state.calls), "calls": state.calls[since:]}
                elif path == "/_fake/violations" and self.command == "GET":
                    status, out = 200, {"violations": state.violations}
                elif path == "/_fake/refusals" and self.command == "GET":
                    status, out = 200, {"refusals": state.refusals}
                elif path == "/_fake/state" and self.command == "GET":
                    status, out = 200, state.snapshot()
                elif path == "/_fake/stats" and self.command == "GET":
                    by = {}
                    for c in state.calls:
                        by[c["outcome"]] = by.get(c["outcome"], 0) + 1
                    status, out = 200, {"calls": len(state.calls), "by_outcome": by,
                                        "violations": len(state.violations), "payments": len(state.payments)}
                elif path == "/_fake/participants" and self.command == "POST":
                    status, out = fake_start_participant(state, body)
                elif (m := re.fullmatch(r"/_fake/submissions/([^/]+)/status", path)) and self.command == "POST":
                    status, out = fake_set_status(state, body, m.group(1))
                elif (m := re.fullmatch(r"/_fake/submissions/([^/]+)/complete", path)) and self.command == "POST":
                    status, out = fake_complete(state, body, m.group(1))
                else:
                    status, out = 404, error_body(404, "Not found", f"No control endpoint {self.command} {path}.")
                out = encode(out)  # under the lock: the answer may share dicts that other threads change
        except ApiError as e:
            status, out = e.status, error_body(e.status, e.title, e.detail)
        headers = {}
        if path == "/_fake/config" and status == 200 and state.config["down_mode"] == "refuse" \
                and state.down_until > time.time():
            # Stop listening before answering, so a caller never races a closing socket; this connection
            # closes after the answer.
            self.server.go_down(state.down_until, keep=self.connection)
            headers = {"Connection": "close"}
        self.send(status, out, headers)

    def api(self, state, path, query, raw):
        started = time.time()
        call = {"method": self.command, "path": path, "query": {k: v[-1] for k, v in query.items()},
                "body": None, "status": 0, "outcome": "", "time": started}
        try:
            call["body"] = json.loads(raw) if raw else None
        except ValueError:
            call["body"] = raw.decode("utf-8", "replace")
        with state.lock:
            cfg = state.config
            if state.down_until > started:  # down_mode 503 (the refuse mode closes the socket instead)
                status, out, headers, outcome = 503, error_body(503, "Service Unavailable", "Down."), {}, "down"
            elif state.rng.random() < cfg["throttle_share"]:
                status, out, outcome = 429, error_body(429, "Too Many Requests", "Request was throttled."), \
                    "throttled"
                headers = {"Retry-After": "1"}
            elif state.rng.random() < cfg["fail_share"]:
                status = state.rng.choice([500, 502, 503])
                out, headers, outcome = error_body(status, "Server error", "Simulated failure."), {}, "failed"
            else:
                headers = {}
                try:
                    status, out = self.handle_api(state, path, query, raw)
                    outcome = "ok"
                except ApiError as e:
                    status, out, outcome = e.status, error_body(e.status, e.title, e.detail), e.kind
                    if e.status == 401:
                        out = {"detail": e.detail}
                    record = {"method": self.command, "path": path, "status": e.status, "detail": e.detail,
                              "body": call["body"]}
                    (state.violations if e.kind in ("violation", "unauthorized") else state.refusals).append(record)
            call["status"], call["outcome"] = status, outcome
            state.calls.append(call)
            out = encode(out)
            delay = 0.0
            for rx, secs in cfg["slow_paths"].items():
                if re.search(rx, path) or re.search(rx, f"{self.command} {path}"):
                    delay = max(delay, secs)
            drop = any(re.search(rx, path) or re.search(rx, f"{self.command} {path}") for rx in cfg["drop_paths"])
        if delay:
            time.sleep(delay)  # the effect (if any) has already happened
        if drop:  # the effect (if any) has happened; the answer is lost with the connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send(status, out, headers)

    def handle_api(self, state, path, query, raw):
        auth = self.headers.get("Authorization", "")
        token = self.server.token
        if not auth.startswith("Token ") or not auth[6:].strip() or (token is not None and auth[6:] != token):
            raise ApiError(401, "Unauthorized", "Invalid token." if auth.startswith("Token ")
                           else "Authentication credentials were not provided (Authorization: Token <token>).",
                           "unauthorized")
        methods_here = []
        for meth, rx, fn, takes_body in COMPILED:
            m = rx.match(path)
            if not m:
                continue
            methods_here.append(meth)
            if meth != self.command:
                continue
            if takes_body is False and raw:
                raise violation(f"{meth} {path} takes no body.")
            body = None
            if raw:
                ctype = self.headers.get("Content-Type", "")
                if not ctype.split(";")[0].strip().lower() == "application/json":
                    raise violation(f"Content-Type must be application/json, got {ctype!r}.")
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise violation("The body is not valid JSON.")
            elif takes_body:
                raise violation(f"{meth} {path} needs a JSON body.")
            args = dict(m.groupdict(), query=query)
            return fn(state, body, args)
        # Calls the API does not have are violations too (a client bug), answered as Prolific would: 405 / 404.
        if methods_here:
            raise ApiError(405, "Method not allowed",
                           f"Method {self.command} not allowed on {path} (allowed: {methods_here}).")
        hint = " (Prolific paths end with a slash)" if not path.endswith("/") else ""
        raise ApiError(404, "Not found", f"No endpoint {self.command} {path}{hint}.")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, token):
        super().__init__(addr, Handler)
        self.state, self.token = state, token
        self.connections = set()
        self.conn_lock = threading.Lock()
        self.down_until = 0.0

    def go_down(self, until, keep):
        """Refuse connections until `until`: stop listening and drop every open connection but `keep` (the
        main loop listens again afterwards, on the same port). Called from a handler thread."""
        self.down_until = until
        self.shutdown()  # returns once serve_forever (in the main thread) has stopped
        self.socket.close()
        with self.conn_lock:
            for c in list(self.connections):
                if c is not keep:
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


def serve(port, port_file, token):
    state = State()
    host = "127.0.0.1"
    server = FakeServer((host, port), state, token)
    port = server.server_address[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)  # atomic: a reader never sees a half-written port
    while True:
        server.serve_forever(poll_interval=0.05)
        until = server.down_until
        while time.time() < until:
            time.sleep(0.02)
        for _ in range(200):  # the port may take a moment to be free again
            try:
                server = FakeServer((host, port), state, token)
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("prolific_fake: could not listen again on port %d" % port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--token", default=None, help="the only token accepted (default: any non-empty token)")
    args = ap.parse_args()
    try:
        serve(args.port, args.port_file, args.token)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
