"""Sweeps: the spec's checks, and real sweeps on synthetic data with Dask workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nets.store import RunStore
from nets.sweep import main, start
from nets.sweep_report import SweepReport, report
from nets.sweep_spec import Knob, SweepSpec, SweepSpecError, parse_knob

REPO = Path(__file__).resolve().parent.parent
# Small and quick on the synthetic data (100 training rows, 5,000 validation rows).
TINY = (("batch_size", 50), ("epochs", 3), ("hidden_size", 16))


def tiny_spec(**changes) -> SweepSpec:
    fields = dict(knobs=(Knob("learning_rate", choices=(3e-3, 1e-2)), Knob("seed", choices=(0, 1))),
                  overrides=TINY, sampler="grid", pruner="none", trials=None, workers=2)  # fmt: skip
    fields.update(changes)
    return SweepSpec(**fields)


# --- the spec ----------------------------------------------------------------------------------


def test_knobs_are_read_from_the_command_line_form():
    assert parse_knob("lr=1e-4:1:log") == Knob("learning_rate", low=1e-4, high=1.0, log=True)
    assert parse_knob("hidden=64,128,256") == Knob("hidden_size", choices=(64, 128, 256))
    assert parse_knob("activation=relu,tanh") == Knob("activation", choices=("relu", "tanh"))
    assert parse_knob("shuffle=true,false") == Knob("shuffle", choices=(True, False))
    assert parse_knob("batch=32:256") == Knob("batch_size", low=32, high=256)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: parse_knob("colour=red"), "'colour' is not a setting"),
        (lambda: parse_knob("lr"), "NAME=LOW:HIGH"),
        (lambda: parse_knob("lr=1:2:cubic"), "LOW:HIGH:log"),
        (lambda: parse_knob("hidden=64.5,128"), "hidden_size takes whole numbers"),
        (lambda: tiny_spec(knobs=()), "at least one knob"),
        (
            lambda: tiny_spec(knobs=(Knob("activation", low=0, high=1),), sampler="tpe", trials=4),
            "activation takes a list of values (relu, sigmoid, tanh), not a range",
        ),
        (
            lambda: tiny_spec(knobs=(Knob("learning_rate", low=1e-3, high=0.1),)),
            "grid sampler needs a list of values for learning_rate",
        ),
        (
            lambda: tiny_spec(knobs=(Knob("learning_rate", low=0.0, high=0.1, log=True),), sampler="tpe", trials=4),
            "learning_rate: a log-scaled range needs LOW > 0",
        ),
        (
            lambda: tiny_spec(knobs=(Knob("learning_rate", low=0.1, high=0.01),), sampler="tpe", trials=4),
            "learning_rate: a range needs LOW < HIGH",
        ),
        (
            lambda: tiny_spec(knobs=(Knob("learning_rate", low=1e-3, high=50.0),), sampler="tpe", trials=4),
            "learning_rate must be between",
        ),
        (lambda: tiny_spec(knobs=(Knob("momentum", choices=(0.9, 0.9)),)), "momentum: a value is listed twice"),
        (lambda: tiny_spec(knobs=(Knob("epochs", choices=(1, 2)),)), "epochs is both varied (--param) and fixed"),
        (
            lambda: tiny_spec(knobs=(Knob("hidden_size", choices=(8,)), Knob("hidden_size", choices=(9,)))),
            "hidden_size is varied twice",
        ),
        (lambda: tiny_spec(sampler="bayes"), "sampler must be one of grid, random, tpe"),
        (lambda: tiny_spec(pruner="hyperband"), "pruner must be one of none, median, asha"),
        (lambda: tiny_spec(sampler="tpe", trials=None, timeout=None), "give a budget"),
        (lambda: tiny_spec(trials=0), "trials must be a whole number from 1"),
        (lambda: tiny_spec(timeout=-5.0), "timeout must be a positive number"),
        (lambda: tiny_spec(workers=0), "workers must be a whole number from 1"),
        (lambda: tiny_spec(overrides=(("epochs", 0),)), "--set: epochs must be between 1 and 1000"),
    ],
)
def test_a_bad_spec_is_refused_in_one_line_naming_the_knob(make, says):
    with pytest.raises(SweepSpecError) as caught:
        make()
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_spec_survives_its_json_and_a_grid_knows_its_size():
    spec = tiny_spec(knobs=(Knob("learning_rate", low=1e-4, high=1.0, log=True), Knob("momentum", choices=(0.8, 0.9))),
                     sampler="tpe", trials=7, timeout=60.0)  # fmt: skip
    assert SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.grid_size is None and spec.planned_trials == 7
    assert tiny_spec().grid_size == 4 and tiny_spec().planned_trials == 4 and tiny_spec(trials=3).planned_trials == 3
    assert spec.config_for({"learning_rate": 0.5, "momentum": 0.8}).momentum == 0.8


def test_bad_command_line_arguments_exit_2_with_one_line(capsys, tmp_path):
    for argv, says in [
        (["--param", "lr=0:1:log", "--sampler", "tpe"], "log-scaled range needs LOW > 0"),
        (["--param", "nope=1,2"], "'nope' is not a setting"),
        (["--param", "lr=0.1,0.2", "--set", "epochs"], "--set 'epochs': write NAME=VALUE"),
        (["--resume", "sweep-that-is-not-there"], "no sweep 'sweep-that-is-not-there'"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--runs-dir", str(tmp_path)])
        err = capsys.readouterr().err.strip()
        assert exited.value.code == 2 and says in err and len(err.splitlines()) == 1, err


# --- real sweeps -------------------------------------------------------------------------------


def run_sweep(spec: SweepSpec, runs_dir: Path, data_dir: Path) -> tuple[SweepReport, list[dict]]:
    """The sweep driven by its own process, as the command line and the dashboard drive it (a
    LocalCluster's worker processes do not start inside a test process that ran AppTest)."""
    done = subprocess.run(
        [sys.executable, "-m", "nets.sweep", "--spec", json.dumps(spec.to_dict()), "--runs-dir", str(runs_dir),
         "--data-dir", str(data_dir), "--json"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1]["final"]
    return report(RunStore(runs_dir), lines[-1]["sweep_id"]), lines[:-1]


def test_a_whole_grid_is_queued_longest_first_and_a_part_of_one_is_left_to_the_sampler(tmp_path):
    """Two workers given the longest trials first end together; a grid cut short by a trial
    count or a time limit keeps the sampler's random order (longest first would be a biased pick)."""
    import optuna

    from nets.sweep_trial import open_storage

    store = RunStore(tmp_path / "runs")
    knobs = (Knob("hidden_size", choices=(16, 64, 32)), Knob("batch_size", choices=(100, 50)))
    overrides = (("epochs", 3),)

    def asked(record) -> list[tuple]:
        """What the study hands, in turn, the workers that ask it for settings of queued trials."""
        study = optuna.load_study(study_name=record.sweep_id, storage=open_storage(record.storage))
        waiting = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))
        return [tuple(knob.suggest(t) for knob in knobs) for t in (study.ask() for _ in range(waiting))]

    whole = start(tiny_spec(knobs=knobs, overrides=overrides), store)
    assert asked(whole) == [(64, 50), (64, 100), (32, 50), (32, 100), (16, 50), (16, 100)]  # more batches cost more
    assert asked(start(tiny_spec(knobs=knobs, overrides=overrides, trials=4), store)) == []
    assert asked(start(tiny_spec(knobs=knobs, overrides=overrides, timeout=60.0), store)) == []


