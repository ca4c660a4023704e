"""One training run per experiment folder.

Two runs with the same ``--name`` would interleave ``loss_log.txt`` and overwrite each other's checkpoints,
so a run takes ``<expr_dir>/run.lock`` (created with O_EXCL, holding pid and host) before it writes anything,
and removes it when it ends. A lock left by a run that was killed (its pid no longer exists on this host) is
taken over with a note; a lock of a live process, or of another host (whose pids cannot be checked), refuses
the new run with one line.
"""

from __future__ import annotations

import json
import os
import socket

LOCK_NAME = "run.lock"


class RunLockedError(RuntimeError):
    """Another live run holds the experiment folder."""


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host (permission errors mean it exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``with RunLock(expr_dir):`` or ``acquire()`` / ``release()``; release only removes our own lock."""

    def __init__(self, expr_dir: str) -> None:
        self.expr_dir = expr_dir
        self.path = os.path.join(expr_dir, LOCK_NAME)
        self.held = False

    def acquire(self) -> None:
        os.makedirs(self.expr_dir, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):  # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_or_refuse(me)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise RunLockedError(
            f"could not take the lock {self.path}; another run is starting in {self.expr_dir}"
        )

    def _take_over_or_refuse(self, me: dict) -> None:
        owner = self.read_owner()
        pid, host = owner.get("pid", -1), owner.get("host", "")
        if host == me["host"] and not pid_alive(pid):
            print(
                f"note: {self.path} was left by run {pid} on {host}, which no longer exists; taking it over"
            )
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            return
        where = "" if host == me["host"] else f" on host {host}"
        raise RunLockedError(
            f"another run (pid {pid}{where}) is training in {self.expr_dir}; wait for it, stop it, "
            f"or pick another --name (if it is surely gone, delete {self.path})"
        )

    def read_owner(self) -> dict:
        """The lock file's content; an unreadable or half-written lock counts as held by a dead pid here."""
        try:
            with open(self.path) as f:
                owner = json.load(f)
            return owner if isinstance(owner, dict) else {}
        except (OSError, ValueError):
            return {"pid": -1, "host": socket.gethostname()}

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.read_owner().get("pid") == os.getpid():
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
