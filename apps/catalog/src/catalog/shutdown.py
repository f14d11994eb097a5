"""Graceful shutdown across Sanic's processes. On SIGTERM every worker says 503 on /readyz and
closes each connection after its answer; after the drain the listener closes (new connections
are refused, not left waiting), idle connections close, in-flight requests finish, and each
worker flushes its spans and closes its database pool before it exits."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import select
import signal
import socket
import struct
import sys
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.http import Http
from sanic.server.protocols.http_protocol import HttpProtocol

from catalog import db
from catalog.observability.metrics import forget_worker
from catalog.observability.tracing import shutdown_tracing
from catalog.settings import Settings

log = logging.getLogger("catalog.shutdown")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A client whose connection was accepted just before the listener closed has its request on the
# way: an idle connection is closed this much later, so that request is answered, not dropped.
IDLE_CLOSE_DELAY_SECONDS = 0.5
# How long a worker waits at the end of the drain for connections the kernel has already
# completed to be accepted (closing the listener would reset them).
ACCEPT_QUEUE_WAIT_SECONDS = 1.0
_ACCEPT_POLL_SECONDS = 0.005


class DrainingHttpProtocol(HttpProtocol):
    """Sanic's HTTP protocol, except that at shutdown an idle connection is closed after
    IDLE_CLOSE_DELAY_SECONDS rather than at once (Sanic closes idle connections the moment the
    listener closes, dropping a request that was on its way)."""

    def close_if_idle(self) -> bool:
        self.loop.call_later(IDLE_CLOSE_DELAY_SECONDS, super().close_if_idle)
        return False


def register(app: Sanic, settings: Settings) -> None:
    """Wire the shutdown into `app`: the main process, every worker, every response."""
    app.main_process_ready(_release_listener_on_stop)
    app.after_server_start(_stop_once)
    app.on_response(_close_connection_when_draining)

    @app.before_server_stop
    async def drain(app: Sanic) -> None:
        if _owns_its_signals(app):
            # Sanic has put back the default handlers: a second signal would end the worker
            # halfway (before its stop hooks). The manager escalates to SIGKILL if it overstays.
            for signum in _STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
        app.ctx.draining = True
        log.info("draining", extra={"drain_seconds": settings.drain_seconds})
        # The listener still accepts here: /readyz answers 503 so load balancers stop sending.
        await asyncio.sleep(settings.drain_seconds)
        log.info("closing the listener")
        await _close_listener_cleanly(app)

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        spans_flushed = shutdown_tracing()
        database_closed = await db.close_database(settings.db_timeout_seconds)
        forget_worker(os.getpid())
        log.info(
            "stopped", extra={"pid": os.getpid(), "spans_flushed": spans_flushed, "database_closed": database_closed}
        )


def _listeners(app: Sanic) -> list[socket.socket]:
    return [info.settings["sock"] for info in app.state.server_info if info.settings.get("sock")]


def _release_listener_on_stop(app: Sanic) -> None:
    """In the main process, on the first SIGTERM/SIGINT: close its copy of the listening socket
    (it never accepts on it; that copy would keep the listener open after the workers have closed
    theirs, so new connections would wait there), then have the worker manager stop the workers.

    The manager's own handler stops them from inside the signal handler, talking to the shared
    worker state while the interrupted main thread may be halfway through its own exchange on the
    same connection (seen: "'NoneType' object is not a mapping", exit 1). A message on its monitor
    pipe makes the main thread do it instead, within 0.1 s. A second signal is the manager's to
    handle: it kills the workers."""
    listeners = _listeners(app)
    manager = app.manager
    manager_handler = signal.getsignal(signal.SIGTERM)
    signalled = False

    def on_stop(signum: int, frame: Any) -> None:
        nonlocal signalled
        if signalled:
            if callable(manager_handler):
                manager_handler(signum, frame)
            return
        signalled = True
        for listener in listeners:
            listener.close()
        log.info("stopping the workers", extra={"signal": signal.Signals(signum).name})
        manager.monitor_publisher.send("__TERMINATE__")

    for signum in _STOP_SIGNALS:
        signal.signal(signum, on_stop)


def _owns_its_signals(app: Sanic) -> bool:
    """A worker of `catalog serve` (Sanic's own server, listening), not an app under an ASGI
    server or a test client, whose process's signals are not ours to change."""
    return bool(_listeners(app))


def _stop_once(app: Sanic) -> None:
    """In a worker: the first SIGTERM/SIGINT stops it; a second one (the manager's and the
    orchestrator's both reaching it) must not stop the loop again in the middle of the drain."""
    if not _owns_its_signals(app):
        return
    loop = asyncio.get_running_loop()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            app.stop(terminate=False)

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop)


async def _close_connection_when_draining(request: Request, response: HTTPResponse) -> None:
    # Sanic writes the Connection header from the stream's keep-alive flag, not from the response.
    if request.app.ctx.draining and isinstance(request.stream, Http):
        request.stream.keep_alive = False


# Linux's SO_ATTACH_FILTER and a classic BPF program that drops TCP segments with SYN set: the
# listening socket completes no new handshake, while connections it already completed (waiting
# in its accept queue) and every accepted one carry on. Python's socket module lacks the name.
_SO_ATTACH_FILTER = 26
_DROP_SYN = (
    (0x30, 0, 0, 13),  # ldb [13]: the TCP flags (the filter sees the segment from its TCP header)
    (0x45, 1, 0, 0x02),  # jset #SYN: to the drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret: keep the whole segment
    (0x06, 0, 0, 0),  # ret 0: drop
)


def _refuse_new_handshakes(listener: socket.socket) -> None:
    program = b"".join(struct.pack("HBBI", *instruction) for instruction in _DROP_SYN)
    buffer = ctypes.create_string_buffer(program, len(program))
    listener.setsockopt(
        socket.SOL_SOCKET, _SO_ATTACH_FILTER, struct.pack("HL", len(_DROP_SYN), ctypes.addressof(buffer))
    )


async def _close_listener_cleanly(app: Sanic) -> None:
    """Closing a listening socket resets the connections waiting in its accept queue: clients
    that have sent a request and get no answer. So new handshakes are stopped first (a client
    then retries its SYN and is refused once the listener is gone), then the queue is left to
    empty (bounded); nothing joins it before Sanic closes the listener after the stop hooks. The
    socket is shared by the workers: the first worker at the end of its drain stops it."""
    listeners = _listeners(app)
    if sys.platform != "linux":
        return  # no socket filters (`make run` on a Mac): the listener closes as Sanic closes it
    for listener in listeners:
        try:
            _refuse_new_handshakes(listener)
        except OSError as error:
            # Some kernels refuse socket filters to a process without privileges (EPERM, seen
            # for every user of a non-privileged container). The listener then closes as Sanic
            # closes it: a handshake in flight may be reset, and the stop hooks still run.
            log.warning("the listener closes without refusing new handshakes first", extra={"error": str(error)})
            return
    for _ in range(int(ACCEPT_QUEUE_WAIT_SECONDS / _ACCEPT_POLL_SECONDS)):
        if not select.select(listeners, [], [], 0)[0]:
            return
        await asyncio.sleep(_ACCEPT_POLL_SECONDS)