def test_the_last_point_of_a_grid_the_sampler_draws_is_told_not_lost(tmp_path, synthetic_dir):
    """A grid with a time limit is drawn by Optuna's grid sampler, which ends the study once
    every point has started: outside `Study.optimize` that raised in the last trial's tell."""
    import optuna

    from nets.sweep_trial import TrialJob, open_storage, run_trial

    store = RunStore(tmp_path / "runs")
    record = start(tiny_spec(knobs=(Knob("learning_rate", choices=(3e-3, 1e-2)),), timeout=600.0), store)
    job = TrialJob(record.sweep_id, record.spec, record.storage, str(store.root), str(synthetic_dir))
    outcomes = [run_trial(job, slot) for slot in range(2)]
    assert [o["status"] for o in outcomes] == ["finished", "finished"], outcomes
    assert sorted(o["params"]["learning_rate"] for o in outcomes) == [3e-3, 1e-2]
    study = optuna.load_study(study_name=record.sweep_id, storage=open_storage(record.storage))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_a_stopped_trial_of_a_whole_grid_is_queued_again_on_resume(tmp_path):
    """Stop a grid while one of its points trains: on resume that point is queued again."""
    import optuna

    from nets.sweep import resume
    from nets.sweep_trial import open_storage

    store = RunStore(tmp_path / "runs")
    knobs = (Knob("hidden_size", choices=(16, 32)),)
    record = start(tiny_spec(knobs=knobs, overrides=(("epochs", 3),)), store)
    study = optuna.load_study(study_name=record.sweep_id, storage=open_storage(record.storage))
    trial = study.ask()
    hidden = knobs[0].suggest(trial)
    trial.set_user_attr("interrupted", True)  # what a trial stopped by the sweep's Stop records
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    store.end_sweep(record.sweep_id, "stopped", "stopped on request")
    for _ in range(2):  # resumed twice (its first resume stopped again at once): queued once
        resume(store, record.sweep_id)
        store.end_sweep(record.sweep_id, "stopped", "stopped on request")
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert [(t.number, t.user_attrs.get("retry_of")) for t in waiting] == [(1, None), (2, 0)]
    assert [knobs[0].suggest(study.ask()) for _ in waiting] == [32 if hidden == 16 else 16, hidden]


