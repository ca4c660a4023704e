"""--use_wandb in W&B offline mode: the run's own file records the options, losses, lr, images and metrics."""

import glob
import json
import struct
import sys
import time

import pytest

from options.train_options import TrainOptions
from util.trainer import Trainer
from util.wandb_logger import WandbLogger

BLOCK = 32 * 1024  # the .wandb file is a LevelDB-style log: 32 KiB blocks of (crc, length, type) chunks
HEADER = 7  # ":W&B" magic, 2-byte format id, 1-byte version


def read_records(path: str) -> list:
    """Every protobuf Record of a .wandb file (wandb's own Python reader is gone; the format is documented
    as LevelDB's log format with a 7-byte W&B header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B"
    records, pos, pending = [], HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if pos + 7 + length > len(data):  # a chunk still being written: not a record yet
            break
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def finished_records(path: str, limit: float = 60.0) -> list:
    """The records once the run's ``exit`` record is in the file: W&B's service process may still be writing
    the file after ``finish()`` returned on a loaded machine (a half-written record does not parse)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            records = read_records(path)
        except Exception:  # DecodeError of a record caught half-written
            if time.monotonic() > deadline:
                raise
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def history_rows(records) -> list[dict]:
    """One dict per logged step; nested values (an image's fields) are keyed 'images/fake_B.path'."""
    return [
        {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]


class FakeEvaluator:
    """Stands in for the FID evaluator (no Inception weights offline): the trainer's eval hook calls it."""

    def due(self, step):
        return step == 2

    def evaluate(self, model, epoch, step, device, visualizer):
        visualizer.log_metrics(step, {"fid": 12.5})
        return False


def test_offline_run_records_options_losses_images_and_fid(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = "--model cycle_gan --ngf 8 --ndf 8 --load_size 32 --crop_size 32 --max_dataset_size 3 --n_epochs 1"
    args += " --n_epochs_decay 0 --display_id 0 --num_threads 0 --no_progress --print_freq 1 --display_freq 2"
    args += f" --gpu_ids -1 --checkpoints_dir {tmp_path} --name wb --use_wandb --wandb_project_name proj"
    trainer = Trainer(TrainOptions().parse(args.split(), save=False))
    trainer.evaluator = FakeEvaluator()
    trainer.fit()
    (run_file,) = glob.glob(str(tmp_path / "wb" / "wandb" / "offline-run-*" / "run-*.wandb"))
    records = finished_records(run_file)
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.project == "proj" and run.display_name == "wb"
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["model"] == "cycle_gan" and config["ngf"] == 8 and config["use_wandb"] is True
    rows = history_rows(records)
    steps = [row["_step"] for row in rows]
    assert steps == [1, 2, 3]
    assert all({"loss/G_A", "loss/D_B", "lr"} <= set(row) for row in rows)
    assert rows[1]["metrics/fid"] == 12.5 and rows[1]["lr"] == pytest.approx(2e-4)
    assert rows[1]["images/fake_B._type"] == "image-file" and rows[1]["images/fake_B.width"] == 32
    run_dir = run_file.rsplit("/", 1)[0]
    assert (tmp_path / run_dir / "files" / rows[1]["images/fake_B.path"]).is_file()


def test_missing_wandb_is_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wandb", None)
    logger = WandbLogger("p", "exp", str(tmp_path), {})
    logger.log_losses(1, {"G": 1.0}, 0.1)
    logger.finish()
    assert logger.run is None
    assert len(caplog.records) == 1 and "pip install wandb" in caplog.records[0].getMessage()
