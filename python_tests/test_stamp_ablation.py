"""benchmarks/stamp_ablation.py: each variant reverts exactly what it says, and the report reads the results."""

import importlib.util
import json
import sys
from pathlib import Path

import torch

from stegafast.models.stamp import StampLossConfig, StampModelConfig, StampNoiseConfig

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "stamp_ablation.py"
_spec = importlib.util.spec_from_file_location("stamp_ablation", _PATH)
ablation = importlib.util.module_from_spec(_spec)
sys.modules["stamp_ablation"] = ablation  # its dataclasses look their module up there
_spec.loader.exec_module(ablation)


def _differences(task) -> dict:
    """The fields of the task's configs that differ from the ablation's baseline (the ``current`` variant)."""
    base = ablation.build_task(ablation.VARIANTS["current"], 32)
    out = {}
    for part in ("model_config", "loss_config", "noise_config"):
        mine, theirs = getattr(task, part).to_dict(), getattr(base, part).to_dict()
        out.update({k: v for k, v in mine.items() if v != theirs[k]})
    return out


def test_each_variant_changes_only_its_fix():
    expected = {
        "current": {},
        "ste": {"jpeg_rounding": "ste"},
        "per-pixel": {"reference_size": 0},
        "torch-init": {},
        "conv10": {"residual_layer": "conv10"},
        "before": {"residual_layer": "conv10", "jpeg_rounding": "ste", "reference_size": 0},
        "gan": {"gan": True},
        "gan-no-grad-clip": {"gan": True, "critic_grad_clip": 0.0},
    }
    assert set(expected) == set(ablation.VARIANTS)
    for name, differences in expected.items():
        assert _differences(ablation.build_task(ablation.VARIANTS[name], 32)) == differences, name


def test_budget_is_the_readme_one():
    task = ablation.build_task(ablation.VARIANTS["current"], 64)
    assert task.loss_config == StampLossConfig(gan=False, no_image_loss_steps=4000).scaled(0.1)
    assert task.noise_config == StampNoiseConfig().scaled(0.1)
    assert task.model_config == StampModelConfig(image_size=64)


def test_torch_init_variant_keeps_pytorch_init():
    torch.manual_seed(0)
    he = ablation.build_task(ablation.VARIANTS["current"], 32).build_models()["encoder"]
    torch.manual_seed(0)
    default = ablation.build_task(ablation.VARIANTS["torch-init"], 32).build_models()["encoder"]
    assert he.conv1[0].bias.abs().sum() == 0  # he_normal zeroes biases
    assert default.conv1[0].bias.abs().sum() > 0  # PyTorch draws them
    assert default.residual.weight.std() < he.residual.weight.std()


def test_report_tables_finished_variants(tmp_path):
    rates = {"bit_accuracy": 0.75, "decode_success": 0.25, "wrong_message_rate": 0.0}
    result = {"description": "d", "psnr": 20.04, "ssim": 0.5, "train_wall_s": 12.0}
    folder = tmp_path / "ste"
    folder.mkdir()
    (folder / "ablation.json").write_text(json.dumps({**result, "distortions": {"none": rates, "jpeg75": rates}}))
    table = ablation.report(tmp_path)
    assert table.splitlines()[2] == "| `ste` | d | 0.750 / 25% | 0.750 / 25% | 20.0 | 0.50 | 12 |"
    assert len(table.splitlines()) == 3
