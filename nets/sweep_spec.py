"""SweepSpec: what a hyperparameter sweep varies, what it keeps, how it searches, how long.

A sweep varies some fields of TrainConfig (its knobs) over lists of values or numeric
ranges (optionally on a log scale), keeps the rest at a preset plus overrides, and
maximises the validation accuracy of a trial's last epoch: the test set is never used
to choose. Everything is checked when the spec is built; a bad spec raises SweepSpecError
with one line naming the knob and what it allows.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any

from nets.config import CHOICES, INT_FIELDS, LIMITS, PRESETS, ConfigError, TrainConfig
from nets.estimate import relative_work

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "asha")
OBJECTIVE = "val_acc"  # the validation accuracy after a trial's last epoch, maximised
MAX_TRIALS = 10_000
MAX_WORKERS = 64
# Short names people type for the knobs they vary most.
ALIASES = {
    "lr": "learning_rate",
    "hidden": "hidden_size",
    "units": "hidden_size",
    "batch": "batch_size",
    "wd": "weight_decay",
    "decay": "weight_decay",
    "shift": "augment_shift",
    "samples": "train_samples",
}
FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


class SweepSpecError(ValueError):
    """A sweep cannot be built as described; the one-line message names the knob."""


def field_name(name: str) -> str:
    """The TrainConfig field a knob's name (or its short alias) means."""
    name = name.strip()
    resolved = ALIASES.get(name, name)
    if resolved not in FIELDS:
        raise SweepSpecError(
            f"{name!r} is not a setting; vary one of {', '.join(FIELDS)} (or lr, hidden, batch, wd, shift)"
        )
    return resolved


def parse_value(name: str, text: str) -> Any:
    """One value of field `name` from text, typed as TrainConfig wants it."""
    text = text.strip()
    if name == "shuffle":
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        raise SweepSpecError(f"shuffle takes true or false (got {text!r})")
    if name in CHOICES:
        return text
    if name == "train_samples" and text.lower() in ("none", "all"):
        return None
    try:
        number = float(text)
    except ValueError:
        raise SweepSpecError(f"{name} takes numbers (got {text!r})") from None
    if name in INT_FIELDS:
        if not number.is_integer():
            raise SweepSpecError(f"{name} takes whole numbers (got {text!r})")
        return int(number)
    return number


