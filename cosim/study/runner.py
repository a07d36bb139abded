"""Run a study's points on Dask (or in a plain loop) and commit each result as it arrives.

Each unfinished point is one ``dask.distributed`` task (:func:`cosim.study.tasks.execute_point`).
By default a LocalCluster of one single-threaded worker process per core runs them; given a
scheduler address the same study runs unchanged on an existing cluster. Workers only compute:
the driver writes the store, one committed transaction per finished point. A point's own
exception comes back as a failed outcome (recorded with its error, the study goes on); a worker
that dies mid-point has its task rescheduled by Dask (up to the scheduler's
``allowed-failures``), so the point still ends in the store exactly once.

``workers=0`` runs the points in this process, one after another, with the same store logic:
for debugging, and as the reference the benchmark measures Dask's overhead against.

Several sweeps may run on one store at once (two terminals, two batch jobs): each claims points
a few at a time (:meth:`Store.claim`: a lease under its identity, taken in one transaction),
keeps about two per worker in flight, renews its leases from a heartbeat thread, and records a
result only while it holds the claim. So the sweeps share the work and every point is computed
once; a sweep that runs out of points waits for the ones others hold, and takes over any whose
claimant died (its lease expired, or its process on this host is gone).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass

from cosim.errors import EngineError
from cosim.study.grid import Point, StudyPlan, renamed_keys
from cosim.study.store import LEASE_SECONDS, Store
from cosim.study.tasks import execute_point, one_line

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5  # how often a sweep with nothing left to claim looks at points others hold


@dataclass(slots=True)
class RunSummary:
    """What one sweep did. ``seconds`` is wall time of the run, not of the points."""

    total: int
    skipped_done: int = 0
    skipped_failed: int = 0
    submitted: int = 0
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    by_others: int = 0  # finished by another sweep on the same store while this one ran

    def line(self) -> str:
        text = (f"{self.total} points: {self.done} done, {self.failed} failed, "
                f"{self.skipped_done} already done")
        if self.by_others:
            text += f", {self.by_others} by another sweep"
        if self.skipped_failed:
            text += f", {self.skipped_failed} failed before (rerun with --retry-failed)"
        text += f" in {self.seconds:.1f} s"
        return text + (" (interrupted)" if self.interrupted else "")


def show_progress() -> bool:
    """A live bar only for a person watching: stderr is a terminal and this is not CI."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


