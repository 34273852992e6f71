"""Runs side by side: one flat row per run (settings and results), filters, and which
settings differ. Pure functions over store records, for the Compare page and the CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from nets.config import TrainConfig
from nets.store import RunRecord

SETTINGS = tuple(f.name for f in dataclasses.fields(TrainConfig))
# Results a run has, by column name; all "higher is better" except the time.
METRICS = ("best_val_acc", "test_acc", "epochs_done", "train_seconds")
NUMERIC_SETTINGS = tuple(
    name for name in SETTINGS if name not in ("activation", "init", "optimizer", "lr_schedule", "dtype", "shuffle")
)
LOG_SCALE = ("learning_rate", "weight_decay", "init_std")  # explored by factors


def row(record: RunRecord) -> dict:
    """A run as one flat dict: identity, provenance, every setting, the results."""
    return {
        "run": record.run_id,
        "name": record.name,
        "status": record.status,
        "source": record.source,
        "tags": ", ".join(record.tags),
        "sweep": record.sweep or "",
        "created": record.created,
        **record.config.to_dict(),
        "epochs_done": record.epochs_done,
        "best_val_acc": record.best_val_acc,
        "test_acc": record.test_acc,
        "train_seconds": record.train_seconds,
    }


def differing(records: Sequence[RunRecord]) -> list[str]:
    """The settings that do not have the same value in every one of `records`."""
    if len(records) < 2:
        return []
    first = records[0].config
    return [name for name in SETTINGS if any(getattr(r.config, name) != getattr(first, name) for r in records[1:])]


def matches(
    record: RunRecord,
    statuses: Iterable[str] = (),
    sources: Iterable[str] = (),
    tags: Iterable[str] = (),
    sweep: str | None = None,
) -> bool:
    """Does a run pass the filters? An empty filter lets everything through; tags: any of them."""
    statuses, sources, tags = set(statuses), set(sources), set(tags)
    return (
        (not statuses or record.status in statuses)
        and (not sources or record.source in sources)
        and (not tags or bool(tags & set(record.tags)))
        and (sweep is None or record.sweep == sweep)
    )


def numeric(value) -> float | None:
    """A setting or result as a number for a chart (booleans as 0/1); None when absent."""
    if value is None or isinstance(value, str):
        return None
    return float(value)


PARALLEL_LINES = 200  # lines a parallel-coordinates chart shows at most


def best_rows(rows: Sequence[dict], metric: str, limit: int, keep: set[int] = frozenset()) -> list[dict]:
    """At most `limit` rows: the best by `metric` (time: the fastest), plus every row whose
    run is in `keep`, in their original order."""
    if len(rows) <= limit:
        return list(rows)
    sign = 1 if metric == "train_seconds" else -1
    ranked = sorted((r for r in rows if r[metric] is not None), key=lambda r: sign * r[metric])
    chosen = {r["run"] for r in ranked[:limit]} | set(keep)
    return [r for r in rows if r["run"] in chosen]
