"""Image conversion, the HTML page, and the Visualizer's logs and optional backends."""

import logging
import os
import socket
import sys
import time
import types
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

from util.html import HTML
from util.image_utils import make_grid_image, save_image, tensor2im
from util.loss_plot import nice_ticks
from util.visualizer import Visualizer, save_images

VOID = {"br", "img", "meta", "link", "hr", "input"}


class PageParser(HTMLParser):
    """Collects img sources and text, and checks that every non-void tag is closed in order."""

    def __init__(self):
        super().__init__()
        self.stack, self.srcs, self.text, self.errors, self.metas = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "meta":
            self.metas.append(dict(attrs))
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])
        elif tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def parse(path):
    parser = PageParser()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    assert parser.errors == [] and parser.stack == []
    return parser


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- image_utils ---------------------------------------------------------------------------------------
def test_tensor2im_values_and_truncation():
    # 100.9 / 127.5 - 1 maps to 100.9..., which the official astype(uint8) truncates to 100 (not 101).
    vals = torch.tensor([-1.0, 0.0, 1.0, 0.5, 100.9 / 127.5 - 1, -3.0, 7.0])
    t = vals.view(1, 1, 7).expand(3, 1, 7).clone()
    out = tensor2im(t.unsqueeze(0))
    assert out.dtype == np.uint8 and out.shape == (1, 7, 3)
    assert out[0, :, 0].tolist() == [0, 127, 255, 191, 100, 0, 255]


def test_tensor2im_takes_first_of_batch_and_tiles_gray():
    batch = torch.stack([torch.full((1, 4, 5), 1.0), torch.full((1, 4, 5), -1.0)])
    out = tensor2im(batch)
    assert out.shape == (4, 5, 3) and (out == 255).all()
    heat = torch.linspace(-1, 1, 20).view(4, 5)
    assert np.array_equal(tensor2im(heat), tensor2im(heat[None]))
    rgb = tensor2im(heat)
    assert np.array_equal(rgb[..., 0], rgb[..., 2]) and rgb[0, 0, 0] == 0 and rgb[-1, -1, 1] == 255


def test_save_image_png_size_and_aspect(tmp_path):
    t = torch.zeros(2, 3, 16, 24)
    path = tmp_path / "a" / "b" / "x.png"
    save_image(t, str(path))
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (24, 16) and im.mode == "RGB"
        assert np.array(im)[0, 0].tolist() == [127, 127, 127]
    save_image(tensor2im(t), str(tmp_path / "tall.png"), aspect_ratio=2.0)
    save_image(tensor2im(t), str(tmp_path / "wide.png"), aspect_ratio=0.5)
    with Image.open(tmp_path / "tall.png") as tall, Image.open(tmp_path / "wide.png") as wide:
        assert tall.size == (24, 32) and wide.size == (48, 16)


def test_make_grid_image_layout():
    a, b = torch.full((1, 3, 8, 8), 1.0), torch.full((1, 1, 4, 4), -1.0)  # b is resized to 8x8
    grid = make_grid_image([a, b, a], nrow=2)
    assert grid.shape == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2, 3) and grid.dtype == np.uint8
    assert (grid[2:10, 2:10] == 255).all() and (grid[2:10, 12:20] == 0).all()
    assert (grid[12:20, 12:20] == 255).all()  # the empty slot is padding (white)


# ---- html ----------------------------------------------------------------------------------------------
def test_html_page_lists_every_image_and_caption(tmp_path):
    page = HTML(str(tmp_path / "web"), "title <&>", refresh=5)
    assert page.get_image_dir() == str(tmp_path / "web" / "images") and os.path.isdir(page.get_image_dir())
    page.add_header("epoch [2]")
    page.add_images(["e2_a.png", "e2_b.png"], ["real_A", "fake_B"], ["e2_a.png", "e2_b.png"], width=64)
    page.add_header("epoch [1]")
    page.add_images(["e1_a.png"], ["rec_A <x>"], ["e1_a.png"])
    curve = tmp_path / "web" / "loss_curves.png"
    page.add_image_file(str(curve), "losses")
    path = page.save()
    assert path == str(tmp_path / "web" / "index.html")
    parsed = parse(path)
    assert parsed.srcs == ["images/e2_a.png", "images/e2_b.png", "images/e1_a.png", "loss_curves.png"]
    for text in ["title <&>", "epoch [2]", "real_A", "fake_B", "epoch [1]", "rec_A <x>", "losses"]:
        assert text in parsed.text
    assert parsed.metas == [{"http-equiv": "refresh", "content": "5"}]
    with pytest.raises(ValueError):
        page.add_images(["a.png"], [], ["a.png"])


