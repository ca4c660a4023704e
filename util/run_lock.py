"""One training run per experiment folder.

Two runs with the same ``--name`` would interleave ``loss_log.txt`` and overwrite each other's checkpoints,
so a run takes ``<expr_dir>/run.lock`` (holding pid and host, created whole by a hard link so that it is
never seen empty) before it writes anything, and removes it when it ends, together with the folders it created
when the run wrote nothing into them (a refused start). A lock left by a run that was killed (its pid no longer
exists on this host) is taken over with a note; a lock of a live process, or of another host (whose pids cannot
be checked), refuses the new run with one line.
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


def missing_folders(path: str) -> list[str]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


class RunLock:
    """``with RunLock(expr_dir):`` or ``acquire()`` / ``release()``; release only removes our own lock."""

    def __init__(self, expr_dir: str) -> None:
        self.expr_dir = expr_dir
        self.path = os.path.join(expr_dir, LOCK_NAME)
        self.held = False
        self.created: list[str] = []  # folders this lock made, deepest first

    def acquire(self) -> None:
        self.created = missing_folders(self.expr_dir)
        os.makedirs(self.expr_dir, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):  # further tries after taking over a stale lock
            if self._create(me):
                self.held = True
                return
            self._take_over_or_refuse(me)
        raise RunLockedError(
            f"could not take the lock {self.path}; another run is starting in {self.expr_dir}"
        )

    def _create(self, me: dict) -> bool:
        """Create the lock with its content in one step: False when a lock exists.

        The content goes to a private file first, which is then hard-linked to ``run.lock`` (atomic, and
        refused when the name exists), so another run never reads a lock that is created but still empty.
        File systems without hard links get O_EXCL creation followed by the write.
        """
        private = f"{self.path}.{me['pid']}"
        with open(private, "w") as f:
            json.dump(me, f)
        try:
            os.link(private, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here
            return self._create_exclusive(me)
        finally:
            os.remove(private)

    def _create_exclusive(self, me: dict) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return True

    def _take_over_or_refuse(self, me: dict) -> None:
        owner = self.read_owner()
        pid, host = owner.get("pid", -1), owner.get("host", "")
        if host == me["host"] and not pid_alive(pid):
            if self._remove_stale(owner):
                print(
                    f"note: {self.path} was left by run {pid} on {host}, which no longer exists; taking it over"
                )
            return
        where = "" if host == me["host"] else f" on host {host}"
        raise RunLockedError(
            f"another run (pid {pid}{where}) is training in {self.expr_dir}; wait for it, stop it, "
            f"or pick another --name (if it is surely gone, delete {self.path})"
        )

    def _remove_stale(self, owner: dict) -> bool:
        """Remove the stale lock ``owner`` read, and only that one.

        Two new runs can find the same stale lock; the first takes it over and creates its own, which the
        second must not delete. So the lock is moved aside (atomic: only one run moves a given file) and
        checked; a lock that turns out to be another's is put back.
        """
        aside = f"{self.path}.stale{os.getpid()}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:  # another run moved it first
            return False
        moved = self._read(aside)
        if moved != owner and moved is not None:  # a new run's lock, created after we read the stale one
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            os.remove(aside)
            return False
        os.remove(aside)
        return True

    def read_owner(self) -> dict:
        """The lock file's content; an unreadable lock (it is always written whole) counts as left by a dead pid."""
        owner = self._read(self.path)
        return owner if owner is not None else {"pid": -1, "host": socket.gethostname()}

    @staticmethod
    def _read(path: str) -> dict | None:
        try:
            with open(path) as f:
                owner = json.load(f)
            return owner if isinstance(owner, dict) else {}
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.read_owner().get("pid") == os.getpid():
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        self._remove_created()

    def _remove_created(self) -> None:
        """Remove the folders :meth:`acquire` made that are still empty (a refused start wrote nothing).

        Without this a mistyped ``--dataroot`` left an empty ``checkpoints/<name>/`` that looks like a run.
        ``rmdir`` removes empty folders only, so another run's files (or a sibling experiment in a
        ``--checkpoints_dir`` this run created) stop the removal there.
        """
        for folder in self.created:
            try:
                os.rmdir(folder)
            except OSError:
                return
        self.created = []

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
