"""The words and widgets about runs, shared by the Train and Compare pages: a run's banner,
its table row, its actions, the current model's line, the epoch estimate. The engine
hands over records; the sentences are made here."""

from __future__ import annotations

import streamlit as st

import app_state
from nets.bundle import bundle_bytes
from nets.checkpoint import model_bytes
from nets.estimate import EpochEstimate
from nets.training import EpochMetrics
from nets.workspace import CHANCE_ACCURACY, PRETRAINED, RunView, Workspace, WorkspaceError, history_csv, learned


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def estimate_text(estimate: EpochEstimate, epochs: int) -> str:
    """'About 2.4 s per epoch (2.1-2.9 s over 12 epochs of earlier runs here), 12 s for 5 epochs.'"""
    spread = f"{estimate.low:.2g}-{estimate.high:.2g} s"
    if estimate.basis == "runs":
        basis = f"{spread} over {plural(estimate.samples, 'epoch')} of earlier runs with these settings here"
    else:
        basis = f"timed now on a slice of the data, {plural(estimate.samples, 'trial')}: {spread}; no run like it yet"
    return (
        f"About {estimate.seconds:.2g} s per epoch ({basis}), "
        f"{_seconds(estimate.seconds * epochs)} for {plural(epochs, 'epoch')}."
    )


def _seconds(value: float) -> str:
    return f"{value:.2g} s" if value < 10 else f"{value:,.0f} s"


def advice_for_no_learning(run: RunView) -> str:
    """What to try when a run stayed at chance level, from its settings."""
    c = run.config
    if c.learning_rate >= 1.0 or (c.optimizer == "adam" and c.learning_rate >= 0.05):
        used = f"{c.learning_rate:g} with {c.optimizer}"
        return f"a smaller learning rate (this run used {used}; try 10 to 100 times less)"
    if c.activation == "sigmoid" and c.init == "std" and c.init_std < 0.05:
        return "a larger initialisation (he or xavier): tiny sigmoid weights learn very slowly"
    return "a larger learning rate or more epochs"


def run_banner(run: RunView, history: list[EpochMetrics], test_size: int) -> None:
    """One box saying what happened to `run`, named, with its numbers."""
    status = run.status
    snap = run.snapshot() if run.live else None
    if snap is not None and snap.status == "queued":
        st.info(queue_text(run))
        return
    if snap is not None:
        p = snap.progress
        epoch = (p.epoch + 1) if p else len(history) + 1
        speed = f" · {snap.samples_per_sec:,.0f} samples/s" if snap.samples_per_sec else ""
        left = f" · about {snap.seconds_left:,.0f} s left" if snap.seconds_left is not None else ""
        st.progress(
            (p.batch / p.batches) if p else 0.0,
            text=f"{run.name}: {status}, epoch {epoch} of {run.config.epochs}, "
            f"batch {p.batch if p else 0:,} of {p.batches if p else 0:,}{speed}{left}",
        )
        if snap.recording_error:
            st.warning(f"{snap.recording_error}. The training goes on; its results will not be kept.")
        return
    done = len(history)
    if status == "diverged":
        st.error(f"{run.name} diverged: {run.record.message}")
        return
    if status == "failed":
        st.error(f"{run.name} failed: {run.record.message}")
        return
    if status == "uploaded":
        st.info(f"{run.name} is an uploaded model.")
        return
    if not history:
        st.info(f"{run.name} was {status} before its first epoch ended: no results to show.")
        return
    last = history[-1]
    rows = sum(m.samples_per_sec * m.seconds for m in history)
    seconds = sum(m.seconds for m in history)
    results = (
        f"test accuracy {last.test_acc:.2%}, {last.test_errors:,} of {test_size:,} test digits misclassified. "
        f"Training took {seconds:,.2f} s ({rows / seconds:,.0f} samples/s)."
    )
    best_val = max(m.val_acc for m in history)
    if not learned(best_val):
        st.warning(
            f"{run.name} did not learn: after {plural(done, 'epoch')} its validation accuracy is {best_val:.1%}, "
            f"chance level for ten digits is {CHANCE_ACCURACY:.0%} (loss {last.train_loss:.2f}; knowing nothing "
            f"costs ln 10 = 2.30). It does not become the current model. Try {advice_for_no_learning(run)}."
        )
    elif status == "finished":
        st.success(f"{run.name} finished after {plural(done, 'epoch')}: {results}")
    elif status == "interrupted":
        st.warning(
            f"{run.name} was interrupted after {plural(done, 'epoch')} of {run.config.epochs} "
            f"({run.record.message}): {results} Select it in the table to continue it."
        )
    else:
        why = f" ({run.record.message})" if run.record.message else ""
        st.info(f"{run.name} was {status} after {plural(done, 'epoch')} of {run.config.epochs}{why}: {results}")


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def queue_text(run: RunView) -> str:
    """'run 7 waits for a training slot: 3rd in line of 5 ... should start in about 40 s.'"""
    place = run.job.place() if run.job is not None else None
    slots = run.job.scheduler.slots if run.job is not None and run.job.scheduler is not None else None
    at_once = f"this server trains {plural(slots, 'run')} at once" if slots else "every slot is taken"
    if place is None:  # it just left the queue
        return f"{run.name} is about to start."
    line = "next in line" if place.position == 1 else f"{ordinal(place.position)} in line"
    if place.starts_in is None:
        when = "the runs ahead have not said yet how long they take"
    elif place.starts_in < 1:
        when = "it starts now"
    else:
        seconds = place.starts_in
        wait = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        when = f"it should start in about {wait}"
    return (
        f"{run.name} waits for a training slot ({at_once}): {line}, {place.waiting} waiting; {when}. "
        "Stop takes it out of the queue."
    )


