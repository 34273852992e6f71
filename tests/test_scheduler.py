"""The server's training slots: K at once, FIFO, stop in the queue, browsers that leave, sweeps, estimates."""

import itertools
import json
import threading
import time

import pytest

from nets.config import TrainConfig
from nets.jobs import JobRegistry
from nets.scheduler import SLOTS_ENV, TrainingScheduler, default_slots, start_estimate
from nets.store import RunStore
from nets.workspace import Workspace


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_at_most_k_hold_and_the_rest_wait_first_come_first_served():
    slots = TrainingScheduler(2)
    claims = [slots.ask(owner=f"b{i}") for i in range(5)]
    assert [c.state for c in claims] == ["holding", "holding", "waiting", "waiting", "waiting"]
    assert slots.counts() == (2, 3) and slots.free() == 0
    assert [slots.place(c).position for c in claims[2:]] == [1, 2, 3]
    assert slots.place(claims[0]) is None  # it holds: no place in the queue
    slots.release(claims[1])
    assert claims[2].holding and not claims[3].holding  # the head, not any waiter
    assert [slots.place(c).position for c in claims[3:]] == [1, 2]
    slots.release(claims[0])
    slots.release(claims[2])
    assert claims[3].holding and claims[4].holding and slots.counts() == (2, 0)


def test_threads_start_in_the_order_they_asked_and_never_more_than_k_at_once():
    ticks = itertools.count()  # a clock that never stands still: the grant order is exact
    slots, lock = TrainingScheduler(2, clock=lambda: next(ticks)), threading.Lock()
    busy, most = [0], [0]

    def train(claim):
        assert slots.wait(claim, timeout=10)
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.02)
        with lock:
            busy[0] -= 1
        slots.release(claim)

    claims = [slots.ask(owner=str(i)) for i in range(8)]  # asked in this order, as clicks are
    threads = [threading.Thread(target=train, args=(c,)) for c in reversed(claims)]  # threads start backwards
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most[0] == 2
    assert all(c.granted_at is not None for c in claims)  # nobody left waiting
    assert sorted(claims, key=lambda c: c.granted_at) == claims  # nobody overtaken


def test_a_stop_in_the_queue_takes_the_run_out_and_wakes_its_thread():
    slots = TrainingScheduler(1)
    first, second, third = slots.ask(), slots.ask(), slots.ask()
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(slots.wait(second)))
    waiter.start()
    slots.release(second)  # the user's Stop
    waiter.join(2)
    assert woke == [False] and second.why == "stopped"
    assert slots.place(third).position == 1 and slots.counts() == (1, 1)
    slots.release(first)
    assert third.holding and not second.holding


def test_a_browser_gone_past_the_grace_loses_its_queued_run_and_a_reload_keeps_it():
    clock = Clock()
    slots = TrainingScheduler(1, grace=30, clock=clock)
    holder = slots.ask(owner="a")
    slots.present("b")
    slots.present("c")
    queued_b, queued_c = slots.ask(owner="b"), slots.ask(owner="c")
    slots.absent("b")  # b's tab closed
    slots.absent("c")  # c reloads: its new session comes back within the grace
    clock.now += 10
    slots.present("c")
    assert slots.counts() == (1, 2) and queued_b.waiting  # 10 s away: within the grace
    clock.now += 25  # b away 35 s, c back
    assert slots.counts() == (1, 1)
    assert not queued_b.waiting and queued_b.why == "absent" and not slots.wait(queued_b, timeout=0.1)
    assert queued_c.waiting and slots.place(queued_c).position == 1
    slots.release(holder)
    assert queued_c.holding


def test_a_browser_with_two_tabs_stays_while_one_is_open():
    clock = Clock()
    slots = TrainingScheduler(1, grace=30, clock=clock)
    slots.ask(owner="x")
    slots.present("b")
    slots.present("b")
    queued = slots.ask(owner="b")
    slots.absent("b")
    clock.now += 100
    assert queued.waiting
    slots.absent("b")
    clock.now += 29
    assert slots.counts() == (1, 1)
    clock.now += 2
    slots.free()  # any look at the queue tidies it
    assert not queued.waiting and queued.why == "absent"


