"""What a sweep has found so far, read from the store (and Optuna's study for importance).

The store is the one source of truth for trials: each is a run whose `sweep` names the
sweep and whose `trial` is its Optuna number. The command line's final line and the
dashboard's Sweep page both read this report, so they cannot disagree.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

from nets.store import RunStore, SweepRecord
from nets.sweep_spec import SweepSpec


@dataclass(frozen=True)
class TrialRow:
    """One trial as the store holds it."""

    trial: int
    run_id: int
    status: str  # running | finished | pruned | diverged | stopped | failed | interrupted
    params: dict  # the knobs' values
    val_acc: float | None  # after its last committed epoch: the objective
    test_acc: float | None
    epochs: int  # committed epochs
    planned_epochs: int
    seconds: float  # training time


@dataclass(frozen=True)
class SweepReport:
    record: SweepRecord
    spec: SweepSpec
    rows: tuple[TrialRow, ...]  # by trial number

    def count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.rows)

    @property
    def best(self) -> TrialRow | None:
        """The finished trial with the best validation accuracy (ties: the earlier trial)."""
        done = [r for r in self.rows if r.status == "finished" and r.val_acc is not None]
        return max(done, key=lambda r: (r.val_acc, -r.trial)) if done else None

    @property
    def done(self) -> int:
        """Trials that ended and used a place in the budget: finished, pruned, diverged or
        failed (a stopped or interrupted one is tried again; see sweep_trial.counted_trials)."""
        return self.count("finished", "pruned", "diverged", "failed")

    @property
    def epochs_trained(self) -> int:
        return sum(r.epochs for r in self.rows)

    @property
    def epochs_saved(self) -> int:
        """Epochs the pruned trials did not train: what pruning saved."""
        return sum(r.planned_epochs - r.epochs for r in self.rows if r.status == "pruned")

    def best_so_far(self) -> list[tuple[int, float, float]]:
        """(trial, its validation accuracy, the best so far) of each finished trial, in order."""
        points, best = [], float("-inf")
        for row in self.rows:
            if row.status == "finished" and row.val_acc is not None:
                best = max(best, row.val_acc)
                points.append((row.trial, row.val_acc, best))
        return points

    def final(self) -> dict:
        """The command line's last `--json` object."""
        best = self.best
        planned = self.epochs_trained + self.epochs_saved
        return {
            "final": True,
            "sweep_id": self.record.sweep_id,
            "status": self.record.status,
            "trials": len(self.rows),
            "finished": self.count("finished"),
            "pruned": self.count("pruned"),
            **{ending: self.count(ending) for ending in OTHER_ENDINGS},  # each named: a diverged trial did not fail
            "best_trial": best.trial if best else None,
            "best_params": best.params if best else None,
            "best_val_acc": best.val_acc if best else None,
            "best_test_acc": best.test_acc if best else None,
            "best_run_id": best.run_id if best else None,
            "epochs_trained": self.epochs_trained,
            "epochs_saved": self.epochs_saved,
            "epochs_saved_share": self.epochs_saved / planned if planned else 0.0,
        }


OTHER_ENDINGS = ("diverged", "stopped", "interrupted", "failed")  # trials that ended neither finished nor pruned


def report(store: RunStore, sweep_id: str) -> SweepReport:
    record = store.sweep(sweep_id)
    spec = SweepSpec.from_dict(record.spec)
    runs = [r for r in store.runs(sweep=sweep_id) if r.trial is not None]
    histories = store.histories(r.run_id for r in runs)
    rows = []
    for run in runs:
        history = histories.get(run.run_id, [])
        last = history[-1] if history else None
        rows.append(
            TrialRow(
                trial=run.trial,
                run_id=run.run_id,
                status=run.status,
                params={k.name: getattr(run.config, k.name) for k in spec.knobs},
                val_acc=last.val_acc if last else None,
                test_acc=last.test_acc if last else None,
                epochs=len(history),
                planned_epochs=run.config.epochs,
                seconds=run.train_seconds,
            )  # fmt: skip
        )
    return SweepReport(record, spec, tuple(sorted(rows, key=lambda r: r.trial)))


def importance(record: SweepRecord) -> dict[str, float] | None:
    """Optuna's importance of each knob (its default evaluator) over the finished trials,
    or None while there are too few of them to judge (fewer than 3, or no knob varied)."""
    import optuna

    from nets.sweep_trial import open_storage

    optuna.logging.set_verbosity(logging.WARNING)
    try:
        study = optuna.load_study(study_name=record.sweep_id, storage=open_storage(record.storage))
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(complete) < 3:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except Exception:  # noqa: BLE001 - too few trials, or a study that cannot be read now (a shared database
        return None  # out of reach, a file gone): the importance is an extra, never the page's failure
    return dict(found) or None
