"""The one-command demo: synthetic data -> prepared dataset -> MIAM model -> subset table -> four reports.

Every step writes its output atomically and is skipped when that output already exists, so
an interrupted demo picks up where it stopped when run again with the same ``out``
(training resumes from its last checkpoint).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from miam_explain.files import atomic_path, remove_path, start_folder
from miam_explain.errors import ConfigError, OutputExistsError

__all__ = ["DemoResult", "run_demo"]

#: The reports the demo writes, in order.
REPORTS: tuple[str, ...] = ("modalities", "species", "ndvi", "heatwave")


@dataclass
class DemoResult:
    """Where the demo put everything, and how long each step took.

    Attributes:
        out: The demo folder.
        raw: Synthetic raw GeoPlant folder (with ``truth.json``).
        data: Consolidated dataset.
        run: Training run folder (checkpoints, log).
        evaluation: CSV table of the paper subsets on the test split.
        reports: ``{kind: report.html path}``.
        seconds: Wall time of each step (0 when it was skipped).
    """

    out: Path
    raw: Path
    data: Path
    run: Path
    evaluation: Path
    reports: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    out: str | os.PathLike = "miam-demo",
    *,
    sites: int = 3000,
    seed: int = 0,
    heatwave_year: int = 2003,
    config: str | os.PathLike = "demo",
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole pipeline on built-in synthetic data.

    Args:
        out: Demo folder; created, or continued when it holds an interrupted demo.
        sites: Number of synthetic sites.
        seed: Seed of the data, the training and the reports.
        heatwave_year: Year of the planted heatwave (the heatwave report should find it).
        config: Training config: a TOML file or a shipped name (``demo``).
        device: ``auto``, ``cpu`` or ``cuda``.
        overwrite: Delete ``out`` first and start over.
        progress: Show progress bars.
        log: Where step messages go.

    Returns:
        A :class:`DemoResult` with the paths of everything written.

    Raises:
        OutputExistsError: ``out`` exists and is not a demo folder.
    """
    from miam_explain.data.glc import prepare_geoplant
    from miam_explain.data.synth import synthesize
    from miam_explain.reports import run_report
    from miam_explain.runtime.subsets import evaluate
    from miam_explain.training.config import load_config
    from miam_explain.training.trainer import train

    out = Path(out)
    if sites < 100:
        raise ConfigError(f"the demo needs at least 100 sites to make train/val/test splits (got {sites}); pass --sites 3000")
    marker = out / ".miam-demo"
    if out.exists():
        if not marker.is_file():
            raise OutputExistsError(f"{str(out)!r} exists and is not a miam-explain demo folder; choose another --out")
        if overwrite:
            remove_path(out)
    if not marker.is_file():
        start_folder(out, lambda: marker.write_text("miam-explain demo folder\n"), exist_ok=True)
    result = DemoResult(out=out, raw=out / "raw", data=out / "data.zarr", run=out / "run",
                        evaluation=out / "evaluation.csv")

    def step(name: str, done: bool, action: Callable[[], None]) -> None:
        if done:
            log(f"[demo] {name}: already done, skipped")
            result.seconds[name] = 0.0
            return
        log(f"[demo] {name} ...")
        started = time.perf_counter()
        action()
        result.seconds[name] = time.perf_counter() - started
        log(f"[demo] {name}: {result.seconds[name]:.0f} s")

    step(f"synthesise {sites} sites (heatwave {heatwave_year})", result.raw.exists(),
         lambda: synthesize(result.raw, n_sites=sites, seed=seed, heatwave_year=heatwave_year, progress=progress))
    step("prepare the consolidated dataset", result.data.exists(),
         lambda: prepare_geoplant(result.raw, result.data, progress=progress))
    run_config = load_config(config).with_overrides(seed=seed, device=device)
    finished = result.run / "best.safetensors"
    step("train a MIAM model", finished.is_file() and (result.run / "done").is_file(),
         lambda: _train(train, result, run_config, progress))

    def evaluate_subsets() -> None:
        table = evaluate(result.run, data=result.data, split="test", device=device, progress=progress)
        with atomic_path(result.evaluation) as tmp:
            table.to_csv(tmp, index=False)
        log(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

    step("evaluate the paper subsets", result.evaluation.exists(), evaluate_subsets)
    (out / "reports").mkdir(exist_ok=True)
    for kind in REPORTS:
        folder = out / "reports" / kind
        step(f"report {kind}", (folder / "report.html").is_file(),
             lambda kind=kind, folder=folder: run_report(kind, result.run, result.data, out=folder, seed=seed,
                                                         device=device, progress=progress))
        result.reports[kind] = folder / "report.html"
    return result


def _train(train, result: DemoResult, config, progress: bool) -> None:
    """Train, or resume an interrupted run; mark the run finished."""
    resume = (result.run / "last.safetensors").is_file()
    if result.run.exists() and not resume:
        remove_path(result.run)  # killed before its first checkpoint: nothing to keep
    train(result.data, config, result.run, resume=resume, progress=progress)
    (result.run / "done").write_text("finished\n")
