"""Training: configuration, losses and the masked training loop.

* :mod:`~miam_explain.training.config`: :class:`RunConfig` and :class:`TrainingConfig` (TOML, overrides);
* :mod:`~miam_explain.training.loss`: the full weighted loss and the cross-entropy;
* :mod:`~miam_explain.training.state`: :class:`RunState`, built fresh, restored from and saved to checkpoints;
* :mod:`~miam_explain.training.batches`: an epoch's batches, one permutation in memory or shuffled chunks streamed from the store;
* :mod:`~miam_explain.training.epoch`: one epoch of training, validation and its record;
* :mod:`~miam_explain.training.trainer`: :func:`train`, the run from start (or resume) to early stop.
"""