def test_a_sweep_takes_only_the_free_slots_and_gives_them_back_when_its_process_ends():
    slots = TrainingScheduler(3)
    training = slots.ask()
    sweep = slots.hold(4)
    assert sweep.slots == 2 and slots.free() == 0  # 3 slots, 1 training: the sweep gets 2 of its 4
    waiting = slots.ask()
    assert waiting.waiting  # a training started while the sweep runs counts its workers
    assert slots.hold(1).slots == 0  # nothing left for a second sweep
    alive = [True]
    slots.watch(sweep, lambda: alive[0])
    assert waiting.waiting
    alive[0] = False  # the sweep's process ended
    assert slots.wait(waiting, timeout=2)
    assert slots.counts() == (2, 0) and training.holding


def test_the_estimate_plays_the_queue_forward():
    # Two slots free in 10 s and 30 s; the run ahead takes 20 s from 10 s: both slots free at 30 s.
    assert start_estimate(2, [10.0, 30.0], [20.0]) == 30.0
    assert start_estimate(2, [10.0, 30.0], []) == 10.0
    assert start_estimate(2, [10.0, 30.0], [5.0, 5.0]) == 20.0  # 10 -> 15 -> 20 on the first slot
    assert start_estimate(3, [50.0], [40.0]) == 0.0  # a slot is free (it should already be granted)
    assert start_estimate(1, [None], []) is None  # the holder has not measured itself
    assert start_estimate(2, [10.0, None], [None]) is None  # the run ahead takes the only known slot forever
    assert start_estimate(2, [10.0, None], []) == 10.0


def test_a_place_in_the_queue_has_its_estimate_from_the_holders_and_the_runs_ahead():
    slots = TrainingScheduler(2)
    slots.ask(remaining=lambda: 12.0)
    slots.ask(remaining=lambda: 40.0)
    ahead = slots.ask(expected_seconds=60.0)
    mine = slots.ask(expected_seconds=5.0)
    place = slots.place(mine)
    assert (place.position, place.waiting, place.starts_in) == (2, 2, 40.0)  # 12 + 60 = 72 > 40
    assert slots.place(ahead).starts_in == 12.0


def test_slots_come_from_the_environment_else_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert default_slots({}) == 6
    assert default_slots({SLOTS_ENV: "3"}) == 3
    assert default_slots({SLOTS_ENV: " 1 "}) == 1
    for bad in ("0", "-2", "two", "1.5"):
        assert default_slots({SLOTS_ENV: bad}) == 6
    with pytest.raises(ValueError, match="at least one slot"):
        TrainingScheduler(0)


# --- trainings in the slots (JobRegistry on tiny data) -------------------------------------------

SLOW = TrainConfig(hidden_size=16, batch_size=1, epochs=200)  # long enough to act on while it runs
QUICK = TrainConfig(hidden_size=16, batch_size=30, epochs=2)


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def one_slot(tmp_path):
    """A registry whose server trains one run at once; every job stops afterwards."""
    jobs = JobRegistry(RunStore(tmp_path / "runs"), TrainingScheduler(1))
    yield jobs
    jobs.shutdown()


def test_a_second_browser_queues_behind_the_running_run_and_starts_when_it_ends(one_slot, tiny_data):
    first = one_slot.start(tiny_data, QUICK.replace(epochs=20), owner="a")
    second = one_slot.start(tiny_data, QUICK, owner="b", expected_seconds=3.0)
    assert one_slot.store.run(second).status == "queued"  # recorded as waiting, for every page
    snap = one_slot.job(second).snapshot()
    assert snap.status == "queued" and snap.history == ()
    place = one_slot.job(second).place()
    assert place.position == 1 and place.waiting == 1
    assert one_slot.job(second).join(30)  # it ran after the first one
    first_job, second_job = one_slot.job(first), one_slot.job(second)
    assert first_job.snapshot().status == "finished" and second_job.snapshot().status == "finished"
    assert second_job._claim.granted_at >= first_job._claim.granted_at
    assert one_slot.store.run(second).status == "finished" and one_slot.store.run(second).epochs_done == 2


def test_stop_while_queued_ends_the_run_before_it_trains(one_slot, tiny_data):
    one_slot.start(tiny_data, SLOW, owner="a")
    ws = Workspace(one_slot.store, one_slot, "b")
    queued = ws.start(tiny_data, QUICK)
    assert ws.active().status == "queued" and ws.queue_place().position == 1
    ws.stop()  # the page's Stop
    assert not one_slot.job(queued).alive
    snap = one_slot.job(queued).snapshot()
    assert snap.status == "stopped" and snap.history == () and snap.message == "stopped while it waited"
    record = one_slot.store.run(queued)
    assert record.status == "stopped" and record.epochs_done == 0
    assert one_slot.scheduler.counts() == (1, 0)
    assert ws.start(tiny_data, QUICK)  # b may queue again


