"""Shared fixtures and the ngspice policy.

SPICE tests carry ``@pytest.mark.ngspice``. With ``--ngspice=required`` (what CI uses) a missing
ngspice makes them fail; with ``if_available`` they skip with the reason.
"""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis sizes: the suite's default keeps each fuzz area to a few hundred cases; `make fuzz`
# (HYPOTHESIS_PROFILE=fuzz) runs 10,000+ per area with no deadline. Fuzz tests take their
# example counts from the loaded profile (settings().max_examples), so one switch sizes them.
# The suite's cases are derandomized (a fixed seed per test), so a CI run is reproducible; `make
# fuzz` draws new cases every run.
settings.register_profile("suite", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=10_000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def pytest_addoption(parser):
    parser.addoption("--ngspice", choices=("required", "if_available"), default="if_available",
                     help="whether tests marked ngspice must run (required) or may skip")


def ngspice_available() -> bool:
    return shutil.which("ngspice") is not None


def pytest_collection_modifyitems(config, items):
    if ngspice_available() or config.getoption("--ngspice") == "required":
        return
    skip = pytest.mark.skip(reason="ngspice not installed (run with --ngspice=required to fail instead)")
    for item in items:
        if "ngspice" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    """A seeded generator: every stochastic test is reproducible."""
    return np.random.default_rng(12345)


def _cosim_logging() -> dict:
    manager = logging.root.manager
    return {name: (lg.level, lg.disabled, lg.propagate) for name, lg in list(manager.loggerDict.items())
            if isinstance(lg, logging.Logger) and name.split(".")[0] == "cosim"} | {"": manager.disable}


@pytest.fixture(autouse=True)
def _logging_left_as_found():
    """A test (or the code it runs in-process) that raises a cosim logger's level, disables it or
    cuts its propagation silences every later test's caplog assertions: fail the culprit instead."""
    before = _cosim_logging()
    yield
    after = _cosim_logging()
    changed = {k: (before.get(k), v) for k, v in after.items() if k in before and before[k] != v}
    new = {k: v for k, v in after.items() if k not in before and v != (logging.NOTSET, False, True)}
    assert not changed and not new, f"logging left changed: {changed or new}"
