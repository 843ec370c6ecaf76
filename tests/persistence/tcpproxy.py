"""A loopback TCP proxy in front of PostgreSQL that can fail like a network or a server does.

- `outage()`: drop every connection and refuse new ones (a server restart / network cut) until
  `restore()`.
- `lose_next_commit_reply()`: let the next COMMIT reach the server, wait until the server says it
  committed, then cut the connection before the client hears it: a commit whose outcome the
  client cannot know. `commit_lost` is set once that happened.

Only for unencrypted connections (the URL must say sslmode=disable).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

# Frontend simple-query message 'Q' carrying "COMMIT" and the backend's CommandComplete for it.
_COMMIT_QUERY = b"Q\x00\x00\x00\x0bCOMMIT\x00"
_COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"


class _Pair:
    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.losing_reply = False
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            for sock in (self.client, self.server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


class FaultyProxy:
    """Forwards 127.0.0.1:<port> to `target`; see the module docstring."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.commit_lost = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._threads: list[threading.Thread] = []
        self._losing_next_commit = False
        self._listener: socket.socket | None = None
        self.port = self._listen(0)

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def outage(self) -> None:
        """Refuse new connections and cut every open one."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        for pair in pairs:
            pair.close()

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._listen(self.port)

    def lose_next_commit_reply(self) -> None:
        with self._lock:
            self._losing_next_commit = True
            self.commit_lost.clear()

    def close(self) -> None:
        self.outage()
        for thread in self._threads:
            thread.join(timeout=10)

    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        self._start(self._accept, listener)
        bound: int = listener.getsockname()[1]
        return bound

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by outage()
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self._lock:
                if self._listener is not listener:  # an outage began meanwhile
                    pair.close()
                    return
                self._pairs.append(pair)
            self._start(self._client_to_server, pair)
            self._start(self._server_to_client, pair)

    def _client_to_server(self, pair: _Pair) -> None:
        try:
            while data := pair.client.recv(65536):
                if _COMMIT_QUERY in data:
                    with self._lock:
                        if self._losing_next_commit:
                            self._losing_next_commit = False
                            pair.losing_reply = True  # before the server can possibly answer
                pair.server.sendall(data)
        except OSError:
            pass
        pair.close()

    def _server_to_client(self, pair: _Pair) -> None:
        try:
            while data := pair.server.recv(65536):
                if pair.losing_reply:
                    if _COMMIT_DONE in data:
                        self.commit_lost.set()
                        break
                    continue
                pair.client.sendall(data)
        except OSError:
            pass
        pair.close()