def test_the_ask_lock_sits_beside_a_sqlite_file_in_any_spelling_and_nowhere_else(tmp_path, monkeypatch):
    from nets.sweep_trial import asking

    monkeypatch.chdir(tmp_path)
    for url, lock in ((f"sqlite:///{tmp_path}/a.sqlite", "a.sqlite.ask-lock"),
                      (f"sqlite+pysqlite:///{tmp_path}/b.sqlite?timeout=5", "b.sqlite.ask-lock"),
                      ("sqlite:///:memory:", None), ("postgresql://user@127.0.0.1/sweeps", None)):  # fmt: skip
        with asking(url):
            pass
        assert sorted(p.name for p in tmp_path.iterdir()) == ([lock] if lock else []), url
        if lock:
            (tmp_path / lock).unlink()


ASK_IN_TURN = """
import json, os, sys, time
import optuna
from nets.sweep_spec import SweepSpec
from nets.sweep_trial import asking, open_storage
storage, sweep_id, go, asks = sys.argv[1:5]
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sweep_id, storage=open_storage(storage))
knobs = SweepSpec.from_dict(study.user_attrs["spec"]).knobs
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
for _ in range(int(asks)):
    with asking(storage):
        trial = study.ask()
    print(json.dumps([knob.suggest(trial) for knob in knobs]), flush=True)
"""


