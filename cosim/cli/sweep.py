"""``cosim sweep CONFIG.toml --store STORE.sqlite``: run a design study, resuming where it stopped."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from cosim.errors import SpecError


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a design study (a grid of points) on Dask",
        description="Run every point of a study config on Dask and store the results in one SQLite "
                    "file. Rerunning the same command skips finished points, so a killed study resumes. "
                    "Exit status: 0 when every point is done, 1 when some failed, 2 for a bad config.")
    p.add_argument("config", help="study config (TOML)")
    p.add_argument("--store", required=True, help="results store (SQLite; created if missing)")
    add_cluster_options(p)
    p.add_argument("--retry-failed", action="store_true", help="run failed points again")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config, print the point count and a cost estimate, run nothing")
    p.set_defaults(func=run)


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """--workers, --scheduler and --connect-timeout: where a study's points run."""
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per core; 0 runs in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="run on an existing Dask scheduler instead, e.g. tcp://host:8786")
    p.add_argument("--connect-timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for --scheduler before giving up (default 30)")


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    return sweep(args.config, args.store, workers=args.workers, scheduler=args.scheduler,
                 connect_timeout=args.connect_timeout, retry_failed=args.retry_failed, dry_run=args.dry_run)


def sweep(config: str, store_path: str, *, workers: int | None = None, scheduler: str | None = None,
          connect_timeout: float = 30.0, retry_failed: bool = False, dry_run: bool = False) -> int:
    """Run (or with ``dry_run`` only plan) the study ``config`` into ``store_path``; the exit
    status (0 all done, 1 some failed)."""
    from cosim.study.config import load_study
    from cosim.study.grid import plan
    from cosim.study.runner import close_client, dry_run_text, make_client, run_study
    from cosim.study.store import Store

    if workers is not None and workers < 0:
        raise SpecError(f"--workers must be ≥ 0, got {workers}")
    if scheduler and workers is not None:
        raise SpecError("--workers sizes a local cluster; leave it out with --scheduler")
    study = plan(load_study(config))
    workers = None if scheduler else (os.cpu_count() or 1) if workers is None else workers
    if dry_run:
        store = Store(store_path, create=False) if os.path.isfile(store_path) else None
        try:
            print(dry_run_text(study, store, workers))
        finally:
            if store is not None:
                store.close()
        return 0
    print(study.summary(workers), flush=True)
    if workers != 0 and logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        import distributed  # noqa: F401  (configures its loggers on import; quiet them unless -vv)

        logging.getLogger("distributed").setLevel(logging.WARNING)
    # Reach a remote scheduler before the store exists, so a wrong address leaves nothing behind.
    client = make_client(scheduler=scheduler, timeout=connect_timeout) if scheduler else None
    # A polite kill (SIGTERM, as from a batch scheduler) stops the study like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with Store(store_path) as store:
            try:
                summary = run_study(study, store, workers=workers, client=client,
                                    retry_failed=retry_failed)
            except KeyboardInterrupt:
                counts = store.counts()
                print(f"cosim: interrupted; {counts['done']} finished points are kept in {store_path}; "
                      "rerun the same command to resume", file=sys.stderr)
                raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if client is not None:
            close_client(client)
    print(summary.line())
    return 1 if summary.failed or summary.skipped_failed else 0