def test_save_images_helper(tmp_path):
    page = HTML(str(tmp_path), "test")
    names = save_images(
        page, {"real": torch.zeros(1, 3, 8, 8), "fake": torch.ones(1, 1, 8, 8)}, "/d/img7.jpg"
    )
    assert names == ["img7_real.png", "img7_fake.png"]
    assert all((tmp_path / "images" / n).is_file() for n in names)
    assert parse(page.save()).text == ["test", "img7", "real", "fake"]


# ---- Visualizer ----------------------------------------------------------------------------------------
def make_vis(tmp_path, **kw):
    kw.setdefault("display_id", 0)
    return Visualizer("exp", str(tmp_path / "exp"), **kw)


VISUALS = {"real_A": torch.zeros(2, 3, 8, 8), "fake_B": torch.ones(2, 1, 8, 8)}


def test_dead_visdom_server_warns_once_and_is_fast(tmp_path, caplog, monkeypatch):
    constructed = []
    fake = types.ModuleType("visdom")
    fake.Visdom = lambda **kw: constructed.append(kw)
    monkeypatch.setitem(sys.modules, "visdom", fake)  # so the server check runs even without visdom
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="util.visualizer"):
        vis = make_vis(tmp_path, display_id=1, display_server="http://127.0.0.1", display_port=unused_port())
        for step in range(3):
            vis.display_current_results(VISUALS, epoch=1, step=step, save_result=False)
            vis.plot_current_losses(step, {"G": 1.0})
            vis.log_metrics(step, {"fid": 3.0})
        vis.close()
    assert time.perf_counter() - t0 < 5
    assert constructed == [] and vis.vis is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "python -m visdom.server" in warnings[0]


def test_missing_visdom_package_warns_once(tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "visdom", None)  # makes `import visdom` raise ImportError
    with caplog.at_level(logging.WARNING, logger="util.visualizer"):
        vis = make_vis(tmp_path, display_id=1, display_port=unused_port())
        vis.plot_current_losses(1, {"G": 1.0})
    assert vis.vis is None
    assert len(caplog.records) == 1 and "python -m visdom.server" in caplog.records[0].getMessage()


class FakeVisdom:
    def __init__(self, **kw):
        self.kw, self.calls, self.fail = kw, [], False

    def check_connection(self):
        return True

    def _record(self, name, kw):
        if self.fail:
            raise ConnectionError("server went away")
        self.calls.append((name, kw))

    def image(self, **kw):
        self._record("image", kw)

    def line(self, **kw):
        self._record("line", kw)


def test_live_visdom_gets_images_and_plots_then_a_failure_disables_it(tmp_path, caplog, monkeypatch):
    fake = types.ModuleType("visdom")
    fake.Visdom = FakeVisdom
    monkeypatch.setitem(sys.modules, "visdom", fake)
    with socket.socket() as server:  # a listening socket is enough for the TCP check
        server.bind(("127.0.0.1", 0))
        server.listen()
        vis = make_vis(
            tmp_path, display_id=1, display_server="http://127.0.0.1", display_port=server.getsockname()[1]
        )
    client = vis.vis
    assert isinstance(client, FakeVisdom) and client.kw["use_incoming_socket"] is False
    vis.display_current_results(VISUALS, epoch=1, step=0, save_result=False)
    vis.plot_current_losses(10, {"G": 1.0, "D": 2.0})
    vis.plot_current_losses(20, {"G": 0.5, "D": 1.5})
    (_, img), _, (_, line) = client.calls
    assert img["img"].shape == (3, 8 + 4, 2 * 8 + 6)  # two panels in one row, padding 2
    assert line["X"].tolist() == [[10, 10], [20, 20]] and line["Y"].tolist() == [[1.0, 2.0], [0.5, 1.5]]
    client.fail = True
    with caplog.at_level(logging.WARNING, logger="util.visualizer"):
        vis.plot_current_losses(30, {"G": 0.1, "D": 0.1})
        vis.display_current_results(VISUALS, epoch=2, step=30, save_result=True)
    assert vis.vis is None and len(caplog.records) == 1


