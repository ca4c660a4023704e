"""The official pretrained models in one command.

    python -m util.zoo list
    python -m util.zoo get horse2zebra [--dir checkpoints]
    python -m util.zoo get tunit_afhq_cat_128 --file ~/Downloads/model_4568.ckpt   # browser-only hosts
    python -m util.zoo get horse2zebra --file horse2zebra.pth   # any model, from a file fetched elsewhere

``get`` downloads with a progress bar into ``<name>.part`` and resumes it (HTTP Range) when run again after
an interruption, checks the size the server announced (and a checksum when one is known), puts the official
file into ``<dir>/<name>/``, checks that it loads into the architecture that test.py will build, and writes
``zoo.json`` (source, size, sha256, test.py options). A failed ``get`` leaves no folder it made empty (a
partial download stays, for resuming). test.py then reads the official file directly:

    python test.py --name horse2zebra <the options printed by get> --input_dir MY_PHOTOS
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from urllib.parse import urlparse

from tqdm import tqdm

from util.output_dirs import new_dirs, output_dir_error, remove_empty
from util.zoo_registry import REGISTRY, ZooModel

CHUNK = 1 << 16
TIMEOUT_S = 30


class ZooError(RuntimeError):
    """Anything the user must act on; printed as one line."""


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- download
def _total_size(resp, start: int) -> int | None:
    """The full file size from Content-Range (a resumed 206) or Content-Length (a 200)."""
    content_range = resp.headers.get("Content-Range", "")
    if "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    return start + int(length) if length is not None else None


def _open(url: str, start: int):
    """GET ``url`` from byte ``start``; returns (response, bytes already valid in the partial file)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        resp = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the partial file is not a prefix the server knows: start over
            return _open(url, 0)
        raise ZooError(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ZooError(f"cannot reach {urlparse(url).netloc} (no network?): {reason}") from None
    # 206: the server resumes at `start`; 200: it ignored the Range header, so the file starts over.
    return resp, start if resp.status == 206 else 0


def download(url: str, dest: str, sha256: str | None = None, progress: bool = True) -> str:
    """Download ``url`` to ``dest``, resuming ``dest + '.part'``; returns the file's sha256.

    The size is checked against what the server announced and ``sha256`` (when given) against the data; a
    mismatch deletes the partial file so that the next run starts clean.
    """
    part = dest + ".part"
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    start = os.path.getsize(part) if os.path.isfile(part) else 0
    resp, start = _open(url, start)
    total = _total_size(resp, start)
    done = start
    with (
        resp,
        open(part, "ab" if start else "wb") as f,
        tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            desc=os.path.basename(dest),
            disable=not progress,
        ) as bar,
    ):
        try:
            while block := resp.read(CHUNK):
                f.write(block)
                done += len(block)
                bar.update(len(block))
        except (OSError, http.client.HTTPException):
            pass  # the size check below reports it, and the partial file is kept for the next run
    if total is not None and done != total:
        raise ZooError(
            f"download of {url} stopped at {done} of {total} bytes; run the same command again to resume"
        )
    digest = sha256_of(part)
    if sha256 and digest != sha256:
        os.remove(part)
        raise ZooError(
            f"{url}: checksum mismatch (got sha256 {digest}, expected {sha256}); the file was deleted"
        )
    os.replace(part, dest)
    return digest


# ---------------------------------------------------------------------------------------------- install
def extract_member(archive: str, suffix: str, dest: str) -> None:
    """Copy the one member of a tar whose path ends with ``suffix`` to ``dest`` (never extracts paths)."""
    try:
        with tarfile.open(archive) as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith(suffix)), None)
            if member is None:
                raise ZooError(f"{archive} holds no {suffix}; the archive may have changed upstream")
            with tar.extractfile(member) as src, open(dest + ".tmp", "wb") as out:
                shutil.copyfileobj(src, out)
    except tarfile.TarError as exc:
        raise ZooError(f"{archive} is not a readable tar archive ({exc}); delete it and run again") from None
    os.replace(dest + ".tmp", dest)


def check_loads(entry: ZooModel, root: str, args: list[str]) -> None:
    """Build the model test.py will build and load the official file into it: a truncated or foreign file
    fails here, with one line, rather than at the user's first test."""
    import models
    from options import TestOptions

    # --input_dir: no dataset is needed, so none is looked for (nor the synthetic one generated in the cwd).
    argv = [*args, "--name", entry.name, "--checkpoints_dir", root, "--gpu_ids", "-1", "--input_dir", root]
    opt = TestOptions().parse(argv, save=False)
    model = models.create_model(opt)
    try:
        ok = model.import_official(os.path.join(root, entry.name), "latest", model.inference_names)
    except Exception as exc:  # torch raises several types for one cause: the file is not these weights
        raise ZooError(f"{entry.name}: the file does not load as a {entry.method} model: {exc}") from None
    if not ok:
        raise ZooError(f"{entry.name}: no {model.official_files_hint('latest')} in {root}/{entry.name}")


def manual_target(entry: ZooModel, path: str) -> str:
    """File name a hand-downloaded file gets in the experiment folder (TUNIT keeps its model_N.ckpt)."""
    base = os.path.basename(path)
    if entry.method == "TUNIT":
        return base if base.startswith("model_") and base.endswith(".ckpt") else "model_0.ckpt"
    return entry.file


def install_file(entry: ZooModel, file: str, dest: str) -> None:
    """Put a file downloaded by hand at ``dest``: for an archive entry (CUT) either the archive itself, from
    which the entry's member is taken, or that member."""
    if not os.path.isfile(file):
        raise ZooError(f"--file {file}: no such file")
    if entry.archive_member and tarfile.is_tarfile(file):
        extract_member(file, entry.archive_member, dest)
    else:
        shutil.copyfile(file, dest)


