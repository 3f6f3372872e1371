"""Scale-out and resume: sharded runs on a real local Dask cluster, killed workers, killed CLIs, bad outputs.

Every cluster here is a real ``LocalCluster(processes=True, n_workers=2, threads_per_worker=1)``
on loopback; the fixtures close it whatever happens.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from miam_explain.cli import main
from miam_explain.errors import ConfigError
from miam_explain.explain import scale
from miam_explain.explain import shapley
from miam_explain.explain.scale import ZarrStore

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
#: The prediction run most tests shard: exact, with interactions, every target, 36 test sites.
PREDICTION = dict(group="spectral_bands", target="all", method="exact", interactions=True, device="cpu")


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def cluster():
    """A real two-process local cluster, closed at the end of the module."""
    import logging

    saved = dict(os.environ)  # the nannies set OMP_NUM_THREADS=1 here; later tests must not inherit it
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    ) as local, distributed.Client(local) as client:
        yield local, client
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def in_memory(run, synth_data):
    """The single-process, in-memory prediction result that every sharded one must equal."""
    return shapley(run, synth_data, **PREDICTION)


def _assert_same(got: xr.Dataset, want: xr.Dataset, *, atol: float) -> None:
    """Same variables, dims, coords and provenance; values equal within ``atol`` (0: bitwise)."""
    assert set(got.data_vars) == set(want.data_vars)
    for name in want.data_vars:
        assert got[name].dims == want[name].dims, name
        if atol == 0:
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
        else:
            np.testing.assert_allclose(got[name].values, want[name].values, rtol=0, atol=atol, err_msg=name)
    assert set(got.coords) == set(want.coords)
    for name in want.coords:
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert {k: v for k, v in got.attrs.items() if k != "created"} == {k: v for k, v in want.attrs.items() if k != "created"}


def _records(store: Path) -> dict[str, tuple[int, int]]:
    """Chunk record files of a store (``K.0``, not zarr's ``*.partial`` temporaries): name -> (inode, mtime_ns)."""
    folder = store / "_run" / "records"
    if not folder.is_dir():
        return {}
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir() if re.fullmatch(r"\d+\.0", p.name)}


# ----------------------------------------------------------------------------------------------------------------------
# (a) sharded runs equal the single-process result


def test_sharded_prediction_equals_single_process(run, synth_data, cluster, in_memory, tmp_path):
    local, client = cluster
    sharded = shapley(run, synth_data, scheduler=local.scheduler_address, store=tmp_path / "p.zarr", chunk_size=7, **PREDICTION)
    assert sharded.sizes["site"] == 36  # 6 chunks of 7 sites (the last one short)
    _assert_same(sharded, in_memory, atol=1e-6)
    np.testing.assert_allclose(sharded["shapley"].sum("player"), sharded["v_full"] - sharded["v_empty"], atol=1e-9)
    # every worker loaded the model once, however many chunks it ran
    stats = client.run(scale.worker_stats)
    assert sum(s.get("prediction_chunks", 0) for s in stats.values()) >= 6
    assert all(s.get("model_loads", 0) <= 1 for s in stats.values()), stats
    # sampled: the same seed and coalition budget in every site chunk, so the same draws as in memory
    kwargs = dict(group="spectral_bands", target="richness", method="kernel", budget=36 * 30, seed=5, device="cpu")
    sampled = shapley(run, synth_data, scheduler=local.scheduler_address, chunk_size=10, **kwargs)
    _assert_same(sampled, shapley(run, synth_data, **kwargs), atol=1e-6)
    assert float(sampled["shapley_se"].max()) > 0


def test_sharded_performance_equals_single_process(run, synth_data, cluster, tmp_path):
    local, client = cluster
    for kwargs in (
        dict(method="exact", interactions=True),  # the 2^4 value table, in chunks of 5 coalitions
        dict(method="permutation", budget=36 * 60, seed=2),  # coalitions drawn here, evaluated on the workers
    ):
        common = dict(group="spectral_bands", value="performance", device="cpu", **kwargs)
        sharded = shapley(run, synth_data, scheduler=local.scheduler_address, store=tmp_path / f"{kwargs['method']}.zarr", chunk_size=5, **common)
        _assert_same(sharded, shapley(run, synth_data, **common), atol=1e-9)
    stats = client.run(scale.worker_stats)
    assert all(s.get("performance_chunks", 0) > 0 for s in stats.values()), stats  # both workers took chunks


