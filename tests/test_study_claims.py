"""Shared stores: claims, leases, damaged and read-only files.

Truths checked: processes creating one new store at the same instant all open it; two sweeps
on one store compute every point exactly once (each claim is one computation, so
``attempts == 1`` everywhere and the two summaries add up to the grid); a claim
held by a live sweep is never taken; one whose lease expired, or whose claimant process on this
host has exited, is; a result from a sweep that lost its claim is not written over the new
holder's. A damaged page gives one line (exit 2) in every command that reads the store, and
reading needs no write access (checked as an unprivileged user on a read-only file and folder).

Budget: < 50 s (two concurrent one-worker sweeps of 48 small points; 3 × 40 store openings).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cosim.errors import InputError
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.runner import run_study
from cosim.study.store import Store, claimant_alive

STUDY = ('[study]\nseeds = 6\n[task]\nkind = "ir_drop"\n[array]\nsize = [24, 32, 40, 48]\n'
         'r_wire = [1.0, 2.0]\n[read]\nbatch = 8\n')
COSIM = [sys.executable, "-m", "cosim.cli"]


def small_plan(seeds=2):
    return plan(parse_study({"study": {"seeds": seeds}, "task": {"kind": "ir_drop"},
                             "array": {"size": [4, 6], "r_wire": [0.0, 1.0]}, "read": {"batch": 2}}))


def test_claims_are_exclusive_until_the_lease_expires(tmp_path):
    p = small_plan()
    keys = [q.key for q in p.points]
    with Store(tmp_path / "s.sqlite") as st:
        st.add_points((q.key, q.config) for q in p.points)
        a, b = "elsewhere:1:aaaa", "elsewhere:2:bbbb"  # another host: trusted until the lease ends
        got_a = st.claim(keys, a, limit=3, lease=0.6)
        assert list(got_a.values()) == ["claimed"] * 3
        got_b = st.claim(keys, b, limit=8, lease=60)
        assert [got_b[k] for k in keys[:3]] == ["held"] * 3
        assert [got_b[k] for k in keys[3:]] == ["claimed"] * 5
        # b cannot record a's point; a can
        outcome = {"status": "done", "metrics": {"x": 1.0}}
        assert st.record(keys[3], outcome, worker=a) is False
        assert st.record(keys[0], outcome, worker=a) is True
        time.sleep(0.7)  # a's lease on keys[1:3] has expired: b may take them over
        again = st.claim(keys, b, limit=8, lease=60)
        assert again[keys[0]] == "settled" and again[keys[1]] == again[keys[2]] == "claimed"
        assert st.record(keys[1], outcome, worker=a) is False  # a lost it: b's result will count
        assert {r.key: r.attempts for r in st.rows()}[keys[1]] == 2


def test_dead_local_claimant_is_retaken_at_once(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    dead = f"{socket.gethostname()}:{int(proc.stdout)}:dead"
    assert not claimant_alive(dead) and claimant_alive(f"{socket.gethostname()}:{os.getpid()}:me")
    p = small_plan()
    with Store(tmp_path / "s.sqlite") as st:
        st.add_points((q.key, q.config) for q in p.points)
        st.claim([q.key for q in p.points], dead, limit=8, lease=3600)
        out = run_study(p, st, workers=0, progress=False)
        assert (out.done, out.by_others) == (8, 0)


def test_crashed_claimant_on_another_host_is_retaken_after_its_lease(tmp_path):
    p = small_plan()
    with Store(tmp_path / "s.sqlite") as st:
        st.add_points((q.key, q.config) for q in p.points)
        st.claim([q.key for q in p.points][:4], "gone-host:99:x", limit=4, lease=1.0)
        t0 = time.monotonic()
        out = run_study(p, st, workers=0, progress=False)
        assert time.monotonic() - t0 >= 0.9  # it waited for the lease, not less
        assert (out.done, out.failed) == (8, 0)
        assert st.counts()["done"] == 8 and {r.attempts for r in st.rows()} == {1, 2}


def test_two_concurrent_sweeps_compute_every_point_once(tmp_path):
    cfg = tmp_path / "study.toml"
    cfg.write_text(STUDY)
    store = tmp_path / "s.sqlite"
    env = {**os.environ, "CI": "true"}
    cmd = [*COSIM, "sweep", str(cfg), "--store", str(store), "--workers", "1"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "Traceback" not in err and "CommClosedError" not in err, err
    done = []
    for out, _ in outs:
        line = out.strip().splitlines()[-1]
        assert line.startswith("48 points: "), line
        done.append(int(line.split(": ")[1].split(" done")[0]))
    assert sum(done) == 48
    with Store(store, create=False) as st:
        rows = list(st.rows())
    assert len(rows) == 48 and all(r.status == "done" and r.attempts == 1 for r in rows)


OPEN_TOGETHER = """
import sys, time
from cosim.errors import InputError
from cosim.study.store import Store
folder, start, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
failed = 0
for i in range(rounds):
    while time.time() < start + 0.05 * i:  # every process opens file i at the same instant
        pass
    try:
        with Store(f"{folder}/s{i}.sqlite") as st:
            st.add_points([(f"k{i}", {})])
    except InputError as exc:
        failed += 1
        print(exc, file=sys.stderr)
