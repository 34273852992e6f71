"""RunStore: every run, from any front end, in one SQLite file plus its weight files.

The runs directory (`--runs-dir`, `MNIST_RUNS_DIR`, else `$XDG_DATA_HOME/mnist-dashboard`,
else `~/.local/share/mnist-dashboard`) holds `runs.sqlite` and `weights/run-N/after-E.npz`.
Several processes write at once (the dashboard server, command-line runs, sweep workers):
SQLite in WAL mode with a busy timeout, one short transaction per write, a connection per
call. Each finished epoch is one transaction, committed after its weights file is renamed
into place, so a crash loses at most the epoch in progress. A run whose process died
while it trained reads back as `interrupted`.

A file that is not this store's (not SQLite, another application's tables, a newer
schema) is refused with a one-line StoreError naming it; it is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from nets.checkpoint import LoadedModel, load_model, save_model
from nets.config import ConfigError, TrainConfig
from nets.training import EpochMetrics
from nets.two_layer_net import TwoLayerNet

DB_NAME = "runs.sqlite"
APPLICATION_ID = 0x4D4E5354  # "MNST": marks the file as this store's
BUSY_TIMEOUT_MS = 15_000

# Where a run came from.
SOURCES = ("dashboard", "cli", "upload", "import", "sweep")
# Statuses a run can have in the store; `interrupted` is also derived on read for a run
# whose process is gone.
LIVE_STATUSES = ("pending", "queued", "running", "paused")  # queued: waiting for a training slot
_LIVE_MARKS = ",".join("?" * len(LIVE_STATUSES))  # SQL placeholders for them
END_STATUSES = ("finished", "stopped", "diverged", "failed", "interrupted", "uploaded", "pruned")
METRIC_NAMES = tuple(f.name for f in fields(EpochMetrics))


class StoreError(RuntimeError):
    """The store cannot be used or written; the one-line message says what to do."""


def default_runs_dir() -> Path:
    """MNIST_RUNS_DIR, else $XDG_DATA_HOME/mnist-dashboard, else ~/.local/share/mnist-dashboard."""
    if os.environ.get("MNIST_RUNS_DIR"):
        return Path(os.environ["MNIST_RUNS_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mnist-dashboard"


# --- schema ------------------------------------------------------------------------------------

# MIGRATIONS[k] brings a store from user_version k to k + 1. Never edit a shipped step:
# add one. Version 1 is the first store; version 2 added tags, notes, sweeps and the trace;
# version 3 the sweeps table and a run's trial number within its sweep.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        owner TEXT,
        host TEXT,
        pid INTEGER,
        pid_started INTEGER,
        created REAL NOT NULL,
        ended REAL
    );
    CREATE TABLE epochs (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        val_acc REAL NOT NULL,
        test_acc REAL NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (run_id, epoch)
    );
    CREATE TABLE weights (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        epochs INTEGER NOT NULL,
        file TEXT NOT NULL,
        PRIMARY KEY (run_id, epochs)
    );
    """,
    """
    ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN sweep TEXT;
    CREATE TABLE tags (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (run_id, tag)
    );
    CREATE TABLE trace (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        step REAL NOT NULL,
        loss REAL NOT NULL
    );
    CREATE INDEX trace_run ON trace (run_id, step);
    CREATE INDEX runs_owner ON runs (owner);
    """,
    """
    ALTER TABLE runs ADD COLUMN trial INTEGER;
    CREATE TABLE sweeps (
        sweep_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        storage TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        stop_requested INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        host TEXT,
        pid INTEGER,
        pid_started INTEGER,
        created REAL NOT NULL,
        ended REAL
    );
    CREATE INDEX runs_sweep ON runs (sweep, trial);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class RunRecord:
    """One run as the store holds it: settings, provenance, status and a summary of results."""

    run_id: int
    name: str
    config: TrainConfig
    source: str  # dashboard | cli | upload | import | sweep
    status: str  # LIVE_STATUSES or END_STATUSES (queued: waiting for one of the server's training slots)
    message: str  # why it diverged, failed or was interrupted; empty otherwise
    owner: str | None  # the browser that started it (dashboard runs); None: anyone may act on it
    created: float  # epoch seconds
    ended: float | None
    notes: str
    tags: tuple[str, ...]
    sweep: str | None
    trial: int | None  # the trial's number within its sweep (None: not a sweep's trial)
    epochs_done: int  # committed epochs
    best_val_acc: float | None
    test_acc: float | None  # after the last committed epoch
    train_seconds: float  # sum of the epochs' training time
    weights_epochs: int | None  # epochs behind the newest weights file (None: no weights)

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class Snapshot:
    """Weights kept after `epochs` epochs (a power of two, or the last)."""

    epochs: int
    path: Path


SWEEP_LIVE = ("running",)
SWEEP_END = ("finished", "stopped", "interrupted", "failed")


@dataclass(frozen=True)
class SweepRecord:
    """One sweep as the store holds it; its trials are the runs whose `sweep` is `sweep_id`."""

    sweep_id: str
    name: str
    spec: dict  # the SweepSpec as JSON (nets.sweep_spec reads it)
    storage: str  # the Optuna storage URL holding its study (named `sweep_id`)
    status: str  # running | finished | stopped | interrupted | failed
    message: str
    stop_requested: bool
    owner: str | None  # the browser that started it; None: anyone may stop it
    created: float
    ended: float | None

    @property
    def live(self) -> bool:
        return self.status in SWEEP_LIVE


def keeps_snapshot(epochs: int) -> bool:
    """Weights after 1, 2, 4, 8, ... epochs stay for replay; others only while they are the newest."""
    return epochs > 0 and epochs & (epochs - 1) == 0


def _process_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of process `pid` (Linux /proc), or None."""
    try:
        fields_after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields_after_name[0], int(fields_after_name[19])
    except (OSError, IndexError, ValueError):
        return None