def test_loss_log_lines(tmp_path, capsys):
    vis = make_vis(tmp_path)
    msg = vis.print_current_losses(3, 400, {"G_A": 0.1234, "D_A": 2.0}, 0.1234, 0.0021)
    assert msg == "(epoch: 3, iters: 400, time: 0.123, data: 0.002) G_A: 0.123 D_A: 2.000"
    msg2 = vis.print_current_losses(3, 500, {"G_A": 1.0}, 1.0, 0.0, lr=2e-4)
    assert msg2 == "(epoch: 3, iters: 500, time: 1.000, data: 0.000, lr: 2.000e-04) G_A: 1.000"
    assert msg in capsys.readouterr().out
    lines = (tmp_path / "exp" / "loss_log.txt").read_text().splitlines()
    assert lines[0].startswith("================ Training Loss") and lines[1:] == [msg, msg2]


def test_metrics_log_and_history(tmp_path):
    vis = make_vis(tmp_path)
    vis.log_metrics(1000, {"fid": 12.34567, "kid": 0.01})
    vis.log_metrics(2000, {"fid": 10.0})
    lines = (tmp_path / "exp" / "metrics_log.txt").read_text().splitlines()
    assert lines == ["(step: 1000) fid: 12.3457 kid: 0.0100", "(step: 2000) fid: 10.0000"]
    assert vis.metric_history["fid"] == ([1000, 2000], [12.34567, 10.0])


def test_html_saved_per_epoch_newest_first(tmp_path):
    vis = make_vis(tmp_path)
    vis.display_current_results(VISUALS, epoch=1, step=0, save_result=False)  # first call of an epoch saves
    vis.display_current_results({"real_A": torch.ones(1, 3, 8, 8)}, epoch=1, step=1, save_result=False)
    vis.display_current_results(VISUALS, epoch=2, step=2, save_result=True)
    images = tmp_path / "exp" / "web" / "images"
    assert sorted(os.listdir(images)) == [f"epoch00{e}_{k}.png" for e in (1, 2) for k in ("fake_B", "real_A")]
    assert (
        tensor2im(torch.zeros(1, 3, 8, 8)).tolist()
        == np.array(Image.open(images / "epoch001_real_A.png")).tolist()
    )
    parsed = parse(tmp_path / "exp" / "web" / "index.html")
    assert parsed.text[:4] == ["Experiment name = exp", "epoch [2]", "real_A", "fake_B"]
    assert parsed.srcs == [f"images/epoch00{e}_{k}.png" for e in (2, 1) for k in ("real_A", "fake_B")]


def test_loss_plot_is_svg_and_needs_no_matplotlib(tmp_path, monkeypatch):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as if not installed
    vis = make_vis(tmp_path)
    assert vis.save_loss_plot() is None  # nothing logged yet
    for step in range(5):
        vis.plot_current_losses(step, {"G": 1.0 / (step + 1), "D": 0.5 if step != 2 else float("nan")})
    vis.log_metrics(4, {"fid": 30.0})
    path = vis.save_loss_plot()
    assert path == str(tmp_path / "exp" / "web" / "loss_curves.svg")
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == 3  # G and D in the loss panel, fid in the metric panel
    assert [len(pl.get("points").split()) for pl in lines] == [5, 4, 1]  # the NaN is left out
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert {"G", "D", "fid", "loss", "metric"} <= set(texts)
    assert "loss_curves.svg" in parse(tmp_path / "exp" / "web" / "index.html").srcs


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(3.0, 3.0) == [3.0]
    ticks = nice_ticks(-7.3, 1234.0)
    assert ticks[0] >= -7.3 and ticks[-1] <= 1234.0 and 3 <= len(ticks) <= 8


