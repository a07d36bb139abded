"""The results store: one SQLite file per study (WAL mode), one row per point.

Table ``points``: key (sha256 of the resolved config, primary key), config (JSON), status
(pending | running | done | failed), metrics (JSON), error (one line), started / finished (Unix
seconds), seconds (the point's own run time), host, versions (JSON), attempts (how many times a
sweep submitted the point). Table ``meta`` holds the study's name, task, config and export
selection as JSON values.

Only the driver process writes (workers return results), and every result is committed as it
arrives, so a study killed at any moment leaves a consistent store that the next run resumes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
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
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS points_status ON points (status);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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
    """A study's SQLite store. ``Store(path, create=False)`` refuses a missing file."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise InputError(f"{self.path}: no such study store")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if create:
                self.db.executescript(SCHEMA)
            else:
                tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "points" not in tables:
                    raise InputError(f"{self.path}: not a cosim study store (no points table)")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a cosim study store ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tx(self, sql: str, rows: Iterable[tuple] | tuple = ()) -> int:
        """Run one statement (or many rows of it) in a single committed transaction."""
        if self.db.in_transaction:  # left open by a statement a Ctrl-C cut short: never commit it
            self.db.rollback()
        cur = self.db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            if isinstance(rows, tuple):
                cur.execute(sql, rows)
            else:
                cur.executemany(sql, rows)
            n = cur.rowcount
            cur.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.rollback()
            raise
        return n

    # -- meta ---------------------------------------------------------------------------------
    def set_meta(self, name: str, value: Any) -> None:
        self._tx("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                 (name, json.dumps(value, sort_keys=True)))

    def get_meta(self, name: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- points -------------------------------------------------------------------------------
    def add_points(self, points: Iterable[tuple[str, dict]]) -> int:
        """Insert (key, resolved config) rows as pending; existing keys are left alone."""
        return self._tx("INSERT OR IGNORE INTO points (key, config) VALUES (?, ?)",
                        [(k, json.dumps(c, sort_keys=True)) for k, c in points])

    def statuses(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """key → status, for ``keys`` (all points when None)."""
        if keys is None:
            return dict(self.db.execute("SELECT key, status FROM points"))
        keys = list(keys)
        out: dict[str, str] = {}
        for k in range(0, len(keys), 500):
            chunk = keys[k:k + 500]
            out.update(self.db.execute(
                f"SELECT key, status FROM points WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def counts(self) -> dict[str, int]:
        """Number of points per status (every status present, 0 when none)."""
        got = dict(self.db.execute("SELECT status, COUNT(*) FROM points GROUP BY status"))
        return {s: int(got.get(s, 0)) for s in STATUSES}

    def mark_running(self, keys: Iterable[str]) -> None:
        """Submitted points: status running, one more attempt."""
        self._tx("UPDATE points SET status = 'running', attempts = attempts + 1, error = NULL WHERE key = ?",
                 [(k,) for k in keys])

    def reset_running(self, keys: Iterable[str] | None = None) -> int:
        """Points left running (an interrupted sweep) back to pending; returns how many."""
        if keys is None:
            return self._tx("UPDATE points SET status = 'pending' WHERE status = 'running'")
        return self._tx("UPDATE points SET status = 'pending' WHERE status = 'running' AND key = ?",
                        [(k,) for k in keys])

    def record(self, key: str, outcome: dict) -> None:
        """Store one point's outcome (from :func:`cosim.study.tasks.execute_point`), committed."""
        status = outcome["status"]
        if status not in ("done", "failed"):
            raise InputError(f"outcome status must be done or failed, got {status!r}")
        metrics = outcome.get("metrics")
        n = self._tx(
            "UPDATE points SET status = ?, metrics = ?, error = ?, started = ?, finished = ?, seconds = ?, "
            "host = ?, versions = ? WHERE key = ?",
            (status, None if metrics is None else json.dumps(metrics, sort_keys=True), outcome.get("error"),
             outcome.get("started"), outcome.get("finished", time.time()), outcome.get("seconds"),
             outcome.get("host"), None if outcome.get("versions") is None else json.dumps(outcome["versions"]),
             key))
        if n != 1:
            raise InputError(f"{self.path}: no point with key {key[:12]}… to record")

    def rows(self, status: str | None = None) -> Iterator[PointRow]:
        """Stored points (all, or those with ``status``), in insertion order."""
        sql = "SELECT key, config, status, metrics, error, started, finished, seconds, host, versions, attempts FROM points"
        args: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        for r in self.db.execute(sql + " ORDER BY rowid", args):
            yield PointRow(key=r[0], config=json.loads(r[1]), status=r[2], metrics=_loads(r[3]), error=r[4],
                           started=r[5], finished=r[6], seconds=r[7], host=r[8], versions=_loads(r[9]),
                           attempts=r[10])

    def get(self, key_prefix: str) -> PointRow:
        """The point whose key starts with ``key_prefix`` (at least 4 hex digits, unambiguous)."""
        if len(key_prefix) < 4:
            raise InputError(f"point key {key_prefix!r} is too short; give at least 4 characters")
        hits = [r[0] for r in self.db.execute("SELECT key FROM points WHERE key LIKE ? LIMIT 2",
                                              (key_prefix.replace("%", "").replace("_", "") + "%",))]
        if not hits:
            raise InputError(f"{self.path}: no point with key {key_prefix!r}")
        if len(hits) > 1:
            raise InputError(f"{self.path}: point key {key_prefix!r} is ambiguous; give more characters")
        return next(r for r in self.rows() if r.key == hits[0])