def make_client(workers: int | None = None, scheduler: str | None = None, *, timeout: float = 30.0):
    """A Dask client: on ``scheduler`` (``tcp://host:port``) or on a new LocalCluster.

    The LocalCluster has ``workers`` (default: one per core) single-threaded worker processes,
    no dashboard, and quiet logs.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from None
    n = workers or os.cpu_count() or 1
    # No dashboard; the scheduler's own HTTP endpoint takes a free port, so two studies (or a
    # notebook's cluster on :8787) never collide.
    # One core per worker: the compiled reads would otherwise start a thread per core in each.
    env = {"COSIM_THREADS": os.environ.get("COSIM_THREADS", "1")}
    # The worker processes log only what is critical: a point's failure reaches the store through
    # its future (one line, _failed), while a worker's heartbeat that meets a closed scheduler
    # stream (at shutdown, or on a loaded machine where it is retried) printed an ERROR with two
    # tracebacks into the sweep's output (seen once in CI with two sweeps on two cores).
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=logging.CRITICAL,
                           env=env)
    return Client(cluster)


def close_client(client) -> None:
    """Close a client and, when it made it, its LocalCluster.

    Every result is committed before this runs, so what Dask and tornado log while the
    connections go down (a ``CommClosedError`` from a worker's last heartbeat, racing the
    scheduler's exit) is noise, not news: those loggers are silenced for the shutdown.
    """
    cluster = getattr(client, "cluster", None)
    names = ("distributed", "tornado", "asyncio")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL + 1)
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _failed(exc: BaseException) -> dict:
    text = one_line(exc)
    if type(exc).__name__ == "KilledWorker":
        text = f"KilledWorker: the worker running this point died too many times (memory?); {text}"
    return {"status": "failed", "metrics": None, "error": text, "started": None, "finished": time.time(),
            "seconds": None, "host": None, "versions": None}


class _Recorder:
    """Commits outcomes, keeps the counts and drives the progress bar."""

    def __init__(self, store: Store, summary: RunSummary, keep: tuple[str, ...] | None,
                 progress: bool, n: int, name: str, on_result: Callable[[Point, dict], None] | None,
                 worker: str | None = None):
        from tqdm.auto import tqdm

        self.store, self.summary, self.keep, self.on_result = store, summary, keep, on_result
        self.worker = worker
        self.bar = tqdm(total=n, desc=name, unit="pt", disable=not progress, file=sys.stderr)
        self.recorded: set[str] = set()

    def __call__(self, point: Point, outcome: dict) -> None:
        if point.key in self.recorded:  # defensive: a point is stored once per sweep
            log.warning("point %s reported twice; keeping the first result", point.key[:12])
            return
        if outcome["status"] == "done" and self.keep is not None and outcome["metrics"] is not None:
            outcome = {**outcome, "metrics": {k: v for k, v in outcome["metrics"].items() if k in self.keep}}
        self.recorded.add(point.key)
        if not self.store.record(point.key, outcome, worker=self.worker):
            log.warning("point %s was taken over by another sweep after this one's lease expired; "
                        "keeping that sweep's result", point.key[:12])
            self.summary.by_others += 1
            self.bar.update(1)
            return
        if outcome["status"] == "done":
            self.summary.done += 1
        else:
            self.summary.failed += 1
            log.warning("point %s failed (%s): %s", point.key[:12], point.label, outcome["error"])
        self.bar.update(1)
        self.bar.set_postfix(failed=self.summary.failed, refresh=False)
        if self.on_result is not None:
            self.on_result(point, outcome)

    def close(self) -> None:
        self.bar.close()


def run_study(plan: StudyPlan, store: Store, *, workers: int | None = None, scheduler: str | None = None,
              client=None, retry_failed: bool = False, progress: bool | None = None,
              on_result: Callable[[Point, dict], None] | None = None,
              lease: float = LEASE_SECONDS) -> RunSummary:
    """Run every point of ``plan`` that ``store`` does not hold as done; returns the counts.

    ``client`` (a ``distributed.Client``) is used as is and left open; otherwise one is made
    from ``scheduler`` or a LocalCluster of ``workers`` processes and closed at the end;
    ``workers=0`` runs in this process. Failed points are rerun only with ``retry_failed``.
    On Ctrl-C the finished points stay stored, the rest go back to pending, and
    KeyboardInterrupt propagates. ``lease`` (s) is how long a claim outlives a silent sweep.
    """
    t0 = time.perf_counter()
    started = time.time()
    cfg = plan.config
    store.set_meta("study", {"name": cfg.name, "task": plan.task.kind, "source": cfg.source,
                             "seeds": list(cfg.seeds), "axes": plan.axes, "metrics": cfg.metrics})
    store.set_meta("export", {"netlists": cfg.export.netlists, "dialect": cfg.export.dialect,
                              "where": dict(cfg.export.where or {})})
    if pairs := renamed_keys((r.key, r.config) for r in store.rows()):
        if n := store.rekey(pairs):
            log.info("%d stored point(s) moved to the key rule that leaves null fields out", n)
    store.add_points((p.key, p.config) for p in plan.points)
    status = store.statuses(p.key for p in plan.points)
    summary = RunSummary(total=len(plan.points))
    todo = []
    for p in plan.points:
        s = status[p.key]
        if s == "done":
            summary.skipped_done += 1
        elif s == "failed" and not retry_failed:
            summary.skipped_failed += 1
        else:
            todo.append(p)
    log.info("%s: %d to run, %d already done", cfg.name, len(todo), summary.skipped_done)
    if todo:
        worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        rec = _Recorder(store, summary, cfg.metrics, show_progress() if progress is None else progress,
                        len(todo), cfg.name, on_result, worker)
        queue = _Queue(store, todo, worker, lease, started if retry_failed else None, summary)
        try:
            with _Heartbeat(store.path, worker, lease):
                if workers == 0 and client is None and scheduler is None:
                    _run_inline(queue, plan, rec)
                else:
                    _run_dask(queue, plan, rec, client=client, workers=workers, scheduler=scheduler)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            store.reset_running(worker=worker)  # this sweep's unfinished claims go back to pending
            rec.close()
            summary.seconds = time.perf_counter() - t0
            log.info("%s: %s", cfg.name, summary.line())
    summary.seconds = time.perf_counter() - t0
    return summary


class _Queue:
    """This sweep's candidate points, claimed from the store a few at a time."""

    def __init__(self, store: Store, todo: list[Point], worker: str, lease: float,
                 retry_before: float | None, summary: RunSummary):
        self.store, self.worker, self.lease, self.retry_before = store, worker, lease, retry_before
        self.open, self.held, self.summary = deque(todo), [], summary

    def take(self, n: int) -> list[Point]:
        """Up to ``n`` newly claimed points (fewer when the rest are settled or held by others)."""
        if n <= 0 or not self.open:
            return []
        # claim() looks at the keys in order and stops after n claims: the first len(seen)
        # points of the queue are the ones it has decided.
        seen = self.store.claim((p.key for p in self.open), self.worker, limit=n, lease=self.lease,
                                retry_before=self.retry_before)
        got = []
        for _ in range(len(seen)):
            p = self.open.popleft()
            verdict = seen[p.key]
            if verdict == "claimed":
                got.append(p)
            elif verdict == "held":
                self.held.append(p)
            else:
                self.summary.by_others += 1
        self.summary.submitted += len(got)
        return got

    def waiting(self) -> bool:
        """Points other sweeps hold: not done yet, so this sweep is not finished either."""
        return bool(self.held)

    def wait(self, seconds: float = POLL_SECONDS) -> None:
        """Sleep, then look at the held points again."""
        time.sleep(seconds)
        self.open.extendleft(reversed(self.held))
        self.held = []


class _Heartbeat:
    """Renews this sweep's leases every third of the lease, on its own connection and thread."""

    def __init__(self, path, worker: str, lease: float):
        self.path, self.worker, self.lease = path, worker, lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cosim-lease", daemon=True)

    def _run(self) -> None:
        with Store(self.path) as st:
            while not self.stop.wait(self.lease / 3):
                try:
                    st.renew(self.worker, self.lease)
                except Exception as exc:  # a missed renewal only risks a takeover, never a wrong result
                    log.warning("could not renew the point leases: %s", one_line(exc))

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _run_inline(queue: _Queue, plan: StudyPlan, rec: _Recorder) -> None:
    while True:
        batch = queue.take(1)
        if not batch:
            if not queue.waiting():
                return
            queue.wait()
            continue
        rec(batch[0], execute_point(batch[0].config, plan.task.run))


def _run_dask(queue: _Queue, plan: StudyPlan, rec: _Recorder, *, client, workers, scheduler) -> None:
    from distributed import as_completed

    own = client is None
    if own:
        client = make_client(workers, scheduler)
    inflight = {}
    # Task keys name the point (a dashboard shows which is where) plus a per-sweep token: a key
    # cancelled by an interrupted sweep may linger on the scheduler, and reusing it would hand
    # the next sweep a cancelled future.
    token = secrets.token_hex(4)
    # About two points per worker thread in flight: workers never idle while the driver records,
    # and a second sweep on the same store still finds points to claim.
    capacity = 2 * max(1, sum(client.nthreads().values()))
    done = as_completed()

    def top_up() -> None:
        for p in queue.take(capacity - len(inflight)):
            fut = client.submit(execute_point, p.config, plan.task.run, key=f"cosim-point-{p.key[:16]}-{token}",
                                pure=False, retries=0)
            inflight[fut] = p
            done.add(fut)

    try:
        top_up()
        while inflight or queue.waiting():
            if not inflight:
                queue.wait()
                top_up()
                continue
            fut = next(done)
            p = inflight.pop(fut)
            # result(), not a look at fut.status: a result held by a worker that dies right now
            # sends the future back to pending, and result() waits for Dask to recompute it.
            try:
                outcome = fut.result()
            except CancelledError:
                log.warning("point %s was cancelled by the scheduler; left pending", p.key[:12])
                continue
            except Exception as exc:  # KilledWorker, or a point Dask could not even run
                outcome = _failed(exc)
            rec(p, outcome)
            fut.release()
            top_up()
    except KeyboardInterrupt:
        client.cancel(list(inflight), force=True)
        raise
    finally:
        if own:
            close_client(client)


def dry_run_text(plan: StudyPlan, store: Store | None = None, workers: int | None = None) -> str:
    """The plan summary plus, for an existing store, how much of it is already done."""
    text = plan.summary(workers)
    if store is not None:
        # a read-only look: points stored under the earlier key rule count as what a sweep makes them
        earlier = {new: old for old, new in renamed_keys((r.key, r.config) for r in store.rows())}
        stored = store.statuses()
        status = {}
        for p in plan.points:
            s = stored.get(p.key)
            # as Store.rekey will: an earlier-rule point moves unless today's key is taken by
            # anything but a pending point
            moves = p.key in earlier and stored.get(earlier[p.key]) != "running" and \
                (s is None or (s == "pending" and stored.get(earlier[p.key]) == "done"))
            status[p.key] = stored.get(earlier[p.key]) if moves else s
        done = sum(1 for s in status.values() if s == "done")
        failed = sum(1 for s in status.values() if s == "failed")
        text += f"\nstore {store.path}: {done} already done, {failed} failed, {len(plan.points) - done - failed} to run"
    return text

