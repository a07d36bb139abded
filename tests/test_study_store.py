"""The SQLite store and resuming: a study killed at any moment leaves a consistent store, and
the next run does only what is missing. Runs in-process (``workers=0``) or as a real
``cosim sweep`` subprocess killed with SIGKILL; the Dask path is in test_study_runner.py.

Budget: < 12 s (one subprocess study of ~30 small points).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest

from cosim.errors import InputError
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.runner import run_study
from cosim.study.store import Store


def small_plan(sizes=(4, 6), wires=(0.0, 1.0), seeds=2):
    return plan(parse_study({"study": {"seeds": seeds}, "task": {"kind": "ir_drop"},
                             "array": {"size": list(sizes), "r_wire": list(wires)}, "read": {"batch": 2}}))


def snapshot(store: Store) -> dict:
    return {r.key: (r.status, r.finished, r.attempts) for r in store.rows()}


def test_schema_wal_and_round_trip(tmp_path):
    path = tmp_path / "s.sqlite"
    p = small_plan()
    with Store(path) as st:
        assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert st.add_points((q.key, q.config) for q in p.points) == 8
        assert st.add_points((q.key, q.config) for q in p.points) == 0  # idempotent
        assert st.counts() == {"pending": 8, "running": 0, "done": 0, "failed": 0}
        k = p.points[0].key
        st.mark_running([k])
        st.record(k, {"status": "done", "metrics": {"x": 1.5, "m": [[1.0, None]]}, "error": None,
                      "started": 10.0, "finished": 12.0, "seconds": 2.0, "host": "h:1", "versions": {"cosim": "0"}})
        st.set_meta("study", {"name": "n"})
    with Store(path, create=False) as st:
        row = st.get(k[:8])
        assert (row.status, row.metrics, row.seconds, row.host, row.attempts) == \
            ("done", {"x": 1.5, "m": [[1.0, None]]}, 2.0, "h:1", 1)
        assert row.config == p.points[0].config
        assert st.get_meta("study") == {"name": "n"}
        with pytest.raises(InputError, match="no point with key"):
            st.get("ffffffff")
        with pytest.raises(InputError, match="too short"):
            st.get("ab")
        with pytest.raises(InputError, match="opened read-only"):  # a reader never writes
            st.record("0" * 64, {"status": "done"})
    with Store(path) as st, pytest.raises(InputError, match="no point with key"):
        st.record("0" * 64, {"status": "done"})


def test_open_refuses_missing_or_foreign_files(tmp_path):
    with pytest.raises(InputError, match="no such study store"):
        Store(tmp_path / "nope.sqlite", create=False)
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(InputError, match="not a cosim study store"):
        Store(other, create=False)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match="not a cosim study store"):
        Store(junk, create=False)


def test_rerun_does_no_new_work(tmp_path):
    p = small_plan()
    with Store(tmp_path / "s.sqlite") as st:
        first = run_study(p, st, workers=0, progress=False)
        assert (first.done, first.failed, first.submitted) == (8, 0, 8)
        before = snapshot(st)
        again = run_study(p, st, workers=0, progress=False)
        assert (again.submitted, again.skipped_done, again.done) == (0, 8, 0)
        assert snapshot(st) == before
        # a grown grid runs only the new points
        bigger = small_plan(sizes=(4, 6, 8))
        grown = run_study(bigger, st, workers=0, progress=False)
        assert (grown.submitted, grown.skipped_done) == (4, 8)
        assert st.counts()["done"] == 12


def test_interrupt_keeps_finished_points_and_resumes(tmp_path):
    p = small_plan()
    seen = []

    def ctrl_c_after_three(point, outcome):
        seen.append(point.key)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with Store(tmp_path / "s.sqlite") as st:
        with pytest.raises(KeyboardInterrupt):
            run_study(p, st, workers=0, progress=False, on_result=ctrl_c_after_three)
        assert st.counts() == {"pending": 5, "running": 0, "done": 3, "failed": 0}
        kept = {k: v for k, v in snapshot(st).items() if v[0] == "done"}
        resumed = run_study(p, st, workers=0, progress=False)
        assert (resumed.submitted, resumed.done, resumed.skipped_done) == (5, 5, 3)
        after = snapshot(st)
        assert all(after[k] == v for k, v in kept.items())  # finished points untouched
        assert st.counts()["done"] == 8


def test_hard_kill_leaves_running_rows_that_the_next_run_redoes(tmp_path):
    """A SIGKILL gives no chance to clean up: rows stay 'running'; the next run redoes them."""
    p = small_plan()
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        st.add_points((q.key, q.config) for q in p.points)
        st.mark_running(q.key for q in p.points)  # as a killed sweep leaves them
    with Store(path) as st:
        out = run_study(p, st, workers=0, progress=False)
        assert (out.submitted, out.done) == (8, 8)
        assert {r.attempts for r in st.rows()} == {2}


def test_sigkilled_sweep_resumes_without_redoing_points(tmp_path):
    cfg = tmp_path / "study.toml"
    # 32 points of a few tens of ms each, so the kill lands mid-study
    cfg.write_text('[study]\nseeds = 8\n[task]\nkind = "ir_drop"\n[array]\nsize = [40, 48]\n'
                   'r_wire = [1.0, 2.0]\n[read]\nbatch = 32\n')
    store = tmp_path / "s.sqlite"
    env = {**os.environ, "CI": "true"}
    cmd = [sys.executable, "-c", "import sys; from cosim.cli import main; sys.exit(main())", "sweep", str(cfg), "--store", str(store), "--workers", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists():
                try:
                    with closing(sqlite3.connect(store, timeout=5)) as db:
                        done = db.execute("SELECT COUNT(*) FROM points WHERE status='done'").fetchone()[0]
                except sqlite3.OperationalError:  # table not created yet
                    done = 0
                if done >= 3:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, f"sweep ended before it could be killed: {proc.stderr.read().decode()}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    with Store(store, create=False) as st:
        killed = snapshot(st)
        counts = st.counts()
    n_done = counts["done"]
    assert 3 <= n_done < 32 and sum(counts.values()) == 32
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"{32 - n_done} done, 0 failed, {n_done} already done" in res.stdout
    with Store(store, create=False) as st:
        final = snapshot(st)
    assert len(final) == 32 and all(v[0] == "done" for v in final.values())
    assert all(final[k] == v for k, v in killed.items() if v[0] == "done")



def test_export_selection_rebuilds_the_measured_arrays(tmp_path):
    from cosim.study.export import export_spec, point_array, selected_points
    from cosim.study.irdrop import ir_drop_metrics

    p = plan(parse_study({"study": {"seeds": 2}, "task": {"kind": "ir_drop"},
                          "array": {"size": [4, 6], "r_wire": [0.0, 3.0]}, "read": {"batch": 3},
                          "export": {"netlists": True, "dialect": "ngspice", "where": {"array.rows": 6,
                                                                                       "array.r_row": [3.0]}}}))
    with Store(tmp_path / "s.sqlite") as st:
        run_study(p, st, workers=0, progress=False)
        assert export_spec(st).netlists and export_spec(st).dialect == "ngspice"
        picked = selected_points(st)
        assert len(picked) == 2 and {r.config["seed"] for r in picked} == {0, 1}
        assert all(r.config["array"]["rows"] == 6 and r.config["array"]["r_row"] == 3.0 for r in picked)
        for r in picked:
            spec, inputs = point_array(r)
            assert spec.shape == (6, 6) and inputs.shape == (3, 6)
            again = ir_drop_metrics(spec, inputs, r.config["read"]["v_read"])
            assert again["ir_err_max"] == r.metrics["ir_err_max"]  # the very array the study measured
    from cosim.study.report import write_report

    page = write_report(tmp_path / "s.sqlite", tmp_path / "rep").html.read_text()
    assert "Export: 2 finished point(s) selected for ngspice netlists" in page
    assert all(r.key[:12] in page for r in picked)


def test_transaction_cut_short_is_rolled_back_not_committed(tmp_path):
    """A Ctrl-C between BEGIN and COMMIT must not leave the connection unusable or commit."""
    p = small_plan()
    with Store(tmp_path / "s.sqlite") as st:
        st.add_points((q.key, q.config) for q in p.points)
        st.db.execute("BEGIN IMMEDIATE")  # as if interrupted right after BEGIN
        st.db.execute("UPDATE points SET status = 'done'")
        st.reset_running()  # the next write still works …
        assert st.counts() == {"pending": 8, "running": 0, "done": 0, "failed": 0}  # … and nothing leaked


def _legacy_key(config):
    """The key rule before null fields were left out (they were hashed too)."""
    import hashlib

    from cosim.study.grid import canonical_json, salt
    from cosim.study.tasks import get_task
    return hashlib.sha256(f"{canonical_json(config)}\n{salt(get_task(config['task']['kind']))}".encode()).hexdigest()


def test_a_field_added_with_a_null_default_keeps_stored_points(tmp_path):
    """A point stored before a config field existed (stored under the earlier rule that hashed
    null fields) is the same run as today's point with that field null: a sweep must not run it
    again, and a read-only dry run must count it done."""
    import copy

    from cosim.study.grid import point_key
    from cosim.study.runner import dry_run_text

    p = small_plan(sizes=(4,), wires=(1.0,), seeds=1)
    point = p.points[0]
    nulls = [k for k, v in point.config["array"].items() if v is None]
    assert nulls, "the ir_drop array section has null (off) fields"
    with_extra = copy.deepcopy(point.config)
    with_extra["array"]["added_later"] = None
    assert point_key(with_extra) == point.key  # a null field is not part of the key
    old = copy.deepcopy(point.config)
    del old["array"][nulls[0]]  # as stored before that field was added
    old_key = _legacy_key(old)
    assert old_key != point.key
    path = tmp_path / "old.sqlite"
    with Store(path) as st:
        st.add_points([(old_key, old)])
        st.mark_running([old_key])
        st.record(old_key, {"status": "done", "metrics": {"x": 1.0}, "error": None, "started": 1.0,
                            "finished": 2.0, "seconds": 1.0, "host": "h:1", "versions": {}})
    with Store(path, create=False) as st:
        assert "1 already done, 0 failed, 0 to run" in dry_run_text(p, st)
    with Store(path) as st:
        summary = run_study(p, st, workers=0, progress=False)
        assert (summary.skipped_done, summary.total) == (1, 1)
        assert [(r.key, r.status, r.metrics) for r in st.rows()] == [(point.key, "done", {"x": 1.0})]