def test_args(entry: ZooModel, root: str, file_name: str) -> list[str]:
    args = list(entry.test_args)
    if entry.method == "UNIT":  # the official file name is not gen_XXXXXXXX.pt: point at it
        args += ["--official_checkpoint", os.path.join(root, entry.name, file_name)]
    return args


def get(name: str, root: str = "checkpoints", file: str | None = None, progress: bool = True) -> str:
    """Install ``name`` into ``root/name`` (from ``file`` when given: any entry can be installed from a file
    fetched by hand); returns the test.py command line. Raises ZooError, having removed the folders it made
    and left empty."""
    entry = lookup(name)
    if entry.unavailable:
        raise ZooError(f"{name}: {entry.unavailable}; published at {entry.url} ({entry.source})")
    made = [*new_dirs(os.path.join(root, name)), *new_dirs(os.path.join(root, ".zoo_downloads"))]
    try:
        return install(entry, root, file, progress)
    except (ZooError, OSError) as exc:  # OSError: a disk that is full or not writable, as one line too
        remove_empty(sorted(set(made), key=len, reverse=True))  # deepest first
        if isinstance(exc, ZooError):
            raise
        raise ZooError(f"{exc.filename or root}: {exc.strerror or exc}") from None


def install(entry: ZooModel, root: str, file: str | None, progress: bool) -> str:
    name = entry.name
    expr_dir = os.path.join(root, name)
    record_path = os.path.join(expr_dir, "zoo.json")
    record = json_record(expr_dir)
    if record and os.path.isfile(os.path.join(expr_dir, record["file"])) and not file:
        verify_recorded(expr_dir, record)
        print(f"{name} is already installed in {expr_dir} (checksum verified)")
        return command(name, record["test_args"])
    if entry.manual and not file:
        raise ZooError(
            f"{name} is published on a page that needs a browser: download {entry.notes or entry.file} from "
            f"{entry.url}, then run: python -m util.zoo get {name} --file PATH"
        )
    target = manual_target(entry, file) if file else entry.file
    dest = os.path.join(expr_dir, target)
    os.makedirs(expr_dir, exist_ok=True)
    if file:
        install_file(entry, file, dest)
        size, digest = os.path.getsize(dest), sha256_of(dest)
    else:
        size, digest = fetch(entry, root, dest, progress)
    args = test_args(entry, root, target)
    try:
        check_loads(entry, root, args)
    except ZooError:
        os.remove(os.path.join(expr_dir, target))
        raise
    record = {"name": name, "method": entry.method, "url": entry.url, "source": entry.source, "file": target,
              "size": size, "sha256": digest, "test_args": args}  # fmt: skip
    with open(record_path, "w") as f:
        json.dump(record, f, indent=2)
    return command(name, args)


def fetch(entry: ZooModel, root: str, dest: str, progress: bool) -> tuple[int, str]:
    """Download the entry's file (through its archive when it has one) to ``dest``; returns (size, sha256)."""
    if entry.archive_member:
        archive = os.path.join(root, ".zoo_downloads", os.path.basename(urlparse(entry.url).path))
        if not os.path.isfile(archive):
            download(entry.url, archive, entry.sha256, progress)
        extract_member(archive, entry.archive_member, dest)
    else:
        download(entry.url, dest, entry.sha256, progress)
    return os.path.getsize(dest), sha256_of(dest)


def json_record(expr_dir: str) -> dict | None:
    """What get recorded in ``expr_dir/zoo.json`` (None before the first successful get)."""
    path = os.path.join(expr_dir, "zoo.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def verify_recorded(expr_dir: str, record: dict) -> None:
    path = os.path.join(expr_dir, record["file"])
    if os.path.getsize(path) != record["size"] or sha256_of(path) != record["sha256"]:
        raise ZooError(
            f"{path} does not match the size and sha256 recorded at download in {expr_dir}/zoo.json "
            f"(corrupted or replaced); delete {path} and run get again"
        )


def command(name: str, args: list[str]) -> str:
    return " ".join(["python test.py --name", name, *args, "--input_dir MY_PHOTOS"])


def lookup(name: str) -> ZooModel:
    if name not in REGISTRY:
        raise ZooError(f"unknown model {name!r}; valid names: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def table() -> str:
    """The list: name, method, dataset, direction, and how it is obtained."""
    rows = [("name", "method", "dataset", "direction", "download")]
    for m in REGISTRY.values():
        how = "not importable" if m.unavailable else "by hand (--file)" if m.manual else "automatic"
        rows.append((m.name, m.method, m.dataset, m.direction, how))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4] for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m util.zoo", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the official pretrained models")
    g = sub.add_parser("get", help="download, verify and install one model")
    g.add_argument("name")
    g.add_argument("--dir", default="checkpoints", help="checkpoints folder (test.py --checkpoints_dir)")
    g.add_argument("--file", default=None, help="install this file downloaded by hand (needed for the models "
                   "hosted on Drive/OneDrive; CUT: the archive or its latest_net_G.pth)")  # fmt: skip
    g.add_argument("--no_progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(table())
        return 0
    problem = output_dir_error("--dir", args.dir)
    if args.file is not None and not os.path.isfile(args.file):
        problem = problem or f"--file {args.file}: no such file"
    if problem:  # before anything is made or downloaded
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        cmd = get(args.name, args.dir, args.file, progress=not args.no_progress)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    extra = "" if args.dir == "checkpoints" else f" --checkpoints_dir {args.dir}"
    print(f"installed {args.name}; translate your images with:\n  {cmd}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
