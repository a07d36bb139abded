"""Networks mapped onto tiles, pulse optimizers (SSM and baselines), the training loop, metrics.

Public names:

- :func:`run_training` (loop.py): ``run_training(config, *, progress=True, output_dir=None)
  -> TrainResult`` — in-situ training on tiles beside a float reference; a pure function of
  the config (and its seed). :class:`TrainResult`; :func:`load_data`, :func:`batches`, :func:`accuracy`,
  :func:`build_layers`.
- :mod:`.config`: :class:`TrainingConfig` and its sections, :func:`load_config` (TOML +
  ``--set`` overrides), :func:`validate_training_config` (dict → config),
  :func:`apply_overrides`, :func:`config_to_dict`, :func:`to_toml`, :func:`load_device_card`,
  :data:`STUDY_SECTIONS` (per-section validators for a study's task registry).
- :mod:`.metrics`: :class:`PulseLog` (per-device pulses, CSV/NPZ export),
  :func:`convergence_epoch`.
- :mod:`.figures`: :func:`write_outputs` (metrics.json, epochs.csv, config.toml, pulse log,
  figures).
- :mod:`.ablation`: :data:`ABLATIONS`, :func:`run_ablation`, :func:`format_table`.
- Sub-packages :mod:`.networks` (MLP, CNN on injected MatVec layers), :mod:`.optimizers`
  (sgd-pulse, manhattan, mixed-precision, ssm, FloatSGD), and modules :mod:`.data` (digits,
  IDX), :mod:`.curves` (analytic pulse curves).

Imports :mod:`cosim.array` and below, never :mod:`cosim.study` or :mod:`cosim.cli`.
"""

from cosim.train.ablation import ABLATIONS, format_table, run_ablation
from cosim.train.config import (
    STUDY_SECTIONS,
    TrainingConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    load_device_card,
    to_toml,
    validate_training_config,
)
from cosim.train.loop import (
    TrainResult,
    accuracy,
    batches,
    build_layers,
    load_data,
    run_training,
)
from cosim.train.metrics import PulseLog, convergence_epoch

__all__ = [
    "ABLATIONS", "STUDY_SECTIONS", "PulseLog", "TrainResult", "TrainingConfig", "accuracy", "apply_overrides",
    "batches", "build_layers", "config_to_dict", "convergence_epoch", "format_table", "load_config",
    "load_data", "load_device_card", "run_ablation", "run_training", "to_toml",
    "validate_training_config",
]
