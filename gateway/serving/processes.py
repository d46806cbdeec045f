"""``gateway serve --role api|worker|all --processes N``: the API and the worker as separate processes on one
store, and several API processes on one listening socket.

* ``all`` (the default), one process: the HTTP API and the worker (dispatcher, housekeeping) share one event
  loop. Needed for the embedded sandbox, whose emulated runs live in that process's memory.
* ``api``: the HTTP API only; ``--processes N`` forks N of them, which take connections from one socket
  bound before the fork (the kernel spreads the connections).
* ``worker``: the dispatcher and housekeeping only, no HTTP.
* ``all`` with ``--processes N`` (N > 1): N API processes and one worker process.

The processes share the store: SQLite in WAL mode takes one writer at a time across processes (each waits its
turn for the lock, up to the busy timeout) and wakes an idle worker when another process commits; PostgreSQL
takes writers concurrently and wakes workers with LISTEN/NOTIFY. This parent process only binds, forks and
supervises: it forwards SIGTERM/SIGINT to its children, and when one child dies the others are stopped too and
the exit status says so (a service manager restarts the whole group).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from gateway.config.settings import Settings

log = logging.getLogger("gateway.processes")
ROLES = ("all", "api", "worker")


def plan(role: str, processes: int) -> list[str]:
    """The role of each child process (one process: no children, the caller serves itself)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if processes < 1:
        raise ValueError("--processes must be at least 1")
    if role == "worker" and processes != 1:
        raise ValueError("--processes counts API processes; a worker runs as one process")
    if role == "all" and processes > 1:
        return ["api"] * processes + ["worker"]
    return [role] * processes


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every API process accepts from, bound once before the fork."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_group(
    settings: Settings, host: str, roles: list[str], run: Callable[[str, socket.socket | None], None]
) -> int:
    """Fork one child per role; ``run(role, sock)`` serves in the child. Returns the group's exit status."""
    sock = bind(host, settings.server.port) if "api" in roles else None
    children: dict[int, str] = {}
    for role in roles:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run(role, sock if role == "api" else None)
            except BaseException:  # the parent reports it; the type only (messages may quote payloads)
                log.error("process failed", extra={"role": role, "error": type(sys.exc_info()[1]).__name__})
                code = 1
            os._exit(code)
        children[pid] = role
    if sock is not None:
        sock.close()
    return _supervise(children)


def _supervise(children: dict[int, str]) -> int:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(children, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        role = children.pop(pid, "?")
        exit_code = os.waitstatus_to_exitcode(code)
        if not stopping:
            log.error("a process of the group ended; stopping the others", extra={"role": role, "code": exit_code})
            stopping, status = True, 1
            _signal_all(children, signal.SIGTERM)
            _kill_after(children, 30.0)
    return status


def _signal_all(children: dict[int, str], signum: int) -> None:
    for pid in children:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _kill_after(children: dict[int, str], seconds: float) -> None:
    """Wait up to ``seconds`` for the children to stop, then kill what is left."""
    deadline = time.monotonic() + seconds
    while children and time.monotonic() < deadline:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid:
            children.pop(pid, None)
        else:
            time.sleep(0.1)
    _signal_all(children, signal.SIGKILL)
