"""A training run killed with SIGKILL resumes to the very same weights as an uninterrupted run.

``miam-explain train`` runs in subprocesses. One run goes to the end; another is
killed twice (once before its first checkpoint, once in the middle of an epoch)
and continued with ``--resume`` each time. Every tensor of the final
``last.safetensors`` (weights, optimizer state, random generator states) must be
bitwise equal. Checkpoints are written to a temporary sibling and renamed into
place, so a kill in the middle of a write leaves the previous checkpoint intact:
a second test kills a process that rewrites a checkpoint in a loop and checks the
file each time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from miam_explain.models.checkpoint import CHECKPOINT_FORMAT, read_checkpoint

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[model]
width = 16
depth = 1
heads = 2
mlp_ratio = 2.0

[masking]
strategy = "miam"

[training]
epochs = 6
batch_size = 8
lr = 0.003
patience = 20
seed = 5
collapse = true
device = "cpu"
"""
#: One thread everywhere: the runs being compared use the same arithmetic order.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _train(data: Path, config: Path, out: Path, *, resume: bool = False) -> subprocess.Popen:
    argv = [sys.executable, "-m", "miam_explain.cli", "train", "--data", str(data), "--config", str(config),
            "--out", str(out), "--quiet"] + (["--resume"] if resume else [])
    return subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epochs_logged(out: Path) -> list[dict]:
    log = out / "log.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _wait_for(condition, process: subprocess.Popen, *, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"training ended (status {process.returncode}) before the kill point: {err[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("training did not reach the kill point in time")
        time.sleep(0.02)


def _kill(process: subprocess.Popen) -> None:
    assert process.poll() is None, "the run finished before it could be killed; give it more epochs"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]


def test_sigkill_then_resume_gives_bitwise_identical_weights(synth_data, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    full, cut = tmp_path / "full", tmp_path / "cut"
    reference = _train(synth_data, config, full)  # runs alongside the interrupted one

    # kill 1: as soon as the run folder exists, before (or right at) the first checkpoint
    first = _train(synth_data, config, cut)
    _wait_for(lambda: (cut / "config.toml").is_file(), first)
    _kill(first)

    # kill 2: in the middle of epoch 3, after the checkpoint of epoch 2
    second = _train(synth_data, config, cut, resume=True)
    _wait_for(lambda: len(_epochs_logged(cut)) >= 2, second)
    epoch_seconds = float(np.median([r["seconds"] for r in _epochs_logged(cut)]))
    time.sleep(0.5 * epoch_seconds)
    _kill(second)
    _, state = read_checkpoint(cut / "last.safetensors")  # the checkpoint on disk is whole
    killed_at = state["epoch"]
    assert 2 <= killed_at < 6

    # resume to the end
    third = _train(synth_data, config, cut, resume=True)
    _finish(third)
    _finish(reference)

    a, meta_a = read_checkpoint(full / "last.safetensors")
    b, meta_b = read_checkpoint(cut / "last.safetensors")
    assert sorted(a) == sorted(b)
    assert any(key.startswith("optim.") for key in a) and "rng.torch" in a
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    assert meta_a["epoch"] == meta_b["epoch"] == 6
    assert meta_a["history"][-1]["val"] == meta_b["history"][-1]["val"]
    assert meta_a["masking"] == meta_b["masking"]
    best_a, _ = read_checkpoint(full / "best.safetensors")
    best_b, _ = read_checkpoint(cut / "best.safetensors")
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)
    # the log is whole, and nothing half-written is left behind
    assert [r["epoch"] for r in _epochs_logged(cut)] == list(range(1, 7))
    assert not [p.name for p in cut.iterdir() if p.name.startswith(".")]


WRITER = """
import json, sys, torch
from miam_explain.models.checkpoint import CHECKPOINT_FORMAT, write_checkpoint
path, i = sys.argv[1], 0
while True:
    i += 1
    tensors = {"model.a": torch.full((3_000_000,), float(i)), "model.b": torch.arange(1000) + i}
    write_checkpoint(path, tensors, json.dumps({"format": CHECKPOINT_FORMAT, "i": i}))
    print(i, flush=True)
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "last.safetensors"
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(3):
        process = subprocess.Popen([sys.executable, str(script), str(path)], cwd=ROOT, env=ENV,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = process.stdout.readline()  # one checkpoint is complete
        assert first.strip(), process.stderr.read()
        time.sleep(float(rng.uniform(0.05, 0.4)))  # the loop spends nearly all its time writing
        process.send_signal(signal.SIGKILL)
        process.communicate()
        tensors, document = read_checkpoint(path)  # whole, with a matching checksum
        i = document["i"]
        assert document["format"] == CHECKPOINT_FORMAT and i >= 1
        assert torch.equal(tensors["model.a"], torch.full((3_000_000,), float(i)))
        assert torch.equal(tensors["model.b"], torch.arange(1000) + i)
        seen.append(i)
    assert seen[-1] >= 1