def test_workers_asking_at_the_same_moment_never_get_the_same_queued_trial(tmp_path):
    """Four processes ask a whole grid's queue of 16 four times each, all starting at once:
    16 different trials. Without the lock, SQLite let two of them mark the same waiting trial
    running (12 to 15 different trials of 16, in each of six tries)."""
    store = RunStore(tmp_path / "runs")
    knobs = (Knob("hidden_size", choices=(16, 32, 64, 128)), Knob("batch_size", choices=(25, 50, 100, 200)))
    record = start(tiny_spec(knobs=knobs, overrides=(("epochs", 3),)), store)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", ASK_IN_TURN, record.storage, record.sweep_id, str(go), "4"],
                                stdout=subprocess.PIPE, text=True, env=env) for _ in range(4)]  # fmt: skip
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    go.touch()
    asked = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        asked += [tuple(json.loads(line)) for line in out.splitlines()]
    assert len(asked) == 16 and len(set(asked)) == 16, sorted(asked)


@pytest.mark.slow
def test_a_grid_sweep_on_two_local_workers_records_every_trial_and_reports_the_best(tmp_path, synthetic_dir):
    store = RunStore(tmp_path / "runs")
    found, seen = run_sweep(tiny_spec(name="grid"), tmp_path / "runs", synthetic_dir)
    assert found.record.status == "finished" and len(found.rows) == 4 == len(seen), found.record.message
    runs = store.runs(sweep=found.record.sweep_id)
    assert sorted(r.trial for r in runs) == [0, 1, 2, 3]
    assert {(r.config.learning_rate, r.config.seed) for r in runs} == {(3e-3, 0), (3e-3, 1), (1e-2, 0), (1e-2, 1)}
    assert all(r.source == "sweep" and r.status == "finished" and r.epochs_done == 3 for r in runs)
    assert all(r.weights_epochs == 3 and r.config.hidden_size == 16 for r in runs)  # usable as models
    best = max(found.rows, key=lambda r: r.val_acc)
    final = found.final()
    assert (final["best_trial"], final["best_val_acc"], final["best_run_id"]) == (best.trial, best.val_acc, best.run_id)
    assert final["best_test_acc"] == store.history(best.run_id)[-1].test_acc
    assert final["pruned"] == 0 and final["epochs_trained"] == 12


def _worker_settings() -> tuple:
    import dask
    import distributed  # noqa: F401 - its defaults enter dask.config on import
    from threadpoolctl import threadpool_info

    from nets.sweep import QUIET_WORKERS

    settings = tuple(dask.config.get(key) for key in QUIET_WORKERS)
    return settings, sorted({i["num_threads"] for i in threadpool_info()})


def _tick_ms(dask_worker=None, dask_scheduler=None) -> float:
    """How often a Dask server's event loop wakes to time itself, in ms."""
    return (dask_worker or dask_scheduler).periodic_callbacks["tick"].callback_time


@pytest.mark.slow
def test_local_workers_train_on_one_blas_thread_and_keep_their_monitors_quiet(synthetic_dir):
    """What slowed trials two at once: a worker's 10 ms stack sampler and its frequent
    monitors (see QUIET_WORKERS). The driver's own settings stay as they were."""
    import dask

    from nets.sweep import QUIET_WORKERS, dask_client

    before = _worker_settings()
    with dask_client(2, None, str(synthetic_dir)) as client:
        seen = client.run(_worker_settings)
        ticks = [*client.run(_tick_ms).values(), client.run_on_scheduler(_tick_ms)]
    assert len(seen) == 2
    for settings, blas_threads in seen.values():
        assert settings == tuple(QUIET_WORKERS.values()) and blas_threads == [1]
    assert ticks == [1000, 1000, 1000]  # both workers and the scheduler time their loop once a second
    assert _worker_settings() == before and dask.config.get("distributed.worker.profile.enabled") is True


