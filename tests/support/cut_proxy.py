"""A TCP proxy at the network edge that hangs up at a chosen moment: for a fault a real
server cannot produce on demand, such as a connection lost while a COMMIT is on the wire.

    with CutProxy("127.0.0.1", pg_port) as proxy:   # connect to proxy.port instead
        proxy.cut_after(b"COMMIT")   # the next client bytes holding COMMIT are forwarded,
                                     # then both sides are closed before any answer
"""

from __future__ import annotations

import socket
import threading
from typing import Self


class CutProxy:
    """Forwards every connection to (host, port); `cut_after(marker)` arms one cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def cut_after(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, server]
            pair = (client, server)
            threading.Thread(target=self._pump, args=(client, server, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, cut: tuple[socket.socket, ...] | None
    ) -> None:
        """Copy `source` to `sink`; on the client's side (`cut` given), hang up once armed
        bytes have gone through."""
        cutting = False
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if cut is None:
                    continue
                with self._lock:
                    hit = self._marker is not None and self._marker in data
                    if hit:
                        self._marker = None
                        self.cuts += 1
                if hit:
                    client, server = cut
                    client.shutdown(socket.SHUT_RDWR)  # the client hears nothing more
                    client.close()
                    # the server gets the armed bytes and then an end of input (FIN), never a
                    # reset: closing a socket with unread input sends RST, and a server may
                    # drop what it had not read yet; its answer goes nowhere (the other pump)
                    server.shutdown(socket.SHUT_WR)
                    cutting = True
                    return
        except OSError:
            pass
        finally:
            for sock in () if cutting else (source, sink):  # cut: the other pump closes
                try:
                    sock.close()
                except OSError:
                    pass