@dataclass(frozen=True)
class Knob:
    """One varied setting: a list of values, or a numeric range [low, high] (log-scaled or not)."""

    name: str  # a TrainConfig field
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return not self.choices

    def describe(self) -> str:
        if self.choices:
            return f"{self.name} in {{{', '.join(_text(v) for v in self.choices)}}}"
        return f"{self.name} from {_text(self.low)} to {_text(self.high)}" + (" (log scale)" if self.log else "")

    def suggest(self, trial) -> Any:
        """Ask an Optuna trial for this knob's value."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.name in INT_FIELDS:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def to_dict(self) -> dict:
        return {"name": self.name, "choices": list(self.choices), "low": self.low, "high": self.high, "log": self.log}

    @classmethod
    def from_dict(cls, data: dict) -> Knob:
        return cls(data["name"], tuple(data.get("choices") or ()), data.get("low"), data.get("high"),
                   bool(data.get("log")))  # fmt: skip


def parse_knob(text: str) -> Knob:
    """A knob from the command line's form: `lr=1e-4:1:log`, `hidden=64,128,256`, `activation=relu,tanh`."""
    if "=" not in text:
        raise SweepSpecError(f"--param {text!r}: write NAME=LOW:HIGH[:log] or NAME=A,B,C")
    raw_name, _, values = text.partition("=")
    name = field_name(raw_name)
    if ":" in values:
        parts = values.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].strip().lower() != "log"):
            raise SweepSpecError(f"--param {text!r}: a range is LOW:HIGH or LOW:HIGH:log")
        return Knob(name, low=parse_value(name, parts[0]), high=parse_value(name, parts[1]), log=len(parts) == 3)
    choices = [v for v in values.split(",") if v.strip()]
    if not choices:
        raise SweepSpecError(f"--param {text!r}: give at least one value")
    return Knob(name, choices=tuple(parse_value(name, v) for v in choices))


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep. `trials` and `timeout` (seconds) bound it; either may be None, not both
    (a grid alone is bounded by its size)."""

    knobs: tuple[Knob, ...]
    preset: str = "fast"
    overrides: tuple[tuple[str, Any], ...] = ()
    sampler: str = "tpe"
    pruner: str = "asha"
    trials: int | None = 20
    timeout: float | None = None
    seed: int = 0
    workers: int = field(default_factory=default_workers)
    name: str = ""

    def __post_init__(self):
        if not self.knobs:
            raise SweepSpecError("a sweep needs at least one knob to vary (--param NAME=...)")
        if self.preset not in PRESETS:
            raise SweepSpecError(f"preset must be one of {', '.join(PRESETS)} (got {self.preset!r})")
        if self.sampler not in SAMPLERS:
            raise SweepSpecError(f"sampler must be one of {', '.join(SAMPLERS)} (got {self.sampler!r})")
        if self.pruner not in PRUNERS:
            raise SweepSpecError(f"pruner must be one of {', '.join(PRUNERS)} (got {self.pruner!r})")
        names = [k.name for k in self.knobs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SweepSpecError(f"{twice[0]} is varied twice: give it one --param")
        fixed_and_varied = sorted(set(names) & {name for name, _ in self.overrides})
        if fixed_and_varied:
            raise SweepSpecError(f"{fixed_and_varied[0]} is both varied (--param) and fixed (--set): choose one")
        try:
            base = self.base_config()
        except ConfigError as exc:
            raise SweepSpecError(f"--set: {exc}") from None
        for knob in self.knobs:
            _check_knob(knob, base, self.sampler)
        if self.trials is not None and not (isinstance(self.trials, int) and 1 <= self.trials <= MAX_TRIALS):
            raise SweepSpecError(f"trials must be a whole number from 1 to {MAX_TRIALS} (got {self.trials!r})")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise SweepSpecError(f"timeout must be a positive number of seconds (got {self.timeout!r})")
        if self.trials is None and self.timeout is None and self.sampler != "grid":
            raise SweepSpecError("give a budget: --trials N and/or --timeout SECONDS")
        if not (isinstance(self.workers, int) and 1 <= self.workers <= MAX_WORKERS):
            raise SweepSpecError(f"workers must be a whole number from 1 to {MAX_WORKERS} (got {self.workers!r})")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**31):
            raise SweepSpecError(f"seed must be a whole number from 0 to {2**31 - 1} (got {self.seed!r})")

    # --- what it trains ------------------------------------------------------------------------

    def base_config(self) -> TrainConfig:
        """The preset with the overrides: the settings no knob varies."""
        return PRESETS[self.preset].replace(**dict(self.overrides))

    def config_for(self, params: dict[str, Any]) -> TrainConfig:
        return self.base_config().replace(**params)

    @property
    def grid_size(self) -> int | None:
        """How many points a grid over the knobs has (None: a knob is a range)."""
        if any(k.is_range for k in self.knobs):
            return None
        return math.prod(len(k.choices) for k in self.knobs)

    @property
    def planned_trials(self) -> int | None:
        """Trials the budget allows at most: `trials`, a grid's size, or None (bounded by time only)."""
        if self.sampler == "grid":
            return min(self.trials or self.grid_size, self.grid_size)
        return self.trials

    def grid_space(self) -> dict[str, list]:
        return {k.name: list(k.choices) for k in self.knobs}

    @property
    def runs_whole_grid(self) -> bool:
        """A grid whose budget is all of it (no trial count below its size, no time limit): the
        order of its trials decides only when the sweep ends, not which settings it tries."""
        size = self.grid_size  # queued in the study only up to MAX_TRIALS points: a write each
        return self.sampler == "grid" and self.timeout is None and size is not None and 1 < size <= MAX_TRIALS \
            and self.planned_trials == size  # fmt: skip

    def grid_longest_first(self) -> list[dict[str, Any]]:
        """The grid's points, the longest to train first. Workers that take trials in this
        order finish close together (longest processing time first); in the sampler's random
        order the last long trial could leave the other workers idle for most of its run."""
        names = [k.name for k in self.knobs]
        points = [
            dict(zip(names, values, strict=True)) for values in itertools.product(*(k.choices for k in self.knobs))
        ]
        random.Random(self.seed).shuffle(points)  # equal lengths in a random order, as the grid sampler takes them
        return sorted(points, key=lambda p: -relative_work(self.config_for(p)))  # stable: the ties stay shuffled

    def describe(self) -> str:
        budget = [f"{self.planned_trials} trials"] if self.planned_trials else []
        budget += [f"at most {self.timeout:g} s"] if self.timeout else []
        return (
            f"{'; '.join(k.describe() for k in self.knobs)}; the rest from {self.preset}"
            + "".join(f", {n}={_text(v)}" for n, v in self.overrides)
            + f"; {self.sampler} sampler, pruner {self.pruner}, {' and '.join(budget)}, {self.workers} workers"
        )

    # --- as JSON (kept with the sweep in the store) --------------------------------------------

    def to_dict(self) -> dict:
        return {
            "knobs": [k.to_dict() for k in self.knobs],
            "preset": self.preset,
            "overrides": dict(self.overrides),
            "sampler": self.sampler,
            "pruner": self.pruner,
            "trials": self.trials,
            "timeout": self.timeout,
            "seed": self.seed,
            "workers": self.workers,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SweepSpec:
        try:
            return cls(
                knobs=tuple(Knob.from_dict(k) for k in data["knobs"]),
                preset=data["preset"],
                overrides=tuple(sorted(data.get("overrides", {}).items())),
                sampler=data["sampler"],
                pruner=data["pruner"],
                trials=data.get("trials"),
                timeout=data.get("timeout"),
                seed=data.get("seed", 0),
                workers=data.get("workers", default_workers()),
                name=data.get("name", ""),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise SweepSpecError(f"a stored sweep spec this version cannot read ({exc})") from None


def _check_knob(knob: Knob, base: TrainConfig, sampler: str) -> None:
    """One line naming the knob and what it allows, or nothing."""
    name = knob.name
    if name not in FIELDS:
        raise SweepSpecError(f"{name!r} is not a setting; vary one of {', '.join(FIELDS)}")
    if knob.is_range:
        if name not in LIMITS:
            allowed = ", ".join(CHOICES.get(name, ("true", "false")))
            raise SweepSpecError(f"{name} takes a list of values ({allowed}), not a range")
        if sampler == "grid":
            raise SweepSpecError(f"the grid sampler needs a list of values for {name} (e.g. {name}=A,B,C), not a range")
        low, high = knob.low, knob.high
        if low is None or high is None or not low < high:
            raise SweepSpecError(f"{name}: a range needs LOW < HIGH (got {_text(low)}:{_text(high)})")
        if knob.log and low <= 0:
            raise SweepSpecError(f"{name}: a log-scaled range needs LOW > 0 (got {_text(low)})")
        values = (low, high)
    else:
        if len(set(map(repr, knob.choices))) != len(knob.choices):
            raise SweepSpecError(f"{name}: a value is listed twice")
        values = knob.choices
    for value in values:
        try:
            base.replace(**{name: value})
        except ConfigError as exc:
            raise SweepSpecError(f"--param {name}: {exc}") from None
        except TypeError:
            raise SweepSpecError(f"--param {name}: {value!r} is not a value it takes") from None
