"""A live job: its snapshot carries health, the loss trace, learning-rate changes and the
stop rule that ended it; step mode pauses it after an epoch."""

from __future__ import annotations

import time

import pytest

from nets.config import TrainConfig
from nets.jobs import PAUSED, STOPPED, JobRegistry, TrainingJob
from nets.stopping import StopRules
from nets.store import RunStore


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_snapshot_has_one_health_record_per_epoch_and_the_trace(tiny_data):
    job = TrainingJob(tiny_data, TrainConfig(hidden_size=16, batch_size=10, epochs=2))
    job.start()
    assert job.join(30)
    snap = job.snapshot()
    assert [h.epoch for h in snap.health] == [0, 1]
    assert len(snap.trace) == 60 and snap.trace[-1][0] == 2.0  # 30 batches an epoch, all kept
    assert snap.stopped_by == ""


def test_a_stop_rule_ends_the_job_and_the_store_says_why(tiny_data, tmp_path):
    registry = JobRegistry(RunStore(tmp_path))
    run_id = registry.start(tiny_data, TrainConfig(hidden_size=16, epochs=5), owner="me",
                            stop_rules=StopRules(target_val_acc=0.01))  # fmt: skip
    job = registry.job(run_id)
    assert job.join(30)
    snap = job.snapshot()
    assert snap.status == STOPPED and snap.stopped_by == "target_val_acc" and snap.epochs_done == 1
    record = registry.store.run(run_id)
    assert record.status == "stopped" and "target validation accuracy" in record.message


def test_learning_rate_change_and_step_while_it_trains(tiny_data):
    job = TrainingJob(tiny_data, TrainConfig(hidden_size=16, batch_size=1, epochs=3, optimizer="sgd",
                                             learning_rate=0.01, lr_schedule="constant"))  # fmt: skip
    job.pause()  # held before its first batch: the step below is surely inside epoch 0
    job.start()
    job.set_learning_rate(0.02)
    job.step()  # train to the end of this epoch, then pause
    wait_for(lambda: job.snapshot().status == PAUSED)
    snap = job.snapshot()
    assert snap.epochs_done == 1 and snap.history[0].learning_rate == 0.02
    assert snap.lr_changes == ((0.0, 0.02),)  # from batch 1 of epoch 0
    job.stop()
    assert job.join(30)
    with pytest.raises(ValueError):
        job.set_learning_rate(-1.0)


def test_a_continued_job_starts_from_the_stored_trace(tiny_data, tmp_path):
    registry = JobRegistry(RunStore(tmp_path))
    run_id = registry.start(tiny_data, TrainConfig(hidden_size=16, batch_size=100, epochs=1), owner="me")
    assert registry.job(run_id).join(30)
    registry.resume(tiny_data, run_id, 1, owner="me")
    assert registry.job(run_id).join(30)
    steps = [s for s, _ in registry.job(run_id).snapshot().trace]
    assert steps == pytest.approx([1 / 3, 2 / 3, 1.0, 4 / 3, 5 / 3, 2.0])
