"""TrainingScheduler: the server's training slots, shared by every session of one process.

At most K trainings run at once (K = the number of cores unless MNIST_TRAIN_SLOTS says
otherwise); the others wait in one first-come, first-served queue. A claim is the one
handle: asked for (queued, or holding at once when a slot is free and nobody waits),
waited on by the training's thread, and released when the run ends, pauses or is stopped
in the queue. Nobody starves: the queue is FIFO, every training is bounded (epochs), and a
paused run gives its slot back (it queues again when resumed).

Two more kinds of claim share the budget:
- a sweep's worker processes (`hold`), taken at once from the free slots and kept while the
  sweep's process lives (`watch`);
- nothing of a browser that left: a browser with no session for `grace` seconds (a reload
  comes back well within it) loses its queued runs, so a closed tab never waits for a slot.

Pure Python, no Streamlit; the clock is injectable for tests.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SLOTS_ENV = "MNIST_TRAIN_SLOTS"
ABSENCE_GRACE = 30.0  # seconds a browser may be away (a reload, a flaky network) and keep its place
POLL = 1.0  # seconds between a waiting thread's looks at the queue (sweeps that ended, browsers gone)

WAITING, HOLDING, RELEASED = "waiting", "holding", "released"

log = logging.getLogger(__name__)


def default_slots(environ=None) -> int:
    """K: MNIST_TRAIN_SLOTS when it is a whole number from 1, else the number of cores. A bad
    value is named in the server's log and the default used (the server must still start)."""
    environ = os.environ if environ is None else environ
    cores = os.cpu_count() or 1
    text = environ.get(SLOTS_ENV, "").strip()
    if not text:
        return cores
    if text.isdigit() and int(text) >= 1:
        return int(text)
    log.warning("%s=%r is not a whole number from 1: using %d training slots (the cores)", SLOTS_ENV, text, cores)
    return cores


class Claim:
    """One claim on training slots: waiting in the queue, holding, or released (for good)."""

    def __init__(self, number: int, owner: str | None, slots: int, expected_seconds: float | None,
                 remaining: Callable[[], float | None] | None, asked_at: float):  # fmt: skip
        self.number = number  # the order of asking: the queue's order
        self.owner = owner
        self.slots = slots
        self.expected_seconds = expected_seconds  # how long it trains once it starts, when known
        self.remaining = remaining  # while holding: seconds until it lets go (None: unknown)
        self.alive: Callable[[], bool] | None = None  # an outside holder (a sweep's process): released once False
        self.state = WAITING
        self.why = ""  # why it was released without holding: "stopped" | "absent"
        self.asked_at = asked_at
        self.granted_at: float | None = None
        self._changed = threading.Event()

    @property
    def waiting(self) -> bool:
        return self.state == WAITING

    @property
    def holding(self) -> bool:
        return self.state == HOLDING


@dataclass(frozen=True)
class QueuePlace:
    """Where a waiting claim stands: 1 = next to start."""

    position: int
    waiting: int  # claims in the queue, this one included
    starts_in: float | None  # estimated seconds until it starts; None when nothing tells