def test_cli_scheduler_flag(run, synth_data, cluster, in_memory, tmp_path, capsys):
    local, _ = cluster
    out = tmp_path / "r.nc"
    code = main(["shapley", "--model", str(run), "--data", str(synth_data), "--group", "spectral_bands", "--target", "all",
                 "--method", "exact", "--interactions", "--device", "cpu", "--scheduler", local.scheduler_address,
                 "--chunk-size", "9", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert not (tmp_path / "r.store.zarr").exists()  # the store next to a .nc is removed once the .nc is written
    with xr.open_dataset(out, engine="h5netcdf") as written:
        _assert_same(written.load(), in_memory, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# (b) a worker killed mid-run


class _KillFirstChunkWorker(distributed.WorkerPlugin):
    """Kills the worker process that starts the first prediction chunk (once per cluster, via a marker file)."""

    name = "kill-first-chunk-worker"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and "prediction_chunk" in str(key):
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            os._exit(1)


def test_worker_killed_mid_run_completes_with_identical_results(run, synth_data, cluster, in_memory, tmp_path):
    import cloudpickle

    local, client = cluster
    reference = shapley(run, synth_data, scheduler=local.scheduler_address, chunk_size=6, **PREDICTION)
    marker = tmp_path / "killed"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the plugin travels to the workers by value
    try:
        client.register_plugin(_KillFirstChunkWorker(str(marker)))
        survived = shapley(run, synth_data, scheduler=local.scheduler_address, store=tmp_path / "k.zarr", chunk_size=6, **PREDICTION)
    finally:
        client.unregister_worker_plugin(_KillFirstChunkWorker.name)
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists()  # a worker really died running a chunk
    _assert_same(survived, reference, atol=0)  # the retried chunk is bitwise the same
    _assert_same(survived, in_memory, atol=1e-6)
    client.wait_for_workers(2, timeout=60)  # the nanny brought the worker back


# ----------------------------------------------------------------------------------------------------------------------
# (c) interrupted runs resume without recomputing


def test_interrupted_stored_run_resumes_without_recomputing(run, synth_data, tmp_path, monkeypatch):
    store = tmp_path / "r.zarr"
    kwargs = dict(group="spectral_bands", target="all", method="permutation", budget=36 * 50, seed=1, device="cpu", chunk_size=5)
    original = ZarrStore.write
    calls = []

    def interrupted(self, index, data, record):
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the fourth chunk is being written
        calls.append(index)
        original(self, index, data, record)

    monkeypatch.setattr(ZarrStore, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shapley(run, synth_data, store=store, **kwargs)
    monkeypatch.setattr(ZarrStore, "write", original)
    with pytest.raises(Exception):
        xr.open_zarr(store)  # an unfinished store does not open as a result
    before = _records(store)
    assert len(before) == 3
    written = []
    monkeypatch.setattr(ZarrStore, "write", lambda self, index, data, record: (written.append(index), original(self, index, data, record)))
    resumed = shapley(run, synth_data, store=store, **kwargs)
    assert sorted(written) == sorted(set(range(8)) - set(calls))  # only the missing chunks were computed
    after = _records(store)
    assert {name: after[name] for name in before} == before  # the chunks written before are untouched
    monkeypatch.setattr(ZarrStore, "write", original)
    uninterrupted = shapley(run, synth_data, store=tmp_path / "u.zarr", **kwargs)
    _assert_same(resumed, uninterrupted, atol=0)
    # a finished store is a result: the same command again computes nothing
    again = shapley(run, synth_data, store=store, **kwargs)
    _assert_same(again, resumed, atol=0)
    assert _records(store) == after


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "miam_explain.cli", "shapley", *args]


@pytest.mark.slow
def test_cli_killed_and_restarted_resumes(run, synth_data, tmp_path):
    import zarr

    common = ["--model", str(run), "--data", str(synth_data), "--group", "modalities", "--target", "richness",
              "--method", "permutation", "--budget", str(36 * 40), "--seed", "4", "--device", "cpu", "--chunk-size", "2"]
    store = tmp_path / "r.zarr"
    # one thread, stated: CPU float reductions depend on the thread count (and the module's LocalCluster has
    # set OMP_NUM_THREADS=1 in this process's environment: dask's nannies do that)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cli(*common, "--out", str(store), "--quiet"), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and len(_records(store)) < 3:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed: " + proc.stderr.read().decode()[-500:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert not (store / ".zgroup").exists()  # killed: nothing looks like a finished result
    before = _records(store)
    assert 3 <= len(before) < 18
    work = zarr.open_group(str(store / "_run"), mode="r")
    done = np.asarray(work["records"][:, 0]).astype(bool)
    rows = np.repeat(done, 2)[:36]  # the sites of the chunks written before the kill
    snapshot = {name: np.asarray(work[name][:])[rows] for name in ("shapley", "shapley_se", "v_empty", "v_full")}
    restarted = subprocess.run(_cli(*common, "--out", str(store)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr[-1000:]
    match = re.search(r"(\d+) chunks of 2 sites, (\d+) already written, (\d+) to compute", restarted.stderr)
    assert match, restarted.stderr[-1000:]
    assert (int(match[1]), int(match[2]), int(match[3])) == (18, int(done.sum()), 18 - int(done.sum()))
    assert f"computed {18 - int(done.sum())} chunks, reused {int(done.sum())}" in restarted.stderr
    after = _records(store)
    assert {name: after[name] for name in before} == before  # same inode, same mtime: not recomputed
    resumed = xr.open_zarr(store).load()
    for name, values in snapshot.items():  # the finished result holds the killed run's chunks, byte for byte
        np.testing.assert_array_equal(resumed[name].values[rows], values, err_msg=name)
    # and equals an uninterrupted run (here in this process, whose thread count differs: float32 rounding)
    _assert_same(resumed, shapley(run, synth_data, **dict(group="modalities", target="richness", method="permutation",
                                                          budget=36 * 40, seed=4, device="cpu")), atol=1e-6)


@pytest.mark.slow
def test_cli_workers_flag_starts_and_closes_a_local_cluster(run, synth_data, in_memory, tmp_path, capsys):
    import psutil

    before = {child.pid for child in psutil.Process().children(recursive=True)}
    omp = os.environ.get("OMP_NUM_THREADS")
    out = tmp_path / "w.zarr"
    code = main(["shapley", "--model", str(run), "--data", str(synth_data), "--group", "spectral_bands", "--target", "all",
                 "--method", "exact", "--interactions", "--device", "cpu", "--workers", "2", "--chunk-size", "12",
                 "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    _assert_same(xr.open_zarr(out).load(), in_memory, atol=1e-6)
    _, alive = psutil.wait_procs([c for c in psutil.Process().children(recursive=True) if c.pid not in before], timeout=20)
    assert not alive  # the local cluster's worker processes are gone
    assert os.environ.get("OMP_NUM_THREADS") == omp  # and the environment the nannies touched is restored


# ----------------------------------------------------------------------------------------------------------------------
# (d) outputs that cannot be written


def test_read_only_output_folder_is_a_one_line_error(run, synth_data, read_only_folder, one_line_error):
    for name in ("r.zarr", "r.nc"):
        code = main(["shapley", "--model", str(run), "--data", str(synth_data), "--group", "spectral_bands",
                     "--target", "richness", "--device", "cpu", "--out", str(read_only_folder / name), "--quiet"])
        assert code == 2
        line = one_line_error()
        assert "cannot write" in line and "Permission denied" in line and "choose a folder you can write to" in line
        assert list(read_only_folder.iterdir()) == []


def test_full_disk_leaves_nothing_looking_complete(run, synth_data, tmp_path, monkeypatch, capsys, one_line_error):
    from zarr.storage import LocalStore

    out = tmp_path / "r.zarr"
    args = ["shapley", "--model", str(run), "--data", str(synth_data), "--group", "spectral_bands", "--target", "all",
            "--method", "exact", "--interactions", "--device", "cpu", "--chunk-size", "9", "--out", str(out), "--quiet"]
    real_set = LocalStore.set

    async def full_disk(self, key, value):
        if key.startswith("shapley_se/1."):  # chunk 1: its shapley values are written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return await real_set(self, key, value)

    monkeypatch.setattr(LocalStore, "set", full_disk)
    assert main(args) == 2
    line = one_line_error()
    assert "No space left on device" in line and "free some disk space" in line and "rerun the same command" in line
    monkeypatch.setattr(LocalStore, "set", real_set)
    assert not (out / ".zgroup").exists()  # no result at the root
    with pytest.raises(Exception):
        xr.open_zarr(out)
    assert main(["map", str(out), "--player", "red", "--out", str(tmp_path / "m.png")]) == 2  # readers refuse it
    capsys.readouterr()
    done = ZarrStore(out, "").records()[:, 0]
    assert done[0] == 1 and done[1] == 0  # the half-written chunk has no record: it does not count
    chunk0 = _records(out)["0.0"]
    assert main(args) == 0  # free space again: the same command finishes the run
    assert _records(out)["0.0"] == chunk0
    assert xr.open_zarr(out).sizes["site"] == 36


# ----------------------------------------------------------------------------------------------------------------------
# (e) a restart with another configuration


def test_restart_with_another_configuration_is_refused(run, synth_data, tmp_path, capsys, one_line_error):
    store = tmp_path / "r.zarr"
    kwargs = dict(group="spectral_bands", target="richness", method="exact", device="cpu", chunk_size=12)
    shapley(run, synth_data, store=store, **kwargs)
    for change, key in ((dict(target="all"), "target"), (dict(chunk_size=6), "chunk_size")):
        with pytest.raises(ConfigError, match=rf"another {key} .*--overwrite"):
            shapley(run, synth_data, store=store, **{**kwargs, **change})
    code = main(["shapley", "--model", str(run), "--data", str(synth_data), "--group", "spectral_bands", "--target",
                 "richness", "--method", "exact", "--device", "cpu", "--chunk-size", "12", "--split", "val",
                 "--out", str(store), "--quiet"])
    assert code == 2
    line = one_line_error()
    assert "another split" in line and "--overwrite" in line and "another --out" in line
    # --overwrite starts again with the new configuration
    redone = shapley(run, synth_data, store=store, overwrite=True, **{**kwargs, "context": "all"})
    assert redone.attrs["context"] == "all"
    # an existing result that is not a store is not touched
    plain = tmp_path / "plain.zarr"
    plain.mkdir()
    with pytest.raises(Exception, match="not a resumable store"):
        shapley(run, synth_data, store=plain, **kwargs)


def test_bad_scale_options_are_one_line_errors(run, synth_data, tmp_path, capsys, one_line_error):
    base = ["shapley", "--model", str(run), "--data", str(synth_data), "--group", "spectral_bands", "--device", "cpu", "--quiet"]
    cases = [
        (["--workers", "0", "--out", str(tmp_path / "a.nc")], "workers must be a positive whole number"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "a.nc")], "not allowed with argument"),
        (["--chunk-size", "8", "--out", str(tmp_path / "a.nc")], "--chunk-size applies to stored or sharded runs"),
        (["--store", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "a.zarr")], "--store is for a .nc --out"),
        (["--chunk-size", "0", "--out", str(tmp_path / "a.zarr")], "chunk_size must be a positive whole number"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 2, extra
        assert message in one_line_error(), extra
    with pytest.raises(ConfigError, match="checkpoint path"):
        from miam_explain.models.checkpoint import load_model

        shapley(load_model(run), synth_data, group="spectral_bands", store=tmp_path / "m.zarr")
