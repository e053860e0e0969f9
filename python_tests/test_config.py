"""The config base every settings dataclass shares (stegafast.config)."""

from dataclasses import replace

import pytest

from stegafast.config import (
    Config,
    check_non_negative,
    check_non_negative_int,
    check_positive,
    check_positive_int,
    check_probability,
    is_int,
)
from stegafast.models.codec import CodecConfig
from stegafast.models.stamp import StampLossConfig, StampModelConfig, StampNoiseConfig
from stegafast.models.stego import StegoLossConfig, StegoModelConfig
from stegafast.train import Schedule, TrainConfig

FAMILY_CONFIGS = [StegoModelConfig, StegoLossConfig, StampModelConfig, StampLossConfig, StampNoiseConfig, CodecConfig]


@pytest.mark.parametrize("config_type", FAMILY_CONFIGS)
def test_every_family_config_round_trips_through_a_dict(config_type):
    assert issubclass(config_type, Config)
    config = config_type()
    assert config_type.from_dict(config.to_dict()) == config
    # missing keys take their defaults, or what the code did before the field existed (legacy_defaults)
    assert config_type.from_dict({}) == replace(config, **config_type.legacy_defaults)


@pytest.mark.parametrize("config_type", FAMILY_CONFIGS)
def test_unknown_settings_and_non_dicts_are_refused(config_type):
    label = config_type.settings_name or config_type.__name__
    with pytest.raises(ValueError, match=f"unknown {label} settings \\['zzz'\\]"):
        config_type.from_dict({"zzz": 1})
    with pytest.raises(ValueError, match=f"{label} settings must be a dict, got list"):
        config_type.from_dict([])


def test_the_engine_configs_share_the_base():
    assert issubclass(TrainConfig, Config) and issubclass(Schedule, Config)
    assert TrainConfig(out="run", steps=1, batch_size=1).to_dict()["out"] == "run"


@pytest.mark.parametrize(
    "check,good,bad,message",
    [
        (check_positive_int, [1, 7], [0, -1, 1.0, True, "2"], "x must be a positive integer"),
        (check_non_negative_int, [0, 3], [-1, 0.5, False], "x must be a non-negative integer"),
        (
            check_non_negative,
            [0, 0.5, 2],
            [-0.1, float("inf"), float("nan"), True, "1"],
            "x must be a finite number >= 0",
        ),
        (check_positive, [1e-9, 3], [0, 0.0], "x must be positive"),
        (check_probability, [0, 0.5, 1], [1.01], "x must be a probability in \\[0, 1\\]"),
    ],
)
def test_field_checks(check, good, bad, message):
    for value in good:
        check("x", value)
    for value in bad:
        with pytest.raises(ValueError, match=message):
            check("x", value)


def test_is_int():
    assert is_int(3) and not is_int(True) and not is_int(3.0)
