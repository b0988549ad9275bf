"""A loopback TCP proxy that fault tests put between the DAG and MariaDB or sshd.

    with proxied(bed, names.MOODLE_CONN_ID) as proxy:       # the DAG's connection now goes through it
        proxy.cut_on(b"INSERT INTO `mdl_role_assignments`", after=True)
        run_cycle(...)

Modes, switched while a run goes on; each fault fires once, then the proxy forwards again,
so a task's retry (or the re-run) finds the component healthy:
- forward (the default);
- refuse_for(s): stop listening, as a stopped MariaDB does (ECONNREFUSED), then listen again;
- cut_on(*patterns, after=False): cut every open connection when one client's stream has shown
  the patterns in order. before: the packet completing them is dropped (the statement never
  ran). after: it is delivered and the answer held back, then the cut (the statement ran, the
  client never heard; MariaDB rolls the open transaction back when the connection dies). The
  MySQL protocol is plaintext on loopback without TLS, so statements are visible as bytes;
- cut_after(s): cut the next connection s seconds after it opens (an SSH session, say).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_CHUNK = 65536
_ANSWER_WAIT_S = 0.3  # time for the server to run a statement delivered in 'after' mode


class _Link:
    """One client connection and its server connection."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.client, self.server = client, server
        self.seen = 0  # how many of the cut patterns this client's stream has shown
        self.tail = b""  # the end of the last chunk, so a pattern split across chunks is found
        self.mute = False  # answers are dropped: the client must not hear
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class Proxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._patterns: tuple[bytes, ...] = ()
        self._after = False
        self._cut_after_s: float | None = None
        self._stopped = threading.Event()
        self.cuts = 0  # faults fired, for the test to check that its fault really happened
        self.refused_until = 0.0
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    # modes -------------------------------------------------------------------------
    def cut_on(self, *patterns: bytes, after: bool = False) -> None:
        with self._lock:
            self._patterns, self._after = patterns, after
            for link in self._links:
                link.seen, link.tail = 0, b""

    def cut_after(self, seconds: float) -> None:
        self._cut_after_s = seconds

    def refuse_for(self, seconds: float) -> None:
        """Stop listening for `seconds` (a connection attempt gets ECONNREFUSED), then listen again."""
        with self._lock:
            self.refused_until = time.monotonic() + seconds
            _stop_listening(self._listener)
        self.cuts += 1
        threading.Thread(target=self._listen_again_at_the_end, daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        _stop_listening(self._listener)
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    # machinery ---------------------------------------------------------------------
    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        return sock

    def _listen_again_at_the_end(self) -> None:
        time.sleep(max(0.0, self.refused_until - time.monotonic()))
        if self._stopped.is_set():
            return
        listener = self._listen(self.port)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: refusing, or the proxy is done
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            for upstream in (True, False):
                threading.Thread(target=self._pump, args=(link, upstream), daemon=True).start()
            if self._cut_after_s is not None:
                delay, self._cut_after_s = self._cut_after_s, None
                timer = threading.Timer(delay, self._cut, args=(link,))
                timer.daemon = True
                timer.start()

    def _pump(self, link: _Link, upstream: bool) -> None:
        """One direction of a link: client to server (watched for the cut patterns) or back."""
        src, dst = (link.client, link.server) if upstream else (link.server, link.client)
        while not link.closed.is_set():
            try:
                data = src.recv(_CHUNK)
            except OSError:
                break
            if not data:
                break
            if upstream and self._completes_patterns(link, data):
                if self._after:
                    link.mute = True
                    with contextlib.suppress(OSError):
                        link.server.sendall(data)
                    time.sleep(_ANSWER_WAIT_S)
                self._cut_all()
                return
            if link.mute:
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        self._drop(link)

    def _completes_patterns(self, link: _Link, data: bytes) -> bool:
        with self._lock:
            patterns = self._patterns
            if not patterns:
                return False
            window = link.tail + data
            while link.seen < len(patterns):
                at = window.find(patterns[link.seen])
                if at < 0:
                    break
                window = window[at + len(patterns[link.seen]) :]
                link.seen += 1
            keep = max(len(p) for p in patterns) - 1
            link.tail = window[-keep:] if keep else b""
            if link.seen < len(patterns):
                return False
            self._patterns = ()  # once
            return True

    def _cut(self, link: _Link) -> None:
        if not link.closed.is_set():
            self.cuts += 1
        self._drop(link)

    def _cut_all(self) -> None:
        self.cuts += 1
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def _drop(self, link: _Link) -> None:
        link.close()
        with self._lock:
            if link in self._links:
                self._links.remove(link)


def _stop_listening(sock: socket.socket) -> None:
    """close() alone leaves a socket listening while accept() blocks on it in another thread."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextmanager
def proxied(bed, *conn_ids: str) -> Iterator[dict[str, Proxy]]:
    """The DAG's connections `conn_ids` (moodle_db, wordpress_db, moodle_ssh) go through a proxy
    each, by their AIRFLOW_CONN_* variable, for the duration; yields {conn_id: proxy}."""
    proxies: dict[str, Proxy] = {}
    saved: dict[str, str | None] = {}
    connections = bed.airflow_connections()
    try:
        for conn_id in conn_ids:
            conn = connections[conn_id]
            proxy = proxies[conn_id] = Proxy(conn["host"], int(conn["port"]))
            key = f"AIRFLOW_CONN_{conn_id.upper()}"
            saved[key] = os.environ.get(key)
            os.environ[key] = json.dumps({**conn, "host": "127.0.0.1", "port": proxy.port})
        yield proxies
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for proxy in proxies.values():
            proxy.close()
