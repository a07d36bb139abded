"""The results store: one SQLite file per study (WAL mode), one row per point.

Table ``points``: key (sha256 of the resolved config, primary key), config (JSON), status
(pending | running | done | failed), metrics (JSON), error (one line), started / finished (Unix
seconds), seconds (the point's own run time), host, versions (JSON), attempts (how many times a
sweep submitted the point), claimed_by / lease_until (the claim, below). Table ``meta`` holds
the study's name, task, config and export selection as JSON values.

Only driver processes write (workers return results), and every result is committed as it
arrives, so a study killed at any moment leaves a consistent store that the next run resumes.

Claims let several sweeps share one store: a driver takes a point with :meth:`Store.claim` (one
transaction: status running, its identity ``host:pid:token`` and a lease deadline), renews its
leases while it works, and records the result only while it still holds the claim. A point
whose lease has expired, or whose claimant is a process on this host that no longer exists,
may be taken by anyone, so a crashed sweep's points are redone and a live sweep's never are.

``Store(path, create=False)`` opens the file read-only (SQLite URI ``mode=ro``): reading a store
needs no write access. A damaged file raises :class:`InputError` with one line, on open or on
any later read.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosim.errors import InputError

log = logging.getLogger(__name__)

STATUSES = ("pending", "running", "done", "failed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    metrics TEXT,
    error TEXT,
    started REAL,
    finished REAL,
    seconds REAL,
    host TEXT,
    versions TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS points_status ON points (status);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


CLAIM_COLUMNS = {"claimed_by": "TEXT", "lease_until": "REAL"}  # added to stores made before claims
BUSY_SECONDS = 30.0  # how long a statement waits for another process's lock before giving up
LEASE_SECONDS = 120.0  # a claim not renewed for this long is free; the runner renews every third


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock it needs."""
    return "locked" in str(exc) or "busy" in str(exc)


def claimant_alive(claimant: str | None) -> bool:
    """False when ``claimant`` (``host:pid:token``) is missing or a process of this host that has
    exited; True otherwise (another host's claimant is trusted until its lease expires)."""
    if not claimant:
        return False
    try:
        host, pid_text, _token = claimant.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


