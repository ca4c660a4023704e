"""python -m util.zoo against a local HTTP server (with Range support) serving files in the official formats."""

import dataclasses
import hashlib
import http.server
import io
import os
import re
import tarfile
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from models.networks import build_generator
from util import zoo
from util.zoo_registry import CUT_ARGS, CYCLEGAN_ARGS, REGISTRY

TINY = ("--ngf", "8", "--netG", "resnet_6blocks", "--load_size", "32", "--crop_size", "32")


def tiny_generator_file(**kw) -> bytes:
    """An official-format ``latest_net_G.pth`` (a bare state_dict) of a tiny ResNet generator."""
    net = build_generator(
        "resnet_6blocks",
        3,
        3,
        ngf=8,
        norm="instance",
        use_dropout=False,
        init_type="normal",
        init_gain=0.02,
        **kw,
    )
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def tar_with(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """http.server on 127.0.0.1 in a thread: serves ``files``, honours ``Range: bytes=N-`` with a 206, and
    can cut a response short once (``cut_after``) to simulate a dropped connection."""

    def __init__(self):
        self.files, self.ranges, self.cut_after = {}, [], {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if m:
                    start = int(m.group(1))
                    outer.ranges.append(start)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                cut = outer.cut_after.pop(self.path, None)
                self.wfile.write(data[start:cut] if cut is not None else data[start:])
                if cut is not None:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    s = Server()
    registry = dict(REGISTRY)
    registry["horse2zebra"] = dataclasses.replace(
        REGISTRY["horse2zebra"], url=f"{s.url}/cyclegan/horse2zebra.pth", test_args=CYCLEGAN_ARGS + TINY
    )
    registry["horse2zebra_cut"] = dataclasses.replace(
        REGISTRY["horse2zebra_cut"], url=f"{s.url}/CUT/pretrained_models.tar", test_args=CUT_ARGS + TINY
    )
    monkeypatch.setattr(zoo, "REGISTRY", registry)
    yield s
    s.close()


def photos(folder, n=2):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return str(folder)


def run_test_script(tmp_path, name, capsys):
    """The command get printed, run as test.py; returns the translations it wrote."""
    cmd = zoo.command(name, zoo.json_record(tmp_path / "ck" / name)["test_args"])
    argv = cmd.split()[2:-2] + ["--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1"]
    argv += ["--input_dir", photos(tmp_path / f"in_{name}"), "--results_dir", str(tmp_path / "res")]
    argv += ["--output_path", str(tmp_path / f"out_{name}")]
    assert test_script.main(argv) == 0, capsys.readouterr()
    return sorted(os.listdir(tmp_path / f"out_{name}"))


def test_interrupted_download_resumes_then_installs_and_test_py_runs(server, tmp_path, capsys):
    data = tiny_generator_file()
    server.files["/cyclegan/horse2zebra.pth"] = data
    server.cut_after["/cyclegan/horse2zebra.pth"] = 5000
    root = str(tmp_path / "ck")
    with pytest.raises(
        zoo.ZooError, match=f"stopped at 5000 of {len(data)} bytes; run the same command again"
    ):
        zoo.get("horse2zebra", root, progress=False)
    part = tmp_path / "ck" / "horse2zebra" / "latest_net_G.pth.part"
    assert part.stat().st_size == 5000
    cmd = zoo.get("horse2zebra", root, progress=False)
    assert server.ranges == [5000]  # the second run asked only for the rest
    installed = tmp_path / "ck" / "horse2zebra" / "latest_net_G.pth"
    assert installed.read_bytes() == data and not part.exists()
    record = zoo.json_record(tmp_path / "ck" / "horse2zebra")
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["size"] == len(data)
    assert cmd.startswith("python test.py --name horse2zebra --model test")
    assert run_test_script(tmp_path, "horse2zebra", capsys) == ["p0.png", "p1.png"]
    # Installed files are checked against the recorded checksum on every later get.
    zoo.get("horse2zebra", root, progress=False)
    assert "already installed" in capsys.readouterr().out
    installed.write_bytes(data[:-1] + b"x")
    with pytest.raises(zoo.ZooError, match="does not match the size and sha256 recorded"):
        zoo.get("horse2zebra", root, progress=False)


def test_corrupted_downloads_are_refused(server, tmp_path, monkeypatch):
    root = str(tmp_path / "ck")
    server.files["/cyclegan/horse2zebra.pth"] = b"this is not a checkpoint" * 100
    with pytest.raises(zoo.ZooError, match="does not load as a CycleGAN model"):
        zoo.get("horse2zebra", root, progress=False)
    assert not (tmp_path / "ck" / "horse2zebra" / "latest_net_G.pth").exists()
    assert not (tmp_path / "ck" / "horse2zebra" / "zoo.json").exists()
    # A publisher's checksum that does not match: refused before anything is installed, partial file deleted.
    entry = dataclasses.replace(zoo.REGISTRY["horse2zebra"], sha256="0" * 64)
    monkeypatch.setitem(zoo.REGISTRY, "horse2zebra", entry)
    server.files["/cyclegan/horse2zebra.pth"] = tiny_generator_file()
    with pytest.raises(zoo.ZooError, match="checksum mismatch"):
        zoo.get("horse2zebra", root, progress=False)
    assert not (tmp_path / "ck" / "horse2zebra").exists()


def test_cut_model_from_the_official_archive(server, tmp_path, capsys):
    member = "checkpoints/horse2zebra_cut_pretrained/latest_net_G.pth"
    server.files["/CUT/pretrained_models.tar"] = tar_with(
        member, tiny_generator_file(antialias=True, antialias_up=True)
    )
    cmd = zoo.get("horse2zebra_cut", str(tmp_path / "ck"), progress=False)
    assert " --model cut " in cmd
    assert (
        tmp_path / "ck" / ".zoo_downloads" / "pretrained_models.tar"
    ).is_file()  # shared by the six models
    assert run_test_script(tmp_path, "horse2zebra_cut", capsys) == ["p0.png", "p1.png"]


def test_cli_errors_are_one_line(server, tmp_path, capsys):
    assert zoo.main(["get", "no_such_model"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "valid names:" in err and "horse2zebra_cut" in err
    server.close()  # nothing listens any more: the "no network" case
    assert zoo.main(["get", "horse2zebra", "--dir", str(tmp_path / "ck"), "--no_progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: cannot reach 127.0.0.1")
    assert not (tmp_path / "ck" / "horse2zebra").exists()
    assert zoo.main(["get", "tunit_afhq_cat_128", "--dir", str(tmp_path / "ck")]) == 1
    assert "--file PATH" in capsys.readouterr().err and not (tmp_path / "ck" / "tunit_afhq_cat_128").exists()
    assert zoo.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in REGISTRY)


def test_hand_downloaded_unit_file_is_imported(tmp_path, monkeypatch, capsys):
    """Drive-hosted models: get --file imports the official file (UNIT: {'a': gen_a, 'b': gen_b})."""
    import models
    from options import TestOptions

    tiny = ("--model", "unit", "--ngf", "8", "--n_downsample", "2", "--n_res", "1", "--load_size", "64",
            "--crop_size", "64")  # fmt: skip
    opt = TestOptions().parse([*tiny, "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path)], save=False)
    net = models.create_model(opt)
    official = tmp_path / "unit_gta2city.pt"
    torch.save({"a": net.gen_a.state_dict(), "b": net.gen_b.state_dict()}, official)
    monkeypatch.setitem(
        zoo.REGISTRY, "unit_gta2city", dataclasses.replace(REGISTRY["unit_gta2city"], test_args=tiny)
    )
    assert zoo.main(["get", "unit_gta2city", "--dir", str(tmp_path / "ck"), "--file", str(official)]) == 0
    record = zoo.json_record(tmp_path / "ck" / "unit_gta2city")
    assert record["test_args"][-2:] == [
        "--official_checkpoint",
        str(tmp_path / "ck" / "unit_gta2city" / "unit_gta2city.pt"),
    ]
    assert run_test_script(tmp_path, "unit_gta2city", capsys) == ["AtoB", "BtoA"]