def test_a_browser_that_leaves_loses_its_queued_run(tmp_path, tiny_data):
    clock = Clock()
    jobs = JobRegistry(RunStore(tmp_path / "runs"), TrainingScheduler(1, grace=30, clock=clock))
    try:
        jobs.start(tiny_data, SLOW, owner="a")
        jobs.present("b")
        queued = jobs.start(tiny_data, QUICK, owner="b")
        jobs.absent("b")  # its last tab closed
        clock.now += 31
        assert jobs.job(queued).join(5)  # its thread looks at the queue every second
        assert jobs.job(queued).snapshot().message == "its browser left while it waited"
        assert jobs.store.run(queued).status == "stopped" and jobs.scheduler.counts() == (1, 0)
    finally:
        jobs.shutdown()


def test_a_paused_run_gives_its_slot_to_the_queue_and_queues_again_on_resume(one_slot, tiny_data):
    first = one_slot.start(tiny_data, SLOW, owner="a")
    job = one_slot.job(first)
    wait_until(lambda: job.snapshot().progress is not None)
    second = one_slot.start(tiny_data, SLOW, owner="b")
    other = one_slot.job(second)
    job.pause()
    wait_until(lambda: other.snapshot().status == "running")  # the paused run does not hold the slot
    assert job.snapshot().status == "paused"
    job.resume()
    wait_until(lambda: job.snapshot().status == "queued")  # back in line, behind b
    assert job.place().position == 1
    other.stop()
    wait_until(lambda: job.snapshot().status == "running")
    job.stop()
    assert job.join(5) and job.snapshot().status == "stopped" and one_slot.scheduler.counts() == (0, 0)


# --- sweeps launched from the dashboard take their workers from the slots ------------------------


class FakeProcess:
    """What sweep_launch keeps of a driver process: it lives until the test ends it."""

    def __init__(self, command, **kwargs):
        self.command = command
        self.returncode = None
        LAUNCHED.append(self)

    def poll(self):
        return self.returncode


LAUNCHED: list[FakeProcess] = []


@pytest.fixture
def fake_launches(monkeypatch):
    from nets import sweep_launch

    LAUNCHED.clear()
    monkeypatch.setattr(sweep_launch.subprocess, "Popen", FakeProcess)
    return sweep_launch


def launched_workers(process: FakeProcess) -> int:
    return json.loads(process.command[process.command.index("--spec") + 1])["workers"]


def test_a_sweep_starts_with_the_free_slots_only_and_trainings_then_queue_behind_it(fake_launches, tmp_path):
    from nets.sweep_spec import Knob, SweepSpec

    spec = SweepSpec(knobs=(Knob("learning_rate", choices=(0.1, 0.01)),), trials=2, workers=2)
    slots = TrainingScheduler(2)
    training = slots.ask(owner="a")
    assert fake_launches.workers_allowed(spec, slots) == 1
    fake_launches.launch(spec, runs_dir=tmp_path, slots=slots)
    assert launched_workers(LAUNCHED[0]) == 1  # 2 asked, 1 free
    assert slots.counts() == (2, 0)
    queued = slots.ask(owner="b")
    assert queued.waiting  # a training started while the sweep runs counts its worker
    with pytest.raises(fake_launches.SweepBusy, match="no training slots are free for 2 sweep workers"):
        fake_launches.launch(spec, runs_dir=tmp_path, slots=slots)
    assert len(LAUNCHED) == 1
    LAUNCHED[0].returncode = 0  # the sweep ended: its slot goes to the queue
    assert slots.wait(queued, timeout=3)
    slots.release(training)
    with pytest.raises(fake_launches.SweepBusy, match="not enough training slots"):  # a resume needs all its workers
        fake_launches.launch_resume("sweep-x", runs_dir=tmp_path, slots=slots, workers=2)
    assert slots.counts() == (1, 0)  # the refused resume holds nothing
    fake_launches.launch_resume("sweep-x", runs_dir=tmp_path, slots=slots, workers=1)
    assert slots.counts() == (2, 0)
    # On an outside Dask cluster its workers train elsewhere: no slot taken, none needed.
    fake_launches.launch(spec, runs_dir=tmp_path, slots=slots, scheduler="tcp://10.0.0.1:8786")
    assert launched_workers(LAUNCHED[-1]) == 2 and slots.counts() == (2, 0)
