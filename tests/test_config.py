"""TrainConfig: every field's bounds, named in the error; presets; dict round trip."""

import math

import pytest

from nets.config import INT_FIELDS, LIMITS, PRESETS, ConfigError, TrainConfig


def test_defaults_are_the_fast_preset():
    assert PRESETS["fast"] == TrainConfig()


def test_seed_preset_is_the_notebook():
    c = PRESETS["seed"]
    assert (c.hidden_size, c.activation, c.init, c.init_std) == (128, "relu", "std", 0.01)
    assert (c.optimizer, c.learning_rate, c.lr_schedule, c.weight_decay) == ("sgd", 0.1, "constant", 0.0)
    assert (c.batch_size, c.epochs, c.shuffle, c.dtype) == (1000, 50, False, "float32")


@pytest.mark.parametrize("field", sorted(LIMITS))
def test_limits_are_inclusive(field):
    low, high = LIMITS[field]
    for value in (low, high):
        value = int(value) if field in INT_FIELDS else float(value)
        assert getattr(TrainConfig(**{field: value}), field) == value


BAD = [
    ("hidden_size", 0),
    ("hidden_size", -5),
    ("hidden_size", 100_000),
    ("hidden_size", 12.5),
    ("hidden_size", True),
    ("learning_rate", 0),
    ("learning_rate", 1e6),
    ("learning_rate", -0.1),
    ("learning_rate", math.nan),
    ("learning_rate", math.inf),
    ("learning_rate", "0.1"),
    ("batch_size", 0),
    ("batch_size", 10**6),
    ("epochs", 0),
    ("epochs", 10_000),
    ("seed", -1),
    ("seed", 2**32),
    ("momentum", 1.0),
    ("weight_decay", -1e-3),
    ("init_std", 0),
    ("train_samples", 0),
    ("augment_shift", -1),
    ("augment_shift", 5),
    ("activation", "gelu"),
    ("init", "zeros"),
    ("optimizer", "rmsprop"),
    ("lr_schedule", "step"),
    ("dtype", "float16"),
    ("shuffle", "yes"),
]


@pytest.mark.parametrize("field, value", BAD)
def test_bad_field_is_named(field, value):
    with pytest.raises(ConfigError, match=f"^{field} must"):
        TrainConfig(**{field: value})


def test_dict_round_trip_and_unknown_field():
    config = PRESETS["best"]
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown config field 'hidden'"):
        TrainConfig.from_dict({"hidden": 3})
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_dict([1, 2])


def test_replace_validates():
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig().replace(epochs=0)
