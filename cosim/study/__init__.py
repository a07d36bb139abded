"""Design studies: grids of points run on Dask, one SQLite store per study, HTML reports.

Public names (the module that defines each):

- :func:`load_study`, :func:`parse_study`, :class:`StudyConfig`, :class:`ExportSpec` (config.py):
  TOML study files, checked before any work starts.
- :func:`plan`, :class:`StudyPlan`, :class:`Point`, :func:`point_key` (grid.py): grid
  expansion (lists → Cartesian product, ``study.zip`` groups, × seeds) into resolved points
  keyed by the sha256 of their canonical JSON.
- :func:`register_task`, :func:`get_task`, :data:`TASKS`, :func:`run_point`,
  :func:`execute_point` (tasks.py): the task registry keyed by ``task.kind``; the built-in
  ``ir_drop`` task lives in irdrop.py.
- :class:`Field`, :class:`Section` (schema.py): declarative section validators for tasks.
- :class:`Store`, :class:`PointRow` (store.py): the SQLite (WAL) results store.
- :func:`run_study`, :class:`RunSummary`, :func:`make_client` (runner.py): execution on a
  LocalCluster, an existing Dask scheduler, or in-process.
- :func:`write_report` (report.py, with figures.py and tables.py): HTML, PNG/SVG and CSV.
- :func:`export_point`, :func:`export_training`, :func:`find_point` (export.py): tape-out
  netlists of a stored point or a trained network.
- :func:`run_training_point` (training.py): the ``train`` task; :data:`DEMO_TOML`,
  :func:`write_demo_config` (demo.py): the study ``cosim demo`` runs.

Importing this package is light: Dask, tqdm and matplotlib load only when a study runs or a
report is drawn. This layer may import :mod:`cosim.train` and everything below it.
"""

from cosim.schema import Field, Section
from cosim.study.config import ExportSpec, StudyConfig, load_study, parse_study
from cosim.study.demo import DEMO_TOML, write_demo_config
from cosim.study.export import export_point, export_training, find_point
from cosim.study.grid import Point, StudyPlan, plan, point_key
from cosim.study.report import write_report
from cosim.study.runner import RunSummary, make_client, run_study
from cosim.study.store import PointRow, Store
from cosim.study.tasks import TASKS, execute_point, get_task, register_task, run_point

__all__ = ["load_study", "parse_study", "StudyConfig", "ExportSpec", "plan", "StudyPlan", "Point",
           "point_key", "register_task", "get_task", "TASKS", "run_point", "execute_point", "Field",
           "Section", "Store", "PointRow", "run_study", "RunSummary", "make_client", "write_report", "export_point", "export_training",
           "find_point", "run_training_point", "DEMO_TOML", "write_demo_config"]


def __getattr__(name: str):
    # The train task pulls in cosim.train (networks, devices, circuits): load it on first use.
    if name == "run_training_point":
        from cosim.study.training import run_training_point

        return run_training_point
    raise AttributeError(f"module 'cosim.study' has no attribute {name!r}")