class TrainingScheduler:
    """K slots and a FIFO queue, thread-safe. `grace`: seconds a browser may be away."""

    def __init__(self, slots: int, *, grace: float = ABSENCE_GRACE, clock: Callable[[], float] = time.monotonic):
        if slots < 1:
            raise ValueError(f"a scheduler needs at least one slot (got {slots})")
        self.slots = slots
        self.grace = grace
        self._clock = clock
        self._lock = threading.Lock()
        self._holding: list[Claim] = []
        self._queue: list[Claim] = []
        self._numbers = 0
        self._sessions: dict[str, int] = {}  # browser -> sessions open now
        self._away_since: dict[str, float] = {}  # browsers whose every session ended, since when

    # --- trainings ------------------------------------------------------------------------------

    def ask(self, owner: str | None = None, expected_seconds: float | None = None,
            remaining: Callable[[], float | None] | None = None) -> Claim:  # fmt: skip
        """Join the queue for one slot; the claim holds at once when a slot is free and nobody waits."""
        with self._lock:
            self._numbers += 1
            claim = Claim(self._numbers, owner, 1, expected_seconds, remaining, self._clock())
            self._queue.append(claim)
            self._grant()
            return claim

    def wait(self, claim: Claim, timeout: float | None = None) -> bool:
        """Block until the claim holds (True) or is released in the queue (False: stopped, or
        its browser left). With `timeout`, False also when it is still waiting then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._tidy()
                if claim.state != WAITING:
                    return claim.state == HOLDING
                claim._changed.clear()
            left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
            if left <= 0:
                return False
            claim._changed.wait(left)

    def release(self, claim: Claim, why: str = "stopped") -> None:
        """Let go: a holder frees its slots for the queue's head; a waiter leaves the queue. Idempotent."""
        with self._lock:
            self._release(claim, why)
            self._grant()

    # --- sweeps ---------------------------------------------------------------------------------

    def hold(self, slots: int) -> Claim:
        """Take up to `slots` of the free slots at once, for an outside user (a sweep's workers);
        the claim's `slots` says how many it got (0: none free). `watch` it once the user runs."""
        with self._lock:
            self._tidy()
            self._numbers += 1
            claim = Claim(self._numbers, None, min(slots, self._free()), None, None, self._clock())
            claim.state, claim.granted_at = HOLDING, claim.asked_at
            if claim.slots:
                self._holding.append(claim)
            else:
                claim.state = RELEASED
            return claim

    def watch(self, claim: Claim, alive: Callable[[], bool]) -> None:
        """Release `claim` by itself once `alive()` says False (checked as the queue is looked at)."""
        claim.alive = alive

    # --- browsers -------------------------------------------------------------------------------

    def present(self, owner: str) -> None:
        """A session of browser `owner` began."""
        with self._lock:
            self._sessions[owner] = self._sessions.get(owner, 0) + 1
            self._away_since.pop(owner, None)

    def absent(self, owner: str) -> None:
        """A session of browser `owner` ended; with its last one, its queued runs go after `grace`."""
        with self._lock:
            left = self._sessions.get(owner, 0) - 1
            if left > 0:
                self._sessions[owner] = left
                return
            self._sessions.pop(owner, None)
            self._away_since[owner] = self._clock()

    # --- reading --------------------------------------------------------------------------------

    def free(self) -> int:
        """Slots nobody holds or waits for: what a sweep may take now."""
        with self._lock:
            self._tidy()
            return self._free()

    def counts(self) -> tuple[int, int]:
        """(slots held, claims waiting) now."""
        with self._lock:
            self._tidy()
            return sum(c.slots for c in self._holding), len(self._queue)

    def place(self, claim: Claim) -> QueuePlace | None:
        """Where a waiting claim stands and when it should start (None once it does not wait).

        The estimate plays the queue forward: each slot frees when its holder's `remaining()`
        says, and each claim ahead then holds it for its `expected_seconds`; an unknown time
        makes every later start unknown."""
        with self._lock:
            self._tidy()
            if claim.state != WAITING:
                return None
            position = self._queue.index(claim) + 1
            holders = [(c.slots, c.remaining) for c in self._holding]
            ahead = [c.expected_seconds for c in self._queue[: position - 1]]
            waiting = len(self._queue)
        free_at = [(remaining() if remaining is not None else None) for _, remaining in holders]
        slots_free = [left for (n, _), left in zip(holders, free_at, strict=True) for _ in range(n)]
        starts = start_estimate(self.slots, slots_free, ahead)
        return QueuePlace(position, waiting, starts)

    # --- under the lock -------------------------------------------------------------------------

    def _free(self) -> int:
        return max(0, self.slots - sum(c.slots for c in self._holding) - len(self._queue))

    def _release(self, claim: Claim, why: str) -> None:
        if claim.state == HOLDING and claim in self._holding:
            self._holding.remove(claim)
        elif claim.state == WAITING and claim in self._queue:
            self._queue.remove(claim)
            claim.why = why
        claim.state = RELEASED
        claim._changed.set()

    def _tidy(self) -> None:
        """Drop outside holders that ended and the queued claims of browsers gone past the grace; grant."""
        for claim in [c for c in self._holding if c.alive is not None and not c.alive()]:
            self._release(claim, "ended")
        now = self._clock()
        gone = {owner for owner, since in self._away_since.items() if now - since >= self.grace}
        for claim in [c for c in self._queue if c.owner in gone]:
            self._release(claim, "absent")
        self._grant()

    def _grant(self) -> None:
        """The queue's head takes each free slot, in order."""
        while self._queue and sum(c.slots for c in self._holding) < self.slots:
            claim = self._queue.pop(0)
            claim.state, claim.granted_at = HOLDING, self._clock()
            self._holding.append(claim)
            claim._changed.set()


def start_estimate(slots: int, free_at: list[float | None], ahead: list[float | None]) -> float | None:
    """Seconds until the next claim after `ahead` starts: `free_at` is when each held slot frees
    (None: unknown), the other slots of `slots` are free now; each claim ahead takes the
    earliest slot for its expected seconds (None: unknown). None when the answer is unknown."""
    heap = [math.inf if t is None else max(0.0, t) for t in free_at]
    heap += [0.0] * max(0, slots - len(heap))
    heapq.heapify(heap)
    for seconds in ahead:
        earliest = heapq.heappop(heap)
        heapq.heappush(heap, earliest + (math.inf if seconds is None else seconds))
    first = heap[0]
    return first if math.isfinite(first) else None