def _process_started(pid: int) -> int | None:
    """The start time of process `pid`, to tell it from a later process given the same pid."""
    stat = _process_stat(pid)
    return stat[1] if stat else None


def _process_alive(pid: int | None, started: int | None) -> bool:
    """Whether the process that trained a run still runs. A zombie (killed, not yet waited
    for by its parent) has ended: it will never commit another epoch."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    stat = _process_stat(pid)
    if stat is None:
        return True  # no /proc: trust kill(0)
    state, now = stat
    return state not in ("Z", "X") and (started is None or now == started)


HOST = socket.gethostname()


class RunStore:
    """The runs directory. Cheap to create; thread-safe (a connection per call)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()
        self.path = self.root / DB_NAME
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the runs directory {self.root} ({exc.strerror or exc}): "
                "name a writable one with --runs-dir or MNIST_RUNS_DIR"
            ) from None
        self._open_and_migrate()
        self.reap()

    # --- connections ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open it ({exc}); check the runs directory's permissions") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.DatabaseError as exc:
            raise StoreError(_describe(self.path, exc)) from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE: writers queue on the busy timeout)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _open_and_migrate(self) -> None:
        """Check that the file is this store's (or new), then bring its schema up to date.

        The check reads the header and the table list in one read transaction, and is made
        again under the write lock before migrating: several processes opening a new runs
        directory at once must neither mistake a half-seen store for a foreign file nor
        migrate it twice.
        """
        with _setup_lock(self.root), self._connect() as conn:
            conn.execute("BEGIN")
            version = self._check_file(conn)
            conn.execute("COMMIT")
            if version == SCHEMA_VERSION:
                return
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch it to WAL mode; use a local disk for the runs directory")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._check_file(conn)  # another process may have migrated meanwhile
                for step in MIGRATIONS[version:]:
                    for statement in filter(str.strip, step.split(";")):
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _check_file(self, conn: sqlite3.Connection) -> int:
        """The file's schema version; StoreError when it is another program's, or newer."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (app_id != 0 or tables or version):
            raise StoreError(
                f"{self.path} is not a runs database of this dashboard (another program's file?): "
                "move it aside and a new store is made; it was not changed"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer version of this dashboard (schema {version}, "
                f"this one knows {SCHEMA_VERSION}): upgrade, or use another --runs-dir"
            )
        return version

    # --- writing -------------------------------------------------------------------------------

    def create_run(
        self,
        config: TrainConfig,
        *,
        source: str,
        name: str = "",
        owner: str | None = None,
        status: str = "pending",
        tags: Iterable[str] = (),
        notes: str = "",
        sweep: str | None = None,
        trial: int | None = None,
        pid: int | None = None,
    ) -> int:
        """A new run; its process (this one, unless `pid` says otherwise) is watched for liveness."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
        pid = os.getpid() if pid is None else pid
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (name, config, source, status, owner, host, pid, pid_started, created, notes, sweep,"
                " trial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, json.dumps(config.to_dict()), source, status, owner, HOST, pid, _process_started(pid),
                 time.time(), notes, sweep, trial),
            )  # fmt: skip
            run_id = cursor.lastrowid
            if not name:
                conn.execute("UPDATE runs SET name = ? WHERE run_id = ?", (f"run {run_id}", run_id))
            conn.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", [(run_id, t) for t in _clean_tags(tags)])
        return run_id

    def set_status(self, run_id: int, status: str, message: str = "") -> None:
        ended = time.time() if status in END_STATUSES else None
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, message = ?, ended = ? WHERE run_id = ?", (status, message, ended, run_id)
            )

    def continue_run(self, run_id: int, config: TrainConfig, pid: int | None = None) -> None:
        """A run trains again (resumed): new plan, this process now owns its liveness.

        Refused (StoreError) when the run is gone or live: two processes continuing the
        same run at once would both append to its history; one of them wins here.
        """
        pid = os.getpid() if pid is None else pid
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE runs SET status = 'running', message = '', ended = NULL, config = ?, host = ?, pid = ?,"
                f" pid_started = ? WHERE run_id = ? AND status NOT IN ({','.join('?' * len(LIVE_STATUSES))})",
                (json.dumps(config.to_dict()), HOST, pid, _process_started(pid), run_id, *LIVE_STATUSES),
            ).rowcount
            if not changed:
                row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                raise StoreError(
                    f"run {run_id} is {row[0]} already: it cannot be continued twice at once"
                    if row
                    else f"there is no run {run_id} in {self.path}"
                )

    def record_epoch(
        self,
        run_id: int,
        metrics: EpochMetrics,
        net: TwoLayerNet,
        config: TrainConfig,
        optimizer_state: dict[str, np.ndarray] | None = None,
        trace: Iterable[tuple[float, float]] = (),
        health: dict | None = None,
        lr_changes: Iterable[tuple[float, float]] = (),
    ) -> None:
        """Commit one finished epoch: its weights file first, then its metrics and trace
        (and the net's health that epoch, when measured: nets.health.EpochHealth.to_dict(),
        and the learning-rate changes made live during it: (fractional epoch, new rate)).

        The newest weights carry the optimizer's state, so the run can be continued; older
        ones are deleted unless they are replay snapshots (1, 2, 4, 8, ... epochs).
        """
        epochs = metrics.epoch + 1
        changes = [[float(step), float(rate)] for step, rate in lr_changes]
        path = self._weights_path(run_id, epochs)
        meta = {"run_id": run_id, "epochs_trained": epochs, "test_acc": metrics.test_acc, "val_acc": metrics.val_acc}
        self._write_weights(path, lambda f: save_model(f, net, config, meta, optimizer_state=optimizer_state))
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, metrics.epoch, json.dumps({**metrics.to_dict(), **({"health": health} if health else {}),
                                                        **({"lr_changes": changes} if changes else {})}),
                     metrics.val_acc, metrics.test_acc,
                     metrics.seconds),
                )  # fmt: skip
                conn.executemany("INSERT INTO trace VALUES (?, ?, ?)", [(run_id, s, v) for s, v in trace])
                kept = conn.execute("SELECT epochs FROM weights WHERE run_id = ? AND epochs != ?", (run_id, epochs))
                stale = [row[0] for row in kept.fetchall() if not keeps_snapshot(row[0])]
                conn.execute("INSERT OR REPLACE INTO weights VALUES (?, ?, ?)", (run_id, epochs, path.name))
                conn.executemany("DELETE FROM weights WHERE run_id = ? AND epochs = ?", [(run_id, e) for e in stale])
        except BaseException:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # left empty when the run was deleted meanwhile
            raise
        for e in stale:
            self._weights_path(run_id, e).unlink(missing_ok=True)

    def keep_best(
        self,
        run_id: int,
        epochs: int,
        net: TwoLayerNet,
        config: TrainConfig,
        optimizer_state: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Early stopping kept the weights after `epochs` epochs: they become the run's newest
        (with their optimizer state), so the run's model is the one its message names on
        every page, after a restart, in an export and when it is continued.

        The weights of the epochs after it are dropped, replay snapshots included: a replay
        past the kept epoch would show a model the run no longer has. The metrics stay."""
        path = self._weights_path(run_id, epochs)
        meta = {"run_id": run_id, "epochs_trained": epochs, "kept_by": "patience"}
        self._write_weights(path, lambda f: save_model(f, net, config, meta, optimizer_state=optimizer_state))
        with self._write() as conn:
            later = conn.execute("SELECT epochs FROM weights WHERE run_id = ? AND epochs > ?", (run_id, epochs))
            dropped = [row[0] for row in later.fetchall()]
            conn.execute("INSERT OR REPLACE INTO weights VALUES (?, ?, ?)", (run_id, epochs, path.name))
            conn.execute("DELETE FROM weights WHERE run_id = ? AND epochs > ?", (run_id, epochs))
        for e in dropped:
            self._weights_path(run_id, e).unlink(missing_ok=True)

    def _write_weights(self, path: Path, write) -> None:
        """write_atomically, an OSError (full disk, read-only directory) told as a StoreError."""
        try:
            write_atomically(path, write)
        except OSError as exc:
            why = exc.strerror or str(exc)
            hint = "free some space" if exc.errno == errno.ENOSPC else "check the runs directory"
            raise StoreError(f"cannot write {path} ({why}): {hint}") from None

    def add_model(
        self,
        loaded: LoadedModel,
        *,
        name: str,
        source: str = "upload",
        owner: str | None = None,
        history: Iterable[EpochMetrics] = (),
        trace: Iterable[tuple[float, float]] = (),
        status: str = "uploaded",
        message: str = "",
        notes: str = "",
        tags: Iterable[str] = (),
    ) -> int:
        """Keep a model from outside (an upload or an imported bundle) as a run with its weights."""
        history = list(history)
        run_id = self.create_run(loaded.config, source=source, name=name, owner=owner, status=status, notes=notes,
                                 tags=tags)  # fmt: skip
        try:
            trained = loaded.meta.get("epochs_trained")  # a file from outside: any JSON at all
            epochs = len(history) or (trained if isinstance(trained, int) and 0 < trained <= 10**6 else 0)
            path = self._weights_path(run_id, epochs)
            meta = {**loaded.meta, "run_id": run_id, "epochs_trained": epochs}
            state = loaded.optimizer_state or None
            self._write_weights(path, lambda f: save_model(f, loaded.net, loaded.config, meta, optimizer_state=state))
            with self._write() as conn:
                conn.executemany(
                    "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
                    [(run_id, m.epoch, json.dumps(m.to_dict()), m.val_acc, m.test_acc, m.seconds) for m in history],
                )
                conn.executemany("INSERT INTO trace VALUES (?, ?, ?)", [(run_id, s, v) for s, v in trace])
                conn.execute("INSERT INTO weights VALUES (?, ?, ?)", (run_id, epochs, path.name))
                conn.execute("UPDATE runs SET ended = ?, message = ? WHERE run_id = ?", (time.time(), message, run_id))
        except BaseException:
            with contextlib.suppress(StoreError, OSError):
                self.delete(run_id)  # best effort: the first error is the one to report
            raise
        return run_id

    def rename(self, run_id: int, name: str) -> None:
        name = " ".join(name.split())[:80]
        if not name:
            raise ValueError("a run's name cannot be empty")
        with self._write() as conn:
            conn.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name, run_id))

    def set_notes(self, run_id: int, notes: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE runs SET notes = ? WHERE run_id = ?", (notes[:10_000], run_id))

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM tags WHERE run_id = ?", (run_id,))
            conn.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", [(run_id, t) for t in _clean_tags(tags)])

    def delete(self, run_id: int) -> None:
        """Forget a run: its rows and its weight files."""
        with self._write() as conn:
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        folder = self._weights_dir(run_id)
        if folder.is_dir():
            for file in folder.iterdir():
                file.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()

    def reap(self) -> list[int]:
        """Record as interrupted every live run of this host whose process has died, and
        return their ids.

        A run is marked only if it still belongs to the dead process when the write lock is
        held: another process may have continued it since it was read here. A store that
        cannot be written is still readable: the runs then stay as they are.
        """
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT run_id, pid, pid_started FROM runs WHERE host = ? AND status IN ({_LIVE_MARKS})",
                (HOST, *LIVE_STATUSES),
            ).fetchall()
        dead = [(run_id, pid, started) for run_id, pid, started in rows if not _process_alive(pid, started)]
        if not dead:
            return []
        reaped = []
        try:
            with self._write() as conn:
                for run_id, pid, started in dead:
                    changed = conn.execute(
                        "UPDATE runs SET status = 'interrupted', message = ?, ended = ? WHERE run_id = ?"
                        f" AND host = ? AND pid IS ? AND pid_started IS ? AND status IN ({_LIVE_MARKS})",
                        ("its process ended while it trained", time.time(), run_id, HOST, pid, started,
                         *LIVE_STATUSES),
                    ).rowcount  # fmt: skip
                    if changed:
                        reaped.append(run_id)
        except StoreError:
            return []
        for run_id in reaped:
            self._drop_unlisted_files(run_id)
        return reaped

    def mark_interrupted(self, run_id: int, why: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = 'interrupted', message = ?, ended = ?"
                f" WHERE run_id = ? AND status IN ({_LIVE_MARKS})",
                (why, time.time(), run_id, *LIVE_STATUSES),
            )

    # --- reading -------------------------------------------------------------------------------

    def runs(self, run_ids: Iterable[int] | None = None, *, sweep: str | None = None) -> list[RunRecord]:
        """Runs, newest first (all of them, those named, or a sweep's trials). Listing them
        all, or a sweep's, first records the runs of dead processes as interrupted; reading
        named ones costs one query."""
        if run_ids is None:
            self.reap()
        where, args = "", ()
        if run_ids is not None:
            ids = [int(i) for i in run_ids]
            where, args = f"WHERE r.run_id IN ({','.join('?' * len(ids))})", tuple(ids)
        elif sweep is not None:
            where, args = "WHERE r.sweep = ?", (sweep,)
        with self._connect() as conn:
            rows = conn.execute(
                f"""SELECT r.run_id, r.name, r.config, r.source, r.status, r.message, r.owner, r.created, r.ended,
                           r.notes, r.sweep, r.trial,
                           (SELECT group_concat(tag, char(31)) FROM tags t WHERE t.run_id = r.run_id),
                           (SELECT count(*) FROM epochs e WHERE e.run_id = r.run_id),
                           (SELECT max(val_acc) FROM epochs e WHERE e.run_id = r.run_id),
                           (SELECT test_acc FROM epochs e WHERE e.run_id = r.run_id ORDER BY epoch DESC LIMIT 1),
                           (SELECT coalesce(sum(seconds), 0) FROM epochs e WHERE e.run_id = r.run_id),
                           (SELECT max(epochs) FROM weights w WHERE w.run_id = r.run_id)
                    FROM runs r {where} ORDER BY r.run_id DESC""",
                args,
            ).fetchall()
        return [_record(row) for row in rows]

    def run(self, run_id: int) -> RunRecord:
        found = self.runs([run_id])
        if not found:
            raise KeyError(f"there is no run {run_id} in {self.path}")
        return found[0]

    def history(self, run_id: int) -> list[EpochMetrics]:
        return self.histories([run_id]).get(run_id, [])

    def histories(self, run_ids: Iterable[int]) -> dict[int, list[EpochMetrics]]:
        ids = [int(i) for i in run_ids]
        if not ids:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT run_id, metrics FROM epochs WHERE run_id IN ({','.join('?' * len(ids))})"
                " ORDER BY run_id, epoch",
                ids,
            ).fetchall()
        out: dict[int, list[EpochMetrics]] = {i: [] for i in ids}
        for run_id, metrics in rows:
            values = json.loads(metrics)
            out[run_id].append(EpochMetrics(**{k: values[k] for k in METRIC_NAMES}))
        return out

    def health(self, run_id: int) -> list[dict]:
        """The net's health of each epoch that measured it, oldest first (EpochHealth.to_dict())."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT json_extract(metrics, '$.health') FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        return [json.loads(text) for (text,) in rows if text]

    def lr_changes(self, run_id: int) -> list[tuple[float, float]]:
        """The learning-rate changes made while the run trained: (fractional epoch, new base
        rate), oldest first; the curves mark them after the run, as they did live."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT json_extract(metrics, '$.lr_changes') FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        return [(float(step), float(rate)) for (text,) in rows if text for step, rate in json.loads(text)]

    def trace(self, run_id: int) -> list[tuple[float, float]]:
        """The light per-batch training-loss trace: (fractional epoch, loss)."""
        with self._connect() as conn:
            return conn.execute("SELECT step, loss FROM trace WHERE run_id = ? ORDER BY step", (run_id,)).fetchall()

    def snapshots(self, run_id: int) -> list[Snapshot]:
        """The weights kept for a run, oldest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT epochs, file FROM weights WHERE run_id = ? ORDER BY epochs", (run_id,))
            return [Snapshot(e, self._weights_dir(run_id) / f) for e, f in rows.fetchall()]

    def load(self, run_id: int, epochs: int | None = None) -> LoadedModel:
        """A run's weights (the newest, or those after `epochs` epochs), checked like any model file."""
        kept = self.snapshots(run_id)
        chosen = [s for s in kept if epochs is None or s.epochs == epochs]
        if not chosen:
            raise StoreError(f"run {run_id} has no weights" + (f" after {epochs} epochs" if epochs is not None else ""))
        return load_model(chosen[-1].path, name=f"run {run_id} ({chosen[-1].path.name})")

    def owners(self) -> dict[int, str | None]:
        with self._connect() as conn:
            return dict(conn.execute("SELECT run_id, owner FROM runs").fetchall())

    # --- sweeps --------------------------------------------------------------------------------

    def create_sweep(self, sweep_id: str, *, name: str, spec: dict, storage: str, owner: str | None = None) -> None:
        """A new sweep, driven by this process (watched for liveness like a run's)."""
        pid = os.getpid()
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO sweeps (sweep_id, name, spec, storage, status, owner, host, pid, pid_started, created)"
                    " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                    (sweep_id, name, json.dumps(spec), storage, owner, HOST, pid, _process_started(pid), time.time()),
                )
        except sqlite3.IntegrityError:
            raise StoreError(f"there is a sweep {sweep_id} already: resume it, or start a new one") from None

    def resume_sweep(self, sweep_id: str) -> SweepRecord:
        """This process drives the sweep again. Refused while another live process drives it."""
        self.reap_sweeps()
        pid = os.getpid()
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE sweeps SET status = 'running', message = '', stop_requested = 0, ended = NULL, host = ?,"
                " pid = ?, pid_started = ? WHERE sweep_id = ? AND status != 'running'",
                (HOST, pid, _process_started(pid), sweep_id),
            ).rowcount
        if not changed:
            record = self.sweep(sweep_id)  # KeyError when there is none
            raise StoreError(f"sweep {sweep_id} is {record.status} in another process: stop it there first")
        return self.sweep(sweep_id)

    def end_sweep(self, sweep_id: str, status: str, message: str = "") -> None:
        if status not in SWEEP_END:
            raise ValueError(f"a sweep ends as one of {', '.join(SWEEP_END)} (got {status!r})")
        with self._write() as conn:
            conn.execute(
                "UPDATE sweeps SET status = ?, message = ?, ended = ? WHERE sweep_id = ?",
                (status, message, time.time(), sweep_id),
            )

    def request_sweep_stop(self, sweep_id: str) -> None:
        """Ask the sweep's driver and its trials to stop (they look about twice a second)."""
        with self._write() as conn:
            conn.execute("UPDATE sweeps SET stop_requested = 1 WHERE sweep_id = ?", (sweep_id,))

    def sweep_stop_requested(self, sweep_id: str) -> bool:
        with self._connect() as conn:
            row = conn.execute("SELECT stop_requested FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone()
        return bool(row and row[0])

    def sweeps(self) -> list[SweepRecord]:
        """Every sweep, newest first; those whose driver died read as interrupted."""
        self.reap_sweeps()
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT sweep_id, name, spec, storage, status, message, stop_requested, owner, created, ended"
                " FROM sweeps ORDER BY created DESC"
            ).fetchall()
        return [SweepRecord(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9]) for r in rows]

    def sweep(self, sweep_id: str) -> SweepRecord:
        found = [s for s in self.sweeps() if s.sweep_id == sweep_id]
        if not found:
            raise KeyError(f"there is no sweep {sweep_id!r} in {self.path}")
        return found[0]

    def reap_sweeps(self) -> None:
        """Record as interrupted every running sweep of this host whose driver has died."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT sweep_id, pid, pid_started FROM sweeps WHERE host = ? AND status = 'running'", (HOST,)
            ).fetchall()
        dead = [row for row in rows if not _process_alive(row[1], row[2])]
        with contextlib.suppress(StoreError):
            for sweep_id, pid, started in dead:
                with self._write() as conn:
                    conn.execute(
                        "UPDATE sweeps SET status = 'interrupted', message = ?, ended = ? WHERE sweep_id = ?"
                        " AND pid IS ? AND pid_started IS ? AND status = 'running'",
                        ("its process ended while it ran: resume it", time.time(), sweep_id, pid, started),
                    )

    # --- files ---------------------------------------------------------------------------------

    def _drop_unlisted_files(self, run_id: int) -> None:
        """Delete what a killed process left in a run's folder: a half-written temporary
        file, or weights renamed into place whose epoch was never committed."""
        folder = self._weights_dir(run_id)
        if not folder.is_dir():
            return
        listed = {s.path.name for s in self.snapshots(run_id)}
        for file in folder.iterdir():
            if file.name not in listed:
                file.unlink(missing_ok=True)

    def _weights_dir(self, run_id: int) -> Path:
        return self.root / "weights" / f"run-{run_id}"

    def _weights_path(self, run_id: int, epochs: int) -> Path:
        return self._weights_dir(run_id) / f"after-{epochs}.npz"


@contextlib.contextmanager
def _setup_lock(root: Path) -> Iterator[None]:
    """Processes opening the store take turns checking and migrating it. Switching a new
    file to WAL needs it to themselves, and SQLite answers a rival opening at that moment
    with "database is locked" at once rather than after its busy timeout (seen here about
    once in ten opens of a new store by four processes)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: SQLite's own locking, as it is
        yield
        return
    try:
        handle = open(root / ".setup.lock", "a")  # noqa: SIM115 (closed below)
    except OSError:
        yield  # a read-only runs directory: nothing will be migrated there anyway
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock


def write_atomically(path: Path, write) -> None:
    """`write(file)` into a temporary name beside `path`, then rename: never a half file at `path`.

    The file and then its directory are synced before returning, so a database row
    committed afterwards never points at a file a power cut took back.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems that cannot sync a directory
            raise
    finally:
        os.close(directory)


def _clean_tags(tags: Iterable[str]) -> list[str]:
    return sorted({" ".join(str(t).split())[:40] for t in tags if str(t).strip()})


@functools.lru_cache(maxsize=4096)
def _config(text: str) -> TrainConfig:
    """A stored config, parsed and validated once per process: listings repeat (every page
    draw reads them) and TrainConfig is frozen, so one object can serve them all."""
    return TrainConfig.from_dict(json.loads(text))


def _record(row) -> RunRecord:
    (run_id, name, config, source, status, message, owner, created, ended, notes, sweep, trial, tags,
     epochs_done, best_val, test_acc, seconds, weights_epochs) = row  # fmt: skip
    try:
        cfg = _config(config)
    except (ConfigError, TypeError, ValueError) as exc:
        raise StoreError(f"run {run_id} has a config this version cannot read ({exc})") from None
    return RunRecord(
        run_id=run_id, name=name, config=cfg, source=source, status=status, message=message, owner=owner,
        created=created, ended=ended, notes=notes, tags=tuple(sorted(tags.split("\x1f"))) if tags else (),
        sweep=sweep, trial=trial, epochs_done=epochs_done, best_val_acc=best_val, test_acc=test_acc,
        train_seconds=seconds, weights_epochs=weights_epochs,
    )  # fmt: skip


def _describe(path: Path, exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return (
            f"{path} is damaged or not a runs database ({text}): move it aside and a new store is made; "
            "it was not changed"
        )
    if "full" in text:
        return f"{path}: the disk is full ({text}); free some space"
    if "readonly" in text or "read-only" in text:
        return f"{path}: the runs directory is read-only ({text}); name a writable one with MNIST_RUNS_DIR"
    return f"{path}: {text}"
