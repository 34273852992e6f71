"""Run bundles: one run of the store as a single `.npz` file, to move it to another store.

A bundle is a model file (weights, config, meta, the optimiser's state when the run has
one: what `checkpoint.save_model` writes) plus three JSON text arrays: `run` (name,
status, source, notes, tags, message), `history` (one object per epoch, as EpochMetrics)
and `trace` (the per-batch loss trace, [fractional epoch, loss] pairs). A plain model
file is a bundle without them. Reading one never unpickles, bounds every size before
loading, and reads the model part with `checkpoint.read_archive`, whose checks it keeps.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, fields

import numpy as np

from nets.checkpoint import MAX_FILE_BYTES, LoadedModel, ModelFileError, guarded, read_archive, save_model
from nets.store import END_STATUSES, RunStore
from nets.training import EpochMetrics

RUN_ARRAYS = ("run", "history", "trace")  # what a bundle adds to a model file
MAX_RUN_BYTES = 16 * 1024 * 1024  # 1,000 epochs of metrics and 50 trace points each take about 3 MB
MAX_BUNDLE_BYTES = MAX_FILE_BYTES + MAX_RUN_BYTES
MAX_EPOCHS = 1000  # TrainConfig's limit
MAX_TRACE_POINTS = 100 * MAX_EPOCHS
METRICS = {f.name: f.type for f in fields(EpochMetrics)}


@dataclass(frozen=True)
class Bundle:
    """A run read from a bundle: its model, its curves and what described it."""

    loaded: LoadedModel
    history: tuple[EpochMetrics, ...]
    trace: tuple[tuple[float, float], ...]
    name: str
    status: str  # an ending status; a run exported while it trained reads as interrupted
    notes: str
    tags: tuple[str, ...]
    message: str


def bundle_bytes(store: RunStore, run_id: int) -> bytes:
    """Run `run_id` of `store` as a bundle: its newest weights and the history up to them."""
    record = store.run(run_id)
    loaded = store.load(run_id)
    epochs = record.weights_epochs or 0
    history = [m.to_dict() for m in store.history(run_id) if m.epoch < epochs]
    trace = [[step, loss] for step, loss in store.trace(run_id) if step <= epochs]
    run = {
        "name": record.name,
        "status": record.status,
        "source": record.source,
        "notes": record.notes,
        "tags": list(record.tags),
        "message": record.message,
    }
    buffer = io.BytesIO()
    save_model(buffer, loaded.net, loaded.config, {**loaded.meta, "epochs_trained": epochs}, loaded.optimizer_state)
    with zipfile.ZipFile(buffer, "a") as archive:
        for key, value in (("run", run), ("history", history), ("trace", trace)):
            member = io.BytesIO()
            np.save(member, np.array(json.dumps(value)))
            archive.writestr(f"{key}.npy", member.getvalue())
    return buffer.getvalue()


def read_bundle(data: bytes, name: str = "bundle") -> Bundle:
    """A bundle (or a plain model file) from its bytes; ModelFileError names the fault."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise ModelFileError(f"{name}: {len(data)} bytes, larger than any run bundle this app makes")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError(f"{name}: not an .npz model file or run bundle (expected a zip archive of arrays)")
    loaded, texts = guarded(name, lambda: read_archive(data, name, RUN_ARRAYS, MAX_RUN_BYTES))
    if not texts:
        return _bundle(loaded, {}, [], [], name)
    missing = sorted(set(RUN_ARRAYS) - set(texts))
    if missing:
        raise ModelFileError(f"{name}: a run bundle holds run, history and trace (missing {missing[0]!r})")
    return _bundle(loaded, texts["run"], texts["history"], texts["trace"], name)


def import_bundle(store: RunStore, bundle: Bundle, name: str | None = None) -> int:
    """Keep `bundle` in `store` as a new run (source "import") with its curves; its id."""
    return store.add_model(
        bundle.loaded,
        name=name or bundle.name,
        source="import",
        history=bundle.history,
        trace=bundle.trace,
        status=bundle.status,
        message=bundle.message,
        notes=bundle.notes,
        tags=bundle.tags,
    )


def _bundle(loaded: LoadedModel, run, history, trace, name: str) -> Bundle:
    """Check the run's description and curves against each other and the weights."""
    if not isinstance(run, dict):
        raise ModelFileError(f"{name}: run must be a JSON object")
    text = {key: run.get(key, "") for key in ("name", "status", "notes", "message")}
    if not all(isinstance(value, str) for value in text.values()):
        raise ModelFileError(f"{name}: run name, status, notes and message must be text")
    tags = run.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ModelFileError(f"{name}: run tags must be a list of text")
    epochs = _history(history, name)
    trained = loaded.meta.get("epochs_trained", len(epochs))
    if history and trained != len(epochs):
        raise ModelFileError(f"{name}: the history has {len(epochs)} epochs, the weights are after {trained}")
    status = text["status"] if text["status"] in END_STATUSES else ("interrupted" if history else "uploaded")
    return Bundle(
        loaded=loaded,
        history=epochs,
        trace=_trace(trace, name),
        name=" ".join(text["name"].split())[:80] or name.removesuffix(".npz"),
        status=status,
        notes=text["notes"][:10_000],
        tags=tuple(tags),
        message=text["message"][:1000],
    )


def _history(history, name: str) -> tuple[EpochMetrics, ...]:
    if not isinstance(history, list) or len(history) > MAX_EPOCHS:
        raise ModelFileError(f"{name}: history must be a list of at most {MAX_EPOCHS} epochs")
    epochs = []
    for index, values in enumerate(history):
        if not isinstance(values, dict) or set(values) != set(METRICS):
            raise ModelFileError(f"{name}: history epoch {index} must hold exactly {', '.join(METRICS)}")
        for key, kind in METRICS.items():
            value = values[key]
            whole = kind == "int"
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
                raise ModelFileError(f"{name}: history epoch {index}: {key} must be a number")
            if not whole and math.isnan(value):
                raise ModelFileError(f"{name}: history epoch {index}: {key} is NaN")
        if values["epoch"] != index:
            raise ModelFileError(f"{name}: history epoch {index} says it is epoch {values['epoch']}")
        epochs.append(EpochMetrics(**values))
    return tuple(epochs)


def _trace(trace, name: str) -> tuple[tuple[float, float], ...]:
    ok = isinstance(trace, list) and len(trace) <= MAX_TRACE_POINTS
    points = []
    for point in trace if ok else ():
        if not (isinstance(point, list) and len(point) == 2 and all(_finite(v) for v in point)):
            ok = False
            break
        points.append((float(point[0]), float(point[1])))
    if not ok:
        raise ModelFileError(f"{name}: trace must be a list of at most {MAX_TRACE_POINTS} [epoch, loss] pairs")
    return tuple(points)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
