"""Output folders of the command-line tools (test.py, export.py, util.zoo), checked before any work starts.

A folder option that names a file (or a path below one) must fail as one line naming the option, before a
model is built or anything is written, rather than as a ``NotADirectoryError`` traceback halfway through.
A tool that fails after making folders removes the ones it made and left empty.
"""

from __future__ import annotations

import os


def output_dir_error(option: str, value: str, path: str | None = None) -> str | None:
    """Why ``path`` (default ``value``, the folder ``option value`` makes the tool write to) cannot be a folder
    to write into, or None when it is one or can be made."""
    full = os.path.abspath(path or value)
    existing = full
    while not os.path.lexists(existing):  # lexists: a dangling link blocks makedirs too
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "it" if existing == os.path.abspath(value) else existing
        kind = "a file" if os.path.isfile(existing) else "not a folder"
        return f"{option} {value}: {what} is {kind}; expected a folder to write into"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{option} {value}: {existing} is not writable"
    return None


def new_dirs(path: str) -> list[str]:
    """The folders ``os.makedirs(path)`` would create, deepest first (none when ``path`` exists)."""
    made, path = [], os.path.abspath(path)
    while not os.path.lexists(path):
        made.append(path)
        path = os.path.dirname(path)
    return made


def remove_empty(dirs: list[str]) -> None:
    """Remove each of ``dirs`` (deepest first) that exists and is empty: what a failed run made and left unused."""
    for d in dirs:
        try:
            os.rmdir(d)
        except OSError:  # holds files (a partial download kept for resuming, a written export) or is gone
            pass
