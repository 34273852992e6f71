"""app_state's own rules, without a page: snapping values onto the controls, the figure throttle."""

from types import SimpleNamespace

import pytest

import app_state


@pytest.mark.parametrize(
    "options, value, nearest",
    [
        (app_state.LEARNING_RATES, 0.003, 0.002),  # log distance 0.41 to 0.002, 0.51 to 0.005
        (app_state.LEARNING_RATES, 0.004, 0.005),
        (app_state.LEARNING_RATES, 1e-6, 1e-4),  # below the scale: its first step
        (app_state.LEARNING_RATES, 10.0, 10.0),  # on the scale: itself
        (app_state.HIDDEN_SIZES, 90, 100),
        (app_state.HIDDEN_SIZES, 4096, 2048),
        (app_state.BATCH_SIZES, 60, 64),  # not 50, the nearer by subtraction
        (app_state.WEIGHT_DECAYS, 3e-4, 5e-4),
        (app_state.WEIGHT_DECAYS, 0.0, 0.0),  # no decay stays no decay
        (app_state.WEIGHT_DECAYS, 1e-7, 1e-5),
    ],
)
def test_nearest_choice_is_nearest_on_a_log_scale(options, value, nearest):
    assert app_state.nearest_choice(options, value) == nearest


@pytest.fixture
def clock(monkeypatch):
    """app_state outside a page: a plain dict for the session and a clock the test moves."""
    now = SimpleNamespace(t=100.0)
    monkeypatch.setattr(app_state, "time", SimpleNamespace(monotonic=lambda: now.t))
    monkeypatch.setattr(app_state.st, "session_state", {})
    return now


def test_a_figure_is_built_once_and_a_new_version_at_most_every_few_seconds(clock):
    built = []

    def figure(signature, name, every=0.0):
        return app_state.figure(signature, lambda: built.append(name) or name, every=every)

    assert figure(("weights", 1, 5), "run 1 v5", every=3.0) == "run 1 v5"
    assert figure(("weights", 1, 5), "again", every=3.0) == "run 1 v5"  # the same signature: the same object
    clock.t += 1
    assert figure(("weights", 1, 6), "run 1 v6", every=3.0) == "run 1 v5"  # a newer version 1 s later: kept
    assert figure(("weights", 2, 1), "run 2 v1", every=3.0) == "run 2 v1"  # another run: drawn at once
    clock.t += 2.9
    assert figure(("weights", 2, 2), "run 2 v2", every=3.0) == "run 2 v1"
    clock.t += 0.1
    assert figure(("weights", 2, 2), "run 2 v2", every=3.0) == "run 2 v2"  # 3 s on: the newer version
    assert figure(("curves", 2, 1), "curves v1") == "curves v1"  # each kind of chart apart
    assert figure(("curves", 2, 2), "curves v2") == "curves v2"  # no `every`: each new version at once
    assert figure(("weights", 2, 2), "again", every=3.0) == "run 2 v2"
    assert built == ["run 1 v5", "run 2 v1", "run 2 v2", "curves v1", "curves v2"]
