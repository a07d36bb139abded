"""Studies on a real LocalCluster of 2 worker processes: end to end, a worker killed mid-study,
reruns that do no new work, failing points recorded while the rest finish, Ctrl-C, and the
`cosim sweep --scheduler` path on the same cluster.

The ``probe`` task below is imported by the workers from this module (they inherit the test
process's ``sys.path``). Budget: < 40 s including one cluster start-up shared by the module.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from cosim.cli import main
from cosim.schema import Field, Section
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.runner import close_client, make_client, run_study
from cosim.study.store import Store
from cosim.study.tasks import TASKS, register_task


def probe_point(point: dict) -> dict:
    """A test task: logs each run, may kill its own worker (first attempt only) or raise."""
    pr = point["probe"]
    if pr["log_dir"]:
        Path(pr["log_dir"], f"{pr['value']:g}-{point['seed']}-{os.getpid()}-{time.monotonic_ns()}").touch()
    if pr["crash_marker"]:
        try:  # claiming the marker is atomic: only the first attempt crashes
            os.rename(pr["crash_marker"], pr["crash_marker"] + ".claimed")
        except FileNotFoundError:
            pass
        else:
            os._exit(13)  # the worker process dies mid-point, as on a segfault or an OOM kill
    time.sleep(pr["sleep"])
    if pr["fail"]:
        raise ValueError(f"deliberate failure at value {pr['value']:g}")
    return {"double": 2 * pr["value"], "pid": os.getpid()}


PROBE = {"probe": Section("probe", {
    "value": Field(type="float", default=1.0),
    "sleep": Field(type="float", default=0.0, minimum=0.0, unit="s"),
    "fail": Field(type="bool", default=False),
    "crash_marker": Field(type="str", default=""),
    "log_dir": Field(type="str", default=""),
})}


@pytest.fixture(scope="module", autouse=True)
def probe_task():
    register_task("probe", run=probe_point, sections=PROBE, metrics=["double", "pid"])
    yield
    TASKS.pop("probe", None)


@pytest.fixture(scope="module")
def client():
    c = make_client(workers=2)
    assert len(c.scheduler_info()["workers"]) == 2
    yield c
    close_client(c)


def test_local_workers_run_compiled_reads_on_one_thread_each(client):
    # One worker per core already: a read spreading over every core in each would oversubscribe.
    from cosim.circuit.solvers import kernels

    if "COSIM_THREADS" not in os.environ:
        assert set(client.run(kernels.threads).values()) == {1}


def probe_plan(n: int, **fields):
    probe = {"value": [float(v) for v in range(1, n + 1)], **fields}
    zipped = [["probe.value", *(f"probe.{k}" for k, v in fields.items() if isinstance(v, list))]]
    return plan(parse_study({"task": {"kind": "probe"}, "study": {"zip": zipped}, "probe": probe}))


def runs_by_value(log_dir: Path) -> dict[float, list[int]]:
    out: dict[float, list[int]] = {}
    for f in log_dir.iterdir():
        value, _seed, pid, _t = f.name.split("-")
        out.setdefault(float(value), []).append(int(pid))
    return out


def test_ir_drop_study_end_to_end_and_rerun_does_nothing(client, tmp_path):
    p = plan(parse_study({"study": {"seeds": 2}, "task": {"kind": "ir_drop"},
                          "array": {"size": [6, 12], "r_wire": [0.0, 2.0]}, "read": {"batch": 4}}))
    with Store(tmp_path / "s.sqlite") as st:
        s = run_study(p, st, client=client, progress=False)
        assert (s.total, s.done, s.failed, s.submitted) == (8, 8, 0, 8)
        rows = list(st.rows())
        assert len(rows) == 8 and {r.status for r in rows} == {"done"}
        hosts = {r.host for r in rows}
        assert all(h and h.split(":")[-1] != str(os.getpid()) for h in hosts)  # computed on workers
        for r in rows:
            m = r.metrics
            assert r.versions["cosim"] and r.seconds > 0 and r.attempts == 1
            if r.config["array"]["r_row"] == 0.0:
                assert m["ir_err_max"] < 1e-12
            else:
                assert 0 < m["ir_err_mean"] <= m["ir_err_max"] < 1
        before = {r.key: (r.finished, r.attempts, r.metrics) for r in rows}
        again = run_study(p, st, client=client, progress=False)
        assert (again.submitted, again.skipped_done, again.done) == (0, 8, 0)
        assert {r.key: (r.finished, r.attempts, r.metrics) for r in st.rows()} == before


def test_failing_point_is_recorded_and_the_rest_finish(client, tmp_path):
    p = probe_plan(6, fail=[v == 3 for v in range(1, 7)])
    with Store(tmp_path / "s.sqlite") as st:
        s = run_study(p, st, client=client, progress=False)
        assert (s.done, s.failed) == (5, 1)
        rows = {r.config["probe"]["value"]: r for r in st.rows()}
        bad = rows[3.0]
        assert bad.status == "failed" and bad.metrics is None
        assert bad.error.startswith("ValueError: deliberate failure at value 3")
        assert "\n" not in bad.error and bad.host and bad.seconds is not None
        assert all(rows[v].status == "done" and rows[v].metrics["double"] == 2 * v for v in rows if v != 3.0)
        # failed points are skipped on a rerun, and retried only when asked
        again = run_study(p, st, client=client, progress=False)
        assert (again.submitted, again.skipped_done, again.skipped_failed) == (0, 5, 1)
        retry = run_study(p, st, client=client, retry_failed=True, progress=False)
        assert (retry.submitted, retry.failed) == (1, 1)
        assert st.get(bad.key).attempts == 2


def test_killed_worker_loses_no_point(client, tmp_path):
    marker = tmp_path / "crash-once"
    marker.touch()
    logs = tmp_path / "runs"
    logs.mkdir()
    n = 8
    p = probe_plan(n, sleep=0.3, log_dir=str(logs),
                   crash_marker=[str(marker) if v == 3 else "" for v in range(1, n + 1)])
    workers_before = set(client.scheduler_info()["workers"])
    with Store(tmp_path / "s.sqlite") as st:
        s = run_study(p, st, client=client, progress=False)
        rows = list(st.rows())
    assert not marker.exists() and Path(str(marker) + ".claimed").exists()  # the crash happened
    assert (s.done, s.failed) == (n, 0)
    # every point ends in the store exactly once, done, from one submission
    assert len(rows) == n and len({r.key for r in rows}) == n
    assert all(r.status == "done" and r.attempts == 1 for r in rows)
    runs = runs_by_value(logs)
    assert sorted(runs) == [float(v) for v in range(1, n + 1)]
    crashed = next(r for r in rows if r.config["probe"]["value"] == 3.0)
    assert len(runs[3.0]) >= 2  # the first attempt died with its worker; Dask ran it again
    assert crashed.metrics["pid"] in runs[3.0] and crashed.metrics["double"] == 6.0
    assert set(runs[3.0]) - {crashed.metrics["pid"]}  # the stored result is not the dead process's
    # the nanny restarted the dead worker: the cluster is back to two workers, one of them new
    deadline = time.monotonic() + 30
    while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers_after = set(client.scheduler_info()["workers"])
    assert len(workers_after) == 2 and workers_after != workers_before


def test_ctrl_c_keeps_finished_points(client, tmp_path):
    p = probe_plan(8, sleep=0.2)
    seen = []

    def interrupt_after_two(point, outcome):
        seen.append(point.key)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with Store(tmp_path / "s.sqlite") as st:
        with pytest.raises(KeyboardInterrupt):
            run_study(p, st, client=client, progress=False, on_result=interrupt_after_two)
        counts = st.counts()
        assert counts["done"] == 2 and counts["running"] == 0 and counts["pending"] == 6
        resumed = run_study(p, st, client=client, progress=False)
        assert (resumed.submitted, resumed.done) == (6, 6)
        assert st.counts()["done"] == 8


def test_cli_sweep_on_an_existing_scheduler(client, tmp_path, capsys):
    cfg = tmp_path / "study.toml"
    cfg.write_text('[study]\nseeds = 2\n[task]\nkind = "ir_drop"\n[array]\nsize = [5, 7]\nr_wire = 1.0\n'
                   '[read]\nbatch = 3\n')
    store = tmp_path / "s.sqlite"
    args = ["sweep", str(cfg), "--store", str(store), "--scheduler", client.scheduler.address]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 points = 2 grid points × 2 seeds" in out and "4 done, 0 failed, 0 already done" in out
    assert main(args) == 0
    assert "0 done, 0 failed, 4 already done" in capsys.readouterr().out
    with Store(store, create=False) as st:
        assert st.counts()["done"] == 4 and {r.attempts for r in st.rows()} == {1}
    assert main(["sweep", str(cfg), "--store", str(store), "--scheduler", client.scheduler.address,
                 "--workers", "2"]) == 2


def test_cli_unreachable_scheduler_leaves_no_store(tmp_path, capsys):
    cfg = tmp_path / "study.toml"
    cfg.write_text('[task]\nkind = "ir_drop"\n[array]\nsize = 4\n')
    store = tmp_path / "s.sqlite"
    assert main(["sweep", str(cfg), "--store", str(store), "--scheduler", "tcp://127.0.0.1:9",
                 "--connect-timeout", "1"]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not store.exists()


@pytest.mark.parametrize("sig, workers", [(signal.SIGINT, "2"), (signal.SIGTERM, "0")])
def test_cli_interrupt_shuts_down_cleanly_and_resumes(tmp_path, sig, workers):
    """Ctrl-C on `cosim sweep` with its own LocalCluster (and SIGTERM on an in-process sweep):
    exit 130, finished points kept, nothing left running, and the next run does only the rest."""
    cfg = tmp_path / "study.toml"
    cfg.write_text('[study]\nseeds = 12\n[task]\nkind = "ir_drop"\n[array]\nsize = [64, 96]\n'
                   'r_wire = [1.0, 2.0]\n[read]\nbatch = 32\n')
    store = tmp_path / "s.sqlite"
    # SIGINT must reach Python's handler even if this test runs with SIGINT ignored
    boot = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from cosim.cli import main; sys.exit(main())")
    cmd = [sys.executable, "-c", boot, "sweep", str(cfg), "--store", str(store)]
    proc = subprocess.Popen([*cmd, "--workers", workers], env={**os.environ, "CI": "true"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists():
                try:
                    with closing(sqlite3.connect(store, timeout=5)) as db:
                        if db.execute("SELECT COUNT(*) FROM points WHERE status='done'").fetchone()[0] >= 3:
                            break
                except sqlite3.OperationalError:  # tables not created yet
                    pass
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be interrupted"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-2000:]
    assert "finished points are kept" in err
    with Store(store, create=False) as st:
        counts = st.counts()
        kept = {r.key: r.finished for r in st.rows("done")}
    assert counts["running"] == 0 and 3 <= counts["done"] < 48 and sum(counts.values()) == 48
    res = subprocess.run([*cmd, "--workers", "0"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "CI": "true"})
    assert res.returncode == 0, res.stderr
    assert f"{48 - counts['done']} done, 0 failed, {counts['done']} already done" in res.stdout
    with Store(store, create=False) as st:
        assert st.counts()["done"] == 48
        assert all(st.get(k).finished == t for k, t in kept.items())
