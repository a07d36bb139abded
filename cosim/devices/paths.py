"""Where device files live: the Verilog-A sources and the per-user cache."""

from __future__ import annotations

import os
from pathlib import Path


def models_dir() -> Path:
    """Directory holding the .va sources: ``$COSIM_MODELS_DIR`` or the repository's ``models/``."""
    env = os.environ.get("COSIM_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def cache_root() -> Path:
    """Per-user cache directory of cosim (``$XDG_CACHE_HOME/cosim`` or ``~/.cache/cosim``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cosim"