def slots_text(scheduler) -> str | None:
    """A line when a run started now would wait for a training slot; None while one is free."""
    held, waiting = scheduler.counts()
    if held < scheduler.slots and not waiting:
        return None
    queue = f", {plural(waiting, 'run')} waiting" if waiting else ""
    return (
        f"Every training slot is taken (this server trains {plural(scheduler.slots, 'run')} at once{queue}): "
        "a run started now waits its turn, with its place in line shown here."
    )


RUN_COLUMNS = {
    "best val acc": st.column_config.NumberColumn(format="percent", width="small"),
    "test acc": st.column_config.NumberColumn(format="percent", width="small"),
    "lr": st.column_config.NumberColumn(format="%g", width="small"),
    "run": st.column_config.NumberColumn(width="small"),
}


def run_row(run: RunView, uploaded_acc: float | None = None) -> dict:
    """One row of a run table: the settings that differ most often, and the results."""
    r, c = run.record, run.config
    if r.status == "uploaded":  # epochs it was trained for elsewhere, when its file says
        epochs = f"{r.weights_epochs} (uploaded)" if r.weights_epochs else "uploaded"
    else:
        epochs = f"{r.epochs_done}/{c.epochs}"
    status = run.status if learned(r.best_val_acc) or r.status == "uploaded" or not r.epochs_done else "no learning"
    return {
        "run": r.run_id,
        "name": r.name,
        "status": status,
        "epochs": epochs,
        "test acc": r.test_acc if r.test_acc is not None else uploaded_acc,
        "best val acc": r.best_val_acc,
        "hidden": c.hidden_size,
        "optimizer": c.optimizer,
        "lr": c.learning_rate,
        "batch": c.batch_size,
        "source": r.source,
    }


def current_model(ws: Workspace, records: list | None = None) -> tuple[str, str]:
    """The current model's label and why it is the current one (the rule a user can predict)."""
    records = ws.store.runs() if records is None else records
    choice = ws.current_choice(records)
    label = app_state.model_label(choice, ws, records).removesuffix(" · current model")
    if ws.pinned is not None and ws.pinned == choice:
        return label, "chosen by you"
    if choice == PRETRAINED:
        return label, "until one of your runs finishes and learns"
    return label, "your latest finished run that learned"


def current_model_caption(ws: Workspace, records: list | None = None) -> str:
    label, why = current_model(ws, records)
    more = "; choose another below" if why != "chosen by you" else ""
    return f"Current model, used by the other pages: **{label}** ({why}{more})."


def run_actions_ui(ws: Workspace, run: RunView, data, prefix: str) -> None:
    """Buttons for one selected run: use it, load its settings, continue it, download it."""
    a1, a2, a3 = st.columns(3)
    usable = run.has_weights and run.learned and not run.live
    if a1.button("Use as the current model", disabled=not usable, key=f"{prefix}_use_model", width="stretch"):
        try:
            ws.pin(run.run_id)
        except WorkspaceError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    loaded = a2.button("Load its settings", key=f"{prefix}_load_settings", disabled=ws.active() is not None,
                       on_click=app_state.apply_settings, args=(run.config,), width="stretch")  # fmt: skip
    if loaded and prefix != "train":
        st.switch_page("pages/train.py")  # the settings are Train's controls: show them there
    if run.has_weights and not run.live:
        model = ws.model(run.run_id)
        meta = {"epochs_trained": model.epochs, "name": run.name, "run_id": run.run_id}
        if run.record.test_acc is not None:
            meta["test_acc"] = run.record.test_acc
        a3.download_button("Download model (.npz)", model_bytes(model.net(), model.config, meta),
                           f"mnist-run-{run.run_id}.npz", key=f"{prefix}_dl_model", width="stretch")  # fmt: skip
    c1, c2, c3 = st.columns(3)
    history = run.history()
    if history:
        c3.download_button("Download metrics (CSV)", history_csv(history), f"mnist-run-{run.run_id}.csv",
                           key=f"{prefix}_dl_csv", width="stretch")  # fmt: skip
    if run.has_weights and not run.live:
        c3.download_button("Download the run (bundle)", bundle_bytes(ws.store, run.run_id),
                           f"mnist-run-{run.run_id}-bundle.npz", key=f"{prefix}_dl_bundle", width="stretch",
                           help="Weights, settings and curves in one file: add it as a run on any dashboard, "
                                "or `python -m nets.runs import FILE`")  # fmt: skip
    can_continue = ws.may_control(run.record) and not run.live and ws.active() is None and history and run.has_weights
    if can_continue and run.record.status != "uploaded":
        more = c1.number_input("More epochs", 1, 200, 5, key=f"{prefix}_more_epochs")
        if c2.button(f"Continue for {plural(int(more), 'epoch')}", key=f"{prefix}_continue", width="stretch"):
            try:
                ws.continue_run(data, run.run_id, int(more), stop_rules=app_state.stop_rules())
            except (WorkspaceError, ValueError) as exc:
                st.error(str(exc))
            else:
                app_state.new_live_rate_control()
                app_state.set_selected_run_ids([])
                app_state.set_focus_run(run.run_id)
                st.switch_page("pages/train.py")  # watch it train