@pytest.mark.slow
def test_a_pruner_stops_hopeless_trials_after_an_epoch(tmp_path, synthetic_dir):
    """Learning rate 1e-6 learns nothing in 6 epochs; 1e-2 learns. The median pruner stops the
    hopeless trials once good ones have reported, long before their last epoch."""
    store = RunStore(tmp_path / "runs")
    spec = tiny_spec(knobs=(Knob("learning_rate", choices=(1e-2, 1e-6)), Knob("seed", choices=(0, 1, 2, 3))),
                     overrides=(("batch_size", 50), ("epochs", 6), ("hidden_size", 16)), pruner="median",
                     workers=1)  # fmt: skip
    found, _ = run_sweep(spec, tmp_path / "runs", synthetic_dir)
    pruned = [r for r in store.runs(sweep=found.record.sweep_id) if r.status == "pruned"]
    assert pruned, [(r.trial, r.status, r.config.learning_rate) for r in found.rows]
    assert all(r.config.learning_rate == 1e-6 and r.epochs_done < 6 for r in pruned)
    assert all("pruned by median after" in r.message for r in pruned)
    assert found.final()["epochs_saved"] == sum(6 - r.epochs_done for r in pruned) > 0
    assert found.best.params["learning_rate"] == 1e-2


def sweep_process(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nets.sweep", *args, "--json"], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_command_says_how_a_failed_sweep_ended_and_exits_1(tmp_path):
    """The command leaves without Python's teardown (`exit_at_once`): its last lines must
    still reach a pipe, and its status still reach the caller."""
    missing = tmp_path / "no-mnist-here"
    done = subprocess.run(
        [sys.executable, "-m", "nets.sweep", "--param", "lr=0.01,0.1", "--sampler", "grid", "--runs-dir",
         str(tmp_path / "runs"), "--data-dir", str(missing), "--json"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["final"] and final["status"] == "failed" and final["finished"] == 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m nets.sweep: error:") and str(missing) in last, done.stderr
    assert RunStore(tmp_path / "runs").sweeps()[0].status == "failed"


@pytest.mark.slow
def test_a_sweep_killed_with_its_workers_is_resumed_and_retries_the_trial_it_lost(tmp_path, synthetic_dir):
    runs_dir = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MNIST_DIR": str(synthetic_dir)}
    args = ["--runs-dir", str(runs_dir), "--param", "lr=0.003,0.01", "--param", "seed=0,1", "--sampler", "grid",
            "--pruner", "none", "--set", "epochs=60", "--set", "hidden=16", "--set", "batch=50",
            "--workers", "1"]  # fmt: skip
    driver = sweep_process(args, env)
    store = RunStore(runs_dir)

    def second_trial_training():
        return any(r.trial == 1 and r.epochs_done >= 2 for r in store.runs())

    try:
        wait_for(second_trial_training, 90, "the second trial to train")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its workers, as a restart would
        driver.communicate()
    sweep = store.sweeps()[0]
    lost = [r for r in store.runs(sweep=sweep.sweep_id) if r.trial == 1][0]
    assert sweep.status == "interrupted" and "resume it" in sweep.message
    wait_for(lambda: store.run(lost.run_id).status == "interrupted", 10, "the lost trial to read as interrupted")

    resumed = subprocess.run(
        [sys.executable, "-m", "nets.sweep", "--resume", sweep.sweep_id, "--runs-dir", str(runs_dir), "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout.splitlines()[-1])
    assert final["status"] == "finished" and final["finished"] == 4
    runs = store.runs(sweep=sweep.sweep_id)
    finished = {(r.config.learning_rate, r.config.seed) for r in runs if r.status == "finished"}
    assert finished == {(0.003, 0), (0.003, 1), (0.01, 0), (0.01, 1)}  # the lost point was trained again
    assert (lost.config.learning_rate, lost.config.seed) in finished


@pytest.mark.slow
def test_a_sweep_on_a_real_dask_cluster_prunes_and_records(tmp_path, synthetic_dir):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, as a user's cluster."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MNIST_DIR": str(synthetic_dir)}
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{port}"
    cluster = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]  # fmt: skip
    try:
        for _ in range(2):
            cluster.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        runs_dir = tmp_path / "runs"
        done = subprocess.run(
            [sys.executable, "-m", "nets.sweep", "--scheduler", address, "--runs-dir", str(runs_dir),
             "--param", "lr=0.01,0.000001", "--param", "seed=0,1,2,3", "--sampler", "grid", "--pruner", "median",
             "--set", "epochs=6", "--set", "hidden=16", "--set", "batch=50", "--json"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        for process in reversed(cluster):
            process.terminate()
        for process in cluster:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    final = lines[-1]
    assert final["final"] and final["trials"] == 8 and final["pruned"] >= 1 and final["epochs_saved"] > 0
    assert final["best_params"]["learning_rate"] == 0.01
    store = RunStore(runs_dir)
    runs = store.runs(sweep=final["sweep_id"])
    assert len(runs) == 8 and all(r.source == "sweep" for r in runs)
    workers = {r.run_id: r for r in runs}
    assert {line["run_id"] for line in lines[:-1]} == set(workers)
    assert all(workers[line["run_id"]].status == line["status"] for line in lines[:-1])


@pytest.mark.slow
def test_a_second_machine_joins_a_sweep_through_its_shared_storage(tmp_path, synthetic_dir):
    """Two drivers with their own runs directories share one study: the budget of 8 trials is
    shared, each trial trained once, each recorded in the store of the machine that ran it."""
    storage = f"sqlite:///{tmp_path / 'shared-study.sqlite'}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MNIST_DIR": str(synthetic_dir)}
    spec = tiny_spec(knobs=(Knob("learning_rate", low=1e-3, high=1e-2, log=True),), sampler="random", trials=8,
                     workers=1, overrides=(("batch_size", 50), ("epochs", 60), ("hidden_size", 16)))  # fmt: skip
    store_a = RunStore(tmp_path / "a")
    sweep_id = start(spec, store_a, storage=storage).sweep_id
    store_a.end_sweep(sweep_id, "stopped")  # made here; driven below by its own process, as on machine A
    common = ["--workers", "1", "--json"]
    a = sweep_process(["--resume", sweep_id, "--runs-dir", str(tmp_path / "a"), *common], env)
    b = sweep_process(["--join", sweep_id, "--storage", storage, "--runs-dir", str(tmp_path / "b"), *common], env)
    try:
        _, err_a = a.communicate(timeout=300)
        _, err_b = b.communicate(timeout=300)
    finally:
        a.kill()
        b.kill()
    assert a.returncode == 0 and b.returncode == 0, (err_a[-1000:], err_b[-1000:])
    runs_a = RunStore(tmp_path / "a").runs(sweep=sweep_id)
    runs_b = RunStore(tmp_path / "b").runs(sweep=sweep_id)
    assert runs_a and runs_b, (len(runs_a), len(runs_b))  # both machines trained some
    trials = sorted(r.trial for r in runs_a + runs_b)
    assert trials == list(range(8)), trials  # the shared budget, each trial once
    assert all(r.status == "finished" and r.epochs_done == 60 for r in runs_a + runs_b)
    assert RunStore(tmp_path / "b").sweep(sweep_id).storage == storage


def test_joining_needs_the_shared_storage_and_a_sweep_in_it(capsys, tmp_path):
    for argv, says in [
        (["--join", "sweep-x"], "--join needs the sweep's shared --storage URL"),
        (["--join", "sweep-x", "--storage", f"sqlite:///{tmp_path / 's.sqlite'}"], "has no sweep sweep-x"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--runs-dir", str(tmp_path / "runs")])
        err = capsys.readouterr().err.strip()
        assert exited.value.code == 2 and says in err and len(err.splitlines()) == 1, err


class _IdleClient:
    """A Dask client with one worker thread that must never be given a trial."""

    def scheduler_info(self, n_workers=-1):
        return {"workers": {"w1": {"nthreads": 1}}}

    def submit(self, *args, **kwargs):
        raise AssertionError("a stopped sweep started a trial")


def test_a_sweep_stopped_while_its_workers_start_ends_stopped_not_finished(tmp_path, monkeypatch):
    """Stop can be pressed as soon as the sweep is recorded, seconds before its LocalCluster is up;
    the driver then starts no trial and must say the sweep was stopped (it said "finished")."""
    import contextlib

    import nets.sweep as sweep

    store = RunStore(tmp_path / "runs")
    record = start(tiny_spec(), store)
    store.request_sweep_stop(record.sweep_id)
    monkeypatch.setattr(
        sweep, "dask_client", lambda workers, scheduler, data_dir: contextlib.nullcontext(_IdleClient())
    )
    found = sweep.drive(store, store.sweep(record.sweep_id))
    assert (found.record.status, found.record.message) == ("stopped", "stopped on request")
    assert found.rows == ()


def test_a_resume_whose_study_storage_is_gone_says_so_in_one_line_and_leaves_the_sweep_as_it_was(capsys, tmp_path):
    """It raised SQLAlchemy's traceback after taking the sweep over (a stopped sweep then read as
    running, then as interrupted by a dead process)."""
    store = RunStore(tmp_path / "runs")
    record = start(tiny_spec(), store, storage=f"sqlite:///{tmp_path / 'study.sqlite'}")
    store.end_sweep(record.sweep_id, "stopped", "stopped on request")
    (tmp_path / "study.sqlite").unlink()
    (tmp_path / "study.sqlite").mkdir()  # not a database any more
    with pytest.raises(SystemExit) as exited:
        main(["--resume", record.sweep_id, "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and "cannot use the study storage" in err and len(err.splitlines()) == 1, err
    assert (store.sweep(record.sweep_id).status, store.sweep(record.sweep_id).message) == (
        "stopped",
        "stopped on request",
    )


def test_the_importance_of_a_sweep_whose_study_cannot_be_read_is_none_not_a_traceback(tmp_path):
    from nets.sweep_report import importance

    store = RunStore(tmp_path / "runs")
    record = start(tiny_spec(), store, storage=f"sqlite:///{tmp_path / 'study.sqlite'}")
    (tmp_path / "study.sqlite").unlink()
    (tmp_path / "study.sqlite").mkdir()  # SQLAlchemy's OperationalError, which the Sweep page showed as a traceback
    assert importance(store.sweep(record.sweep_id)) is None


def test_workers_0_on_the_command_line_is_refused_not_read_as_the_default():
    from nets.sweep import build_parser, spec_from_args

    args = build_parser().parse_args(["--param", "lr=0.1,0.2", "--workers", "0"])
    with pytest.raises(SweepSpecError, match=r"workers must be a whole number from 1 to 64 \(got 0\)"):
        spec_from_args(args)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_every_seed_the_spec_accepts_makes_a_sampler(sampler):
    """Seeds from 4,295 up (the spec allows up to 2**31 - 1) gave NumPy a seed over 2**32 - 1: every
    task raised before its trial existed, so the budget never shrank and the driver went on forever."""
    import optuna

    from nets.sweep_trial import make_sampler

    spec = tiny_spec(knobs=(Knob("learning_rate", low=1e-3, high=1e-2),), sampler=sampler, trials=4, seed=2**31 - 1)
    study = optuna.create_study(sampler=make_sampler(spec, slot=7), direction="maximize")
    assert 1e-3 <= study.ask().suggest_float("learning_rate", 1e-3, 1e-2) <= 1e-2


class _BrokenWorkerClient(_IdleClient):
    """A cluster whose worker cannot run a trial at all (it cannot open the study, say)."""

    submitted = 0

    def submit(self, *args, **kwargs):
        from concurrent.futures import Future

        _BrokenWorkerClient.submitted += 1
        future = Future()
        future.set_exception(OSError("unable to open database file"))
        return future


def test_a_sweep_whose_workers_cannot_start_a_trial_fails_in_one_line_instead_of_running_forever(tmp_path, monkeypatch):
    """Such a task leaves no trial in the study, so the budget never shrank: the driver fed it forever."""
    import contextlib

    import nets.sweep as sweep

    store = RunStore(tmp_path / "runs")
    record = start(tiny_spec(), store)
    monkeypatch.setattr(sweep, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(
        sweep, "dask_client", lambda workers, scheduler, data_dir: contextlib.nullcontext(_BrokenWorkerClient())
    )
    found = sweep.drive(store, store.sweep(record.sweep_id))
    assert found.record.status == "failed", found.record
    assert found.record.message == "3 trials in a row could not start: OSError: unable to open database file"
    assert _BrokenWorkerClient.submitted == 3


def test_a_machine_that_joins_a_sweep_does_not_draw_the_starters_settings(tmp_path, monkeypatch):
    """Trial slots seed the samplers; both machines counted slots from 0, so with random or TPE
    sampling the joiner trained the very settings the starter was training."""
    import contextlib

    import nets.sweep as sweep

    class OneTaskClient(_IdleClient):
        def __init__(self, store, sweep_id):
            self.store, self.sweep_id, self.slots = store, sweep_id, []

        def submit(self, fn, job, slot, **kwargs):
            from concurrent.futures import Future

            self.slots.append(slot)
            self.store.request_sweep_stop(self.sweep_id)  # one task each is enough
            future = Future()
            future.set_result(None)
            return future

    storage = f"sqlite:///{tmp_path / 'shared-study.sqlite'}"
    spec = tiny_spec(knobs=(Knob("learning_rate", low=1e-3, high=1e-2, log=True),), sampler="random", trials=8)
    store_a, store_b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    sweep_id = start(spec, store_a, storage=storage).sweep_id
    sweep.join(store_b, sweep_id, storage)
    clients = {store_a.root: OneTaskClient(store_a, sweep_id), store_b.root: OneTaskClient(store_b, sweep_id)}
    for store in (store_a, store_b):
        monkeypatch.setattr(
            sweep, "dask_client", lambda workers, scheduler, data_dir, c=clients[store.root]: contextlib.nullcontext(c)
        )
        sweep.drive(store, store.sweep(sweep_id))
    (slot_a,), (slot_b,) = clients[store_a.root].slots, clients[store_b.root].slots
    assert slot_a == 0  # the starter's first trial keeps the seed the spec gives it
    draws = [make_sampler_value(spec, slot) for slot in (slot_a, slot_b)]
    assert draws[0] != draws[1], (slot_a, slot_b, draws)


def make_sampler_value(spec: SweepSpec, slot: int) -> float:
    import optuna

    from nets.sweep_trial import make_sampler

    study = optuna.create_study(sampler=make_sampler(spec, slot), direction="maximize")
    return study.ask().suggest_float("learning_rate", 1e-3, 1e-2, log=True)


def test_the_final_report_counts_each_ending_apart_and_the_line_names_them():
    """A diverged trial is not a failed one: the final object and line say which is which."""
    from types import SimpleNamespace

    from nets.sweep import format_final
    from nets.sweep_report import TrialRow

    def row(trial: int, status: str, epochs: int = 2) -> TrialRow:
        return TrialRow(trial, trial + 1, status, {"learning_rate": 0.1}, 0.9, 0.9, epochs, 2, 1.0)

    statuses = ["finished", "pruned", "diverged", "diverged", "stopped", "failed"]
    rows = tuple(row(i, s) for i, s in enumerate(statuses))
    final = SweepReport(SimpleNamespace(sweep_id="s1", status="finished"), tiny_spec(), rows).final()
    assert (final["finished"], final["pruned"], final["diverged"], final["stopped"], final["failed"]) == (1, 1, 2, 1, 1)
    assert final["interrupted"] == 0
    line = format_final(final).splitlines()[0]
    assert line.endswith(", 2 diverged, 1 stopped, 1 failed") and "interrupted" not in line
