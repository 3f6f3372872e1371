"""Training configuration: frozen dataclasses read from TOML, with command-line overrides.

A config file has up to three tables::

    [model]        # ModelConfig fields: width, depth, heads, mlp_ratio, dropout, plr_frequencies, plr_sigma
    [masking]      # strategy = "miam", then the strategy's hyperparameters (kappa, lam, ...)
    [training]     # TrainingConfig fields below

Unknown tables or keys are refused with a message that lists the valid ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from miam_explain.files import read_toml
from miam_explain.errors import ConfigError

__all__ = ["TrainingConfig", "RunConfig", "load_config", "to_toml"]

_MODEL_KEYS = ("width", "depth", "heads", "mlp_ratio", "dropout", "plr_frequencies", "plr_sigma")


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation and bookkeeping.

    Attributes:
        epochs: Maximum number of epochs.
        batch_size: Sites per step.
        lr: Learning rate of schedule-free AdamW.
        weight_decay: Its weight decay.
        warmup_steps: Its warm-up steps.
        patience: Epochs without improvement of the early-stopping score before stopping.
        seed: Seed of the weights, the batch order, the masks and dropout.
        collapse: Train with the collapsed forward (faster; differs only in dropout noise).
        eval_batch_size: Sites per evaluation batch.
        device: ``auto`` (cuda when available), ``cpu`` or ``cuda``.
    """

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 0
    patience: int = 10
    seed: int = 0
    collapse: bool = False
    eval_batch_size: int = 512
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1 or self.patience < 1:
            raise ConfigError("epochs, batch_size, eval_batch_size and patience must be positive integers")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("lr must be positive and weight_decay non-negative")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device {self.device!r} must be auto, cpu or cuda")


@dataclass(frozen=True)
class RunConfig:
    """A whole training run: model architecture, masking strategy and training settings."""

    model: Mapping[str, Any] = field(default_factory=dict)
    strategy: str = "miam"
    masking: Mapping[str, float] = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-safe nested form (the same tables as a config file)."""
        return {
            "model": dict(self.model),
            "masking": {"strategy": self.strategy, **dict(self.masking)},
            "training": asdict(self.training),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> RunConfig:
        """Validate and build from nested tables; unknown keys raise :class:`ConfigError`."""
        unknown = sorted(set(data) - {"model", "masking", "training"})
        if unknown:
            raise ConfigError(f"{source}: unknown table(s) {unknown}; valid: [model], [masking], [training]")
        model = dict(data.get("model", {}))
        bad = sorted(set(model) - set(_MODEL_KEYS))
        if bad:
            raise ConfigError(f"{source}: unknown [model] key(s) {bad}; valid: {', '.join(_MODEL_KEYS)}")
        masking = dict(data.get("masking", {}))
        strategy = str(masking.pop("strategy", "miam"))
        training = dict(data.get("training", {}))
        valid = [f.name for f in fields(TrainingConfig)]
        bad = sorted(set(training) - set(valid))
        if bad:
            raise ConfigError(f"{source}: unknown [training] key(s) {bad}; valid: {', '.join(valid)}")
        try:
            training_config = TrainingConfig(**training)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        return cls(model=model, strategy=strategy, masking=masking, training=training_config)

    def with_overrides(self, *, strategy: str | None = None, **training: Any) -> RunConfig:
        """A copy with command-line overrides (``None`` values are ignored)."""
        changes = {k: v for k, v in training.items() if v is not None}
        valid = {f.name for f in fields(TrainingConfig)}
        bad = sorted(set(changes) - valid)
        if bad:
            raise ConfigError(f"unknown training option(s) {bad}")
        config = replace(self, training=replace(self.training, **changes))
        if strategy is not None and strategy != self.strategy:
            config = replace(config, strategy=strategy, masking={})
        return config


def packaged_configs() -> dict[str, Path]:
    """The configs shipped with the package (``training/configs/*.toml``), by name: ``demo``, ``geoplant``."""
    folder = Path(__file__).resolve().parents[1] / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def load_config(path: str | os.PathLike | None) -> RunConfig:
    """Read a TOML config file (``None``: the defaults, i.e. the paper's settings).

    A bare name such as ``demo`` or ``geoplant`` (no suffix, no such file) names a config
    shipped with the package (see :func:`packaged_configs`).
    """
    if path is None:
        return RunConfig()
    shipped = packaged_configs()
    if not Path(path).suffix and not Path(path).exists() and str(path) in shipped:
        path = shipped[str(path)]
    data = read_toml(path, what="config file", hint="see training/configs/ for examples")
    return RunConfig.from_dict(data, source=Path(path).name)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(config: RunConfig) -> str:
    """The resolved config as a TOML document (written next to the run's outputs)."""
    lines = []
    for table, values in config.to_dict().items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)