print(failed)
"""


def test_processes_creating_one_store_together_all_open_it(tmp_path):
    # Before the set-up was retried, some openers got "database is locked" at once:
    # SQLite refuses rather than waits when two connections both need the new file's lock.
    rounds = 40
    start = time.time() + 2.0  # after every interpreter has imported cosim
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_TOGETHER, str(tmp_path), str(start), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert [int(out) for out, _ in outs] == [0, 0, 0], [err for _, err in outs]
    for i in range(rounds):
        with Store(tmp_path / f"s{i}.sqlite", create=False) as st:
            assert [r.key for r in st.rows()] == [f"k{i}"]


def damage(path) -> None:
    """Overwrite the middle of the file (past the header page) with garbage, as a bad disk would."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(max(4096, size // 2 - 2048))
        f.write(b"\xde\xad\xbe\xef" * 1024)


@pytest.fixture
def damaged(tmp_path):
    cfg = tmp_path / "study.toml"
    cfg.write_text('[study]\nseeds = 40\n[task]\nkind = "ir_drop"\n[array]\nsize = [4, 6]\n'
                   'r_wire = [0.0, 1.0]\n[read]\nbatch = 2\n')
    store = tmp_path / "s.sqlite"
    with Store(store) as st:
        run_study(small_plan(seeds=40), st, workers=0, progress=False)
    assert store.stat().st_size > 3 * 4096
    damage(store)
    return cfg, store


@pytest.mark.parametrize("argv", [
    ["sweep", "{cfg}", "--store", "{store}", "--workers", "0"],
    ["sweep", "{cfg}", "--store", "{store}", "--dry-run"],
    ["report", "{store}", "--output", "{tmp}/rep"],
    ["export", "{store}", "--list"],
])
def test_damaged_store_gives_one_line(damaged, tmp_path, argv, capsys):
    from cosim.cli import main

    cfg, store = damaged
    argv = [a.format(cfg=cfg, store=store, tmp=tmp_path) for a in argv]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosim: error: ") and str(store) in lines[0], err
    assert "damaged" in lines[0] or "malformed" in lines[0]
    assert not (tmp_path / "rep").exists()


def test_store_open_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such study store"):
        Store(tmp_path / "missing.sqlite", create=False)


READERS = [["report", "{store}", "--output", "{tmp}/rep"], ["export", "{store}", "--list"],
           ["sweep", "{cfg}", "--store", "{store}", "--dry-run"]]