@dataclass(frozen=True, slots=True)
class PointRow:
    """One stored point (see the module docstring for the columns)."""

    key: str
    config: dict
    status: str
    metrics: dict | None
    error: str | None
    started: float | None
    finished: float | None
    seconds: float | None
    host: str | None
    versions: dict | None
    attempts: int


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Store:
    """A study's SQLite store. ``create=False`` refuses a missing file and opens it read-only."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.readonly = not create
        if not create and not self.path.is_file():
            raise InputError(f"{self.path}: no such study store")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot create the store's folder ({exc.strerror})") from None
        self.db = None
        with self._guard("not a cosim study store"):
            if create:
                self.db = self._connect_for_writing()
            else:
                self.db = self._connect_read_only()
                tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "points" not in tables:
                    raise InputError(f"{self.path}: not a cosim study store (no points table)")
            # Refuse a damaged file now, in one line, rather than at some later query.
            (check,) = self.db.execute("PRAGMA quick_check(1)").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(check)

    def _connect_for_writing(self) -> sqlite3.Connection:
        """A connection to a store in WAL mode with the current schema. Two sweeps started
        together may both find a new file: switching it to WAL, or creating its tables, then
        needs a lock the other holds, and SQLite answers one of them "locked" at once rather
        than waiting (its deadlock rule), so the set-up is retried for up to ``BUSY_SECONDS``.
        The tables and any missing claim columns are made in one immediate transaction, so a
        second opener sees either none of them or all."""
        deadline = time.monotonic() + BUSY_SECONDS
        delay = 0.01
        while True:
            db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("BEGIN IMMEDIATE")
                for statement in filter(str.strip, SCHEMA.split(";")):
                    db.execute(statement)
                have = {r[1] for r in db.execute("PRAGMA table_info(points)")}
                for name, kind in CLAIM_COLUMNS.items():
                    if name not in have:
                        db.execute(f"ALTER TABLE points ADD COLUMN {name} {kind}")
                db.execute("COMMIT")
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                if not _busy(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay * (1.0 + random.random()))  # jitter: two openers must not retry in step
                delay = min(2 * delay, 0.5)
            except BaseException:
                db.close()
                raise

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that cannot write. A WAL file normally needs its ``-shm`` index, which a
        reader creates beside it; in a folder the user cannot write SQLite refuses that, and
        then the file is opened as immutable: nobody without write access to the folder can be
        writing to it (a writer would have left its -wal and -shm there)."""
        base = "file:" + str(self.path.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        db = sqlite3.connect(base + "?mode=ro", uri=True, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
            return db
        except sqlite3.OperationalError:
            db.close()
            if os.access(self.path.parent, os.W_OK):
                raise
            return sqlite3.connect(base + "?mode=ro&immutable=1", uri=True, timeout=BUSY_SECONDS, isolation_level=None)

    @contextmanager
    def _guard(self, what: str = "damaged study store"):
        """Turn SQLite's errors about the file into one-line :class:`InputError`."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                raise InputError(f"{self.path}: the store stayed locked by another process for {BUSY_SECONDS:.0f} s ({exc})") from None
            raise InputError(f"{self.path}: cannot use the store ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: {what} ({exc}); restore it from a copy or start a new store") from None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tx(self, sql: str, rows: Iterable[tuple] | tuple = ()) -> int:
        """Run one statement (or many rows of it) in a single committed transaction."""
        with self.transaction() as cur:
            if isinstance(rows, tuple):
                cur.execute(sql, rows)
            else:
                cur.executemany(sql, rows)
            return cur.rowcount

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A cursor inside one ``BEGIN IMMEDIATE`` transaction (the write lock from the start, so
        what it reads stays true until it commits); rolled back on any exception."""
        if self.readonly:
            raise InputError(f"{self.path}: opened read-only; cannot write to it")
        with self._guard():
            if self.db.in_transaction:  # left open by a statement a Ctrl-C cut short: never commit it
                self.db.rollback()
            cur = self.db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.rollback()
                raise

    def _query(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        with self._guard():
            return self.db.execute(sql, args).fetchall()

    # -- meta ---------------------------------------------------------------------------------
    def set_meta(self, name: str, value: Any) -> None:
        self._tx("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                 (name, json.dumps(value, sort_keys=True)))

    def get_meta(self, name: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM meta WHERE name = ?", (name,))
        return default if not rows else json.loads(rows[0][0])

    # -- points -------------------------------------------------------------------------------
    def add_points(self, points: Iterable[tuple[str, dict]]) -> int:
        """Insert (key, resolved config) rows as pending; existing keys are left alone."""
        return self._tx("INSERT OR IGNORE INTO points (key, config) VALUES (?, ?)",
                        [(k, json.dumps(c, sort_keys=True)) for k, c in points])

    def rekey(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Move points from an old key to a new one in one transaction; a point being run is left
        alone, and where the new key exists already only a done point replaces a pending one.
        Returns how many moved."""
        moved = 0
        with self.transaction() as cur:
            for old, new in pairs:
                row = cur.execute("SELECT status FROM points WHERE key = ?", (old,)).fetchone()
                if row is None or row[0] == "running":
                    continue
                there = cur.execute("SELECT status FROM points WHERE key = ?", (new,)).fetchone()
                if there is not None:
                    if not (row[0] == "done" and there[0] == "pending"):
                        continue
                    cur.execute("DELETE FROM points WHERE key = ?", (new,))
                cur.execute("UPDATE points SET key = ? WHERE key = ?", (new, old))
                moved += 1
        return moved

    def statuses(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """key → status, for ``keys`` (all points when None)."""
        if keys is None:
            return dict(self._query("SELECT key, status FROM points"))
        keys = list(keys)
        out: dict[str, str] = {}
        for k in range(0, len(keys), 500):
            chunk = keys[k:k + 500]
            out.update(self._query(
                f"SELECT key, status FROM points WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def counts(self) -> dict[str, int]:
        """Number of points per status (every status present, 0 when none)."""
        got = dict(self._query("SELECT status, COUNT(*) FROM points GROUP BY status"))
        return {s: int(got.get(s, 0)) for s in STATUSES}

    def mark_running(self, keys: Iterable[str]) -> None:
        """Points as running with no claimant (free for any sweep to retake), one more attempt."""
        self._tx("UPDATE points SET status = 'running', attempts = attempts + 1, error = NULL, claimed_by = NULL, "
                 "lease_until = NULL WHERE key = ?", [(k,) for k in keys])

    def reset_running(self, keys: Iterable[str] | None = None, *, worker: str | None = None) -> int:
        """Points left running back to pending (all, or ``keys``; only ``worker``'s claims when
        given); returns how many."""
        sql = "UPDATE points SET status = 'pending', claimed_by = NULL, lease_until = NULL WHERE status = 'running'"
        if worker is not None:
            sql += " AND claimed_by = ?"
        if keys is None:
            return self._tx(sql, (worker,) if worker is not None else ())
        return self._tx(sql + " AND key = ?", [((worker, k) if worker is not None else (k,)) for k in keys])

    def claim(self, keys: Iterable[str], worker: str, *, limit: int, lease: float = LEASE_SECONDS,
              retry_before: float | None = None) -> dict[str, str]:
        """Claim up to ``limit`` of ``keys`` for ``worker`` in one transaction.

        A point is free when pending, when running with no live claim (lease expired, or a
        claimant of this host that has exited), or, given ``retry_before`` (Unix s), when it
        failed before that time. Returns, for each key looked at, ``claimed``, ``held`` (another
        live claim: look again later) or ``settled`` (done, or failed and not to be retried).
        """
        now = time.time()
        seen: dict[str, str] = {}
        n = 0
        with self.transaction() as cur:
            for k in keys:
                if n >= limit:
                    break
                row = cur.execute("SELECT status, claimed_by, lease_until, finished FROM points WHERE key = ?",
                                  (k,)).fetchone()
                if row is None:
                    raise InputError(f"{self.path}: no point with key {k[:12]}… to claim")
                status, by, until, finished = row
                if status == "running" and by != worker and until is not None and until > now and claimant_alive(by):
                    seen[k] = "held"
                    continue
                if status == "done" or (status == "failed" and (retry_before is None or (finished or 0) >= retry_before)):
                    seen[k] = "settled"
                    continue
                cur.execute("UPDATE points SET status = 'running', claimed_by = ?, lease_until = ?, "
                            "attempts = attempts + 1, error = NULL WHERE key = ?", (worker, now + lease, k))
                seen[k] = "claimed"
                n += 1
        return seen

    def renew(self, worker: str, lease: float = LEASE_SECONDS) -> int:
        """Extend every running claim of ``worker`` to ``lease`` seconds from now; how many."""
        return self._tx("UPDATE points SET lease_until = ? WHERE status = 'running' AND claimed_by = ?",
                        (time.time() + lease, worker))

    def record(self, key: str, outcome: dict, *, worker: str | None = None) -> bool:
        """Store one point's outcome (from :func:`cosim.study.tasks.execute_point`), committed.

        With ``worker``, only while that worker still holds the claim: False (nothing written)
        when another sweep took the point over after the lease expired.
        """
        status = outcome["status"]
        if status not in ("done", "failed"):
            raise InputError(f"outcome status must be done or failed, got {status!r}")
        metrics = outcome.get("metrics")
        sql = ("UPDATE points SET status = ?, metrics = ?, error = ?, started = ?, finished = ?, seconds = ?, "
               "host = ?, versions = ?, claimed_by = NULL, lease_until = NULL WHERE key = ?")
        args = (status, None if metrics is None else json.dumps(metrics, sort_keys=True), outcome.get("error"),
                outcome.get("started"), outcome.get("finished", time.time()), outcome.get("seconds"),
                outcome.get("host"), None if outcome.get("versions") is None else json.dumps(outcome["versions"]),
                key)
        if worker is not None:
            sql += " AND status = 'running' AND claimed_by = ?"
            args += (worker,)
        if self._tx(sql, args) == 1:
            return True
        if worker is not None and self._query("SELECT 1 FROM points WHERE key = ?", (key,)):
            return False
        raise InputError(f"{self.path}: no point with key {key[:12]}… to record")

    def rows(self, status: str | None = None) -> Iterator[PointRow]:
        """Stored points (all, or those with ``status``), in insertion order."""
        sql = "SELECT key, config, status, metrics, error, started, finished, seconds, host, versions, attempts FROM points"
        args: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        for r in self._query(sql + " ORDER BY rowid", args):
            yield PointRow(key=r[0], config=json.loads(r[1]), status=r[2], metrics=_loads(r[3]), error=r[4],
                           started=r[5], finished=r[6], seconds=r[7], host=r[8], versions=_loads(r[9]),
                           attempts=r[10])

    def get(self, key_prefix: str) -> PointRow:
        """The point whose key starts with ``key_prefix`` (at least 4 hex digits, unambiguous)."""
        if len(key_prefix) < 4:
            raise InputError(f"point key {key_prefix!r} is too short; give at least 4 characters")
        hits = [r[0] for r in self._query("SELECT key FROM points WHERE key LIKE ? LIMIT 2",
                                              (key_prefix.replace("%", "").replace("_", "") + "%",))]
        if not hits:
            raise InputError(f"{self.path}: no point with key {key_prefix!r}")
        if len(hits) > 1:
            raise InputError(f"{self.path}: point key {key_prefix!r} is ambiguous; give more characters")
        return next(r for r in self.rows() if r.key == hits[0])
