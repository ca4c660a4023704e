"""demo.py in a real browser: the system Chromium driven by Playwright uploads images and reads the page.

Skipped (with the reason) only when Chromium or Playwright is missing; .ci/run installs both.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

import demo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_experiment(checkpoints: str) -> None:
    """A CycleGAN experiment of 2 training steps at 32 px, trained in-process."""
    from options.train_options import TrainOptions
    from util.trainer import Trainer

    args = "--model cycle_gan --ngf 8 --ndf 8 --load_size 32 --crop_size 32 --max_dataset_size 2 --n_epochs 1"
    args += " --n_epochs_decay 0 --display_id 0 --num_threads 0 --no_progress --gpu_ids -1 --no_html"
    args += f" --checkpoints_dir {checkpoints} --name tiny"
    Trainer(TrainOptions().parse(args.split(), save=False)).fit()


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo.py exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"demo.py did not answer at {url} within {timeout} s")


def test_missing_gradio_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)
    assert demo.main(["--name", "x"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: demo.py needs Gradio (an optional dependency): pip install gradio"
    )


def test_unknown_experiment_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "gradio_available", lambda: True)  # checked before Gradio is imported
    assert demo.main(["--name", "nothing_here", "--checkpoints_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "python -m util.zoo list" in err


def test_demo_in_chromium(tmp_path):
    pytest.importorskip("gradio")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("no system Chromium (apt-get install chromium; .ci/run does)")
    tiny_experiment(str(tmp_path / "ck"))
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    (tmp_path / "notes.txt").write_text("not an image")
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "demo.py", "--name", "tiny", "--checkpoints_dir", str(tmp_path / "ck"),
           "--port", str(port), "--cpu"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, proc)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.locator("#uploads input[type=file]").set_input_files(str(photo))
            page.locator("#translate").click()
            results = page.locator("#results img")
            results.nth(2).wait_for(timeout=60_000)  # input, fake_B, rec_A
            src = results.nth(1).get_attribute("src")
            fetched = page.request.get(src if src.startswith("http") else url + "/" + src.lstrip("/"))
            out = tmp_path / "translated.png"
            out.write_bytes(fetched.body())
            with Image.open(out) as im, Image.open(photo) as src_im:
                translated = np.asarray(im.convert("RGB"))
                original = np.asarray(src_im.convert("RGB"))
            assert translated.shape == (32, 43, 3)  # shorter side at the training size, aspect kept
            resized = np.asarray(Image.open(photo).convert("RGB").resize((43, 32), Image.BICUBIC))
            assert np.abs(translated.astype(int) - resized.astype(int)).mean() > 1 and original.shape == (
                48,
                64,
                3,
            )
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
            if os.environ.get("DEMO_SCREENSHOT"):
                page.screenshot(path=os.environ["DEMO_SCREENSHOT"], full_page=True)
            page.locator("#uploads button[aria-label='Clear']").first.click()
            page.locator("#uploads input[type=file]").set_input_files(str(tmp_path / "notes.txt"))
            page.locator("#translate").click()
            page.get_by_text("notes.txt: not an image").wait_for(timeout=30_000)
            assert "Traceback" not in page.content()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