def read_only_setup(base):
    cfg = base / "study.toml"
    cfg.write_text('[study]\nseeds = 2\n[task]\nkind = "ir_drop"\n[array]\nsize = [4, 6]\n'
                   'r_wire = [0.0, 1.0]\n[read]\nbatch = 2\n')
    (base / "ro").mkdir()
    store = base / "ro" / "s.sqlite"
    with Store(store) as st:
        run_study(small_plan(), st, workers=0, progress=False)
    return cfg, store


def test_readers_open_the_store_read_only(tmp_path, monkeypatch, capsys):
    """Every connection the reading commands make to the store is SQLite's mode=ro (which
    cannot write, whoever runs it), and the file's bytes do not change."""
    import sqlite3

    from cosim.cli import main

    cfg, store = read_only_setup(tmp_path)
    before = store.read_bytes()
    seen = []
    real = sqlite3.connect

    def spy(target, *args, **kw):
        seen.append((str(target), kw.get("uri", False)))
        return real(target, *args, **kw)

    monkeypatch.setattr(sqlite3, "connect", spy)
    for argv in READERS:
        assert main([a.format(cfg=cfg, store=store, tmp=tmp_path) for a in argv]) == 0, capsys.readouterr().err
    assert "8 already done" in capsys.readouterr().out
    mine = [(t, uri) for t, uri in seen if "s.sqlite" in t]
    assert len(mine) >= 3 and all(uri and t.endswith("?mode=ro") for t, uri in mine), mine
    assert store.read_bytes() == before  # (SQLite may add the WAL's -shm index in a writable folder)
    with Store(store, create=False) as st, pytest.raises(sqlite3.OperationalError, match="readonly"):
        st.db.execute("UPDATE points SET status = 'pending'")


def unprivileged() -> tuple[list[str], dict] | None:
    """(command prefix, env additions) that run this interpreter's cosim as a user who cannot
    write what root made; None when there is no way to. Root ignores file modes, so under root
    the command drops to nobody with setpriv and the system's python of the same version (the
    virtualenv's interpreter may live under /root), importing the same site-packages."""
    import shutil
    import site

    if os.geteuid() != 0:
        return COSIM, {}
    py = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/usr/local/bin")
    if not py or not shutil.which("setpriv"):
        return None
    import cosim

    # PYTHONPATH entries get no .pth processing, so an editable install's finder would not load:
    # put the folder holding this very cosim package first.
    here = str(Path(cosim.__file__).resolve().parents[1])
    paths = os.pathsep.join([here, os.environ.get("PYTHONPATH", ""), *site.getsitepackages()])
    return (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", py, "-m", "cosim.cli"],
            {"PYTHONPATH": paths})


def test_reading_a_store_needs_no_write_access():
    """The same commands, as a user who cannot write the store's file or folder."""
    import shutil
    import tempfile

    how = unprivileged()
    if how is None:
        pytest.skip("running as root without setpriv or a system python to drop privileges with")
    prefix, extra = how
    from pathlib import Path

    base = Path(tempfile.mkdtemp(prefix="cosim-ro-"))  # pytest's tmp folder is private to root
    try:
        base.chmod(0o755)
        cfg, store = read_only_setup(base)
        cfg.chmod(0o644)
        out = base / "out"
        out.mkdir()
        out.chmod(0o777)
        store.chmod(0o444)
        store.parent.chmod(0o555)
        env = {**os.environ, "CI": "true", "HOME": str(out), "MPLCONFIGDIR": str(out),
               "NUMBA_CACHE_DIR": str(out), **extra}
        for argv in READERS:
            argv = [a.format(cfg=cfg, store=store, tmp=out) for a in argv]
            res = subprocess.run([*prefix, *argv], capture_output=True, text=True, env=env, timeout=120, cwd=base)
            assert res.returncode == 0, (argv, res.stderr)
        assert "8 already done" in res.stdout
        assert sorted(p.name for p in store.parent.iterdir()) == ["s.sqlite"]
    finally:
        (base / "ro").chmod(0o755)
        shutil.rmtree(base)