def test_web_images_keep_only_the_newest_rows_and_the_page_matches_the_disk(tmp_path):
    vis = make_vis(tmp_path, web_keep_last=3)
    images = tmp_path / "exp" / "web" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(images / "epoch000_real_A.png")  # a row left by an earlier run
    for epoch in range(1, 8):
        vis.display_current_results(VISUALS, epoch=epoch, step=epoch, save_result=True)
    assert sorted(os.listdir(images)) == [
        f"epoch00{e}_{k}.png" for e in (5, 6, 7) for k in ("fake_B", "real_A")
    ]
    parsed = parse(tmp_path / "exp" / "web" / "index.html")
    assert parsed.srcs == [f"images/epoch00{e}_{k}.png" for e in (7, 6, 5) for k in ("real_A", "fake_B")]
    assert all((tmp_path / "exp" / "web" / src).is_file() for src in parsed.srcs)


def test_write_page_at_epoch_end_without_a_display_step(tmp_path):
    vis = make_vis(tmp_path)
    vis.plot_current_losses(1, {"G": 1.0})
    path = vis.write_page(VISUALS, epoch=1)
    parsed = parse(path)
    assert parsed.srcs == ["loss_curves.svg", "images/epoch001_real_A.png", "images/epoch001_fake_B.png"]
    assert make_vis(tmp_path / "off", use_html=False).write_page(VISUALS, epoch=1) is None


def test_page_memory_stays_flat_over_many_epochs(tmp_path):
    """The page once grew by a row per epoch forever; with the rows bounded its size stops growing."""
    vis = make_vis(tmp_path, web_keep_last=5)
    index = tmp_path / "exp" / "web" / "index.html"
    sizes = []
    for epoch in range(1, 31):
        vis.display_current_results(VISUALS, epoch=epoch, step=epoch, save_result=True)
        sizes.append(index.stat().st_size)
    assert max(sizes[10:]) - min(sizes[10:]) <= 20  # only the epoch numbers' digits may differ


def test_tensorboard_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    vis = make_vis(tmp_path, tensorboard=True)
    vis.plot_current_losses(1, {"G": 1.0})
    vis.log_metrics(1, {"fid": 2.0})
    vis.display_current_results(VISUALS, epoch=1, step=1, save_result=True)
    vis.close()
    events = [f for f in os.listdir(tmp_path / "exp" / "tensorboard") if f.startswith("events.out.tfevents")]
    assert len(events) == 1 and os.path.getsize(tmp_path / "exp" / "tensorboard" / events[0]) > 0


def test_missing_tensorboard_warns_once(tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with caplog.at_level(logging.WARNING, logger="util.visualizer"):
        vis = make_vis(tmp_path, tensorboard=True)
        vis.plot_current_losses(1, {"G": 1.0})
    assert vis.writer is None and len(caplog.records) == 1


def test_non_main_process_writes_nothing(tmp_path, capsys):
    vis = make_vis(tmp_path, display_id=1, tensorboard=True, is_main_process=False)
    msg = vis.print_current_losses(1, 1, {"G": 1.0}, 0.0, 0.0)
    vis.plot_current_losses(1, {"G": 1.0})
    vis.log_metrics(1, {"fid": 1.0})
    vis.display_current_results(VISUALS, epoch=1, step=1, save_result=True)
    assert vis.save_loss_plot() is None and msg.endswith("G: 1.000")
    vis.close()
    assert not (tmp_path / "exp").exists() and capsys.readouterr().out == ""


def test_short_training_writes_the_page_and_the_plot(tmp_path):
    """The quick start never reached --display_freq, so it never had a page; now every epoch end writes it."""
    from options.train_options import TrainOptions
    from util.trainer import Trainer

    args = "--model cycle_gan --ngf 8 --ndf 8 --load_size 32 --crop_size 32 --max_dataset_size 2 --n_epochs 1"
    args += " --n_epochs_decay 1 --display_id 0 --num_threads 0 --no_progress --print_freq 1 --gpu_ids -1"
    args += f" --checkpoints_dir {tmp_path} --name quick --save_epoch_freq 0"
    Trainer(TrainOptions().parse(args.split(), save=False)).fit()
    web = tmp_path / "quick" / "web"
    parsed = parse(web / "index.html")
    assert parsed.srcs[0] == "loss_curves.svg" and (web / "loss_curves.svg").stat().st_size > 0
    assert "epoch [2]" in parsed.text and "epoch [1]" in parsed.text
    assert all((web / src).is_file() for src in parsed.srcs)
