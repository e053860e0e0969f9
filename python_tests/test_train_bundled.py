"""Bundled checkpoints (stegafast/train/bundled.py, scripts/export_bundled.py): export from a tiny trained
codec run, float16 round trip, the CLI's default --checkpoint, the missing-file error and `stegafast info`."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from testutils import QUICK_TRAIN_ARGS, single_error_line, train_tiny_run, write_random_png

from stegafast.cli import main
from stegafast.data import load_image
from stegafast.models.codec import CodecTask, load_codec
from stegafast.train import bundled, load_trained
from stegafast.train.bundled import HALF_TOLERANCE, export_bundled, slim_models
from stegafast.train.checkpoint import load_checkpoint
from stegafast.train.loading import checkpoint_file

TINY_TRAIN = [*"--N 8 --M 8 --image-size 64".split(), *QUICK_TRAIN_ARGS, *"--lr 1e-3".split()]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run("codec", tmp_path_factory.mktemp("bundled"), 2, (70, 80, 3), 2, TINY_TRAIN)


@pytest.fixture
def weights(trained, tmp_path, monkeypatch):
    """A weights folder holding a codec.pt exported from the tiny run, made the package's."""
    monkeypatch.setattr(bundled, "WEIGHTS_DIR", tmp_path / "weights")
    export_bundled(trained[2], CodecTask, tmp_path / "weights" / "codec.pt", provenance={"summary": "tiny test"})
    return tmp_path / "weights"


def test_export_is_slim_half_and_loads_as_the_source(trained, tmp_path):
    run = trained[2]
    source = load_checkpoint(checkpoint_file(run, "min"))
    facts = export_bundled(run, CodecTask, tmp_path / "codec.pt", provenance={"command": "test"})
    shipped = load_checkpoint(tmp_path / "codec.pt", expect_task="codec")
    assert set(shipped) == {"format", "identity", "step", "models", "provenance"}  # no optimiser, rng, data
    assert shipped["identity"] == source["identity"] and shipped["step"] == source["step"] == 2
    assert facts["bytes"] < checkpoint_file(run, "min").stat().st_size
    provenance = shipped["provenance"]
    assert provenance["command"] == "test" and provenance["precision"] == "float16" and provenance["step"] == 2
    assert provenance["parameters"] == facts["parameters"] > 0
    for key, tensor in shipped["models"]["model"].items():
        original = source["models"]["model"][key]
        if original.is_floating_point() and f"model.{key}" not in provenance["kept_full_precision"]:
            assert tensor.dtype == torch.float16
        else:
            assert tensor.dtype == original.dtype
            if not original.is_floating_point():  # the CDF tables: the very integers the run wrote
                assert torch.equal(tensor, original)
    # the loaded model (float32 again) equals the source's within float16's rounding
    loaded = load_trained(CodecTask, tmp_path / "codec.pt").model.state_dict()
    reference = load_trained(CodecTask, run).model.state_dict()
    for key, value in reference.items():
        assert loaded[key].dtype == value.dtype
        if value.is_floating_point():
            scale = value.abs().max().clamp_min(1e-30)
            assert (loaded[key] - value).abs().max() <= HALF_TOLERANCE * scale, key
        else:
            assert torch.equal(loaded[key], value), key


def test_bundled_codec_codes_images(trained, tmp_path):
    export_bundled(trained[2], CodecTask, tmp_path / "codec.pt")
    codec = load_codec(tmp_path / "codec.pt", torch.device("cpu"))
    image = torch.rand(3, 40, 56)
    decoded = codec.decompress(codec.compress(image))
    assert decoded.shape == image.shape and bool(torch.isfinite(decoded).all())


def test_full_precision_keeps_the_tensors(trained, tmp_path):
    run = trained[2]
    export_bundled(run, CodecTask, tmp_path / "full.pt", half=False)
    shipped = load_checkpoint(tmp_path / "full.pt")["models"]["model"]
    for key, value in load_checkpoint(checkpoint_file(run, "min"))["models"]["model"].items():
        assert shipped[key].dtype == value.dtype and torch.equal(shipped[key], value)


def test_tensors_float16_cannot_hold_stay_in_full_precision():
    models = {
        "m": {
            "plain": torch.tensor([0.5, -1.25, 3.0]),
            "huge": torch.tensor([1.0, 1e6]),  # overflows float16
            "counts": torch.tensor([1, 2, 3], dtype=torch.int32),
        }
    }
    slim, kept = slim_models(models)
    assert kept == ["m.huge"]
    assert slim["m"]["plain"].dtype == torch.float16 and slim["m"]["huge"].dtype == torch.float32
    assert slim["m"]["counts"].dtype == torch.int32


def test_export_refuses_another_tasks_checkpoint(trained, tmp_path):
    from stegafast.errors import CheckpointError
    from stegafast.models.stego.task import StegoTask

    with pytest.raises(CheckpointError, match="not 'stego'"):
        export_bundled(trained[2], StegoTask, tmp_path / "stego.pt")
    assert not (tmp_path / "stego.pt").exists()


def test_commands_default_to_the_bundled_checkpoint(weights, tmp_path, capsys):
    image = write_random_png(tmp_path / "a.png", (45, 70, 3), seed=3)
    sfc, out = tmp_path / "a.sfc", tmp_path / "b.png"
    assert main(["codec", "compress", image, "-o", str(sfc)]) == 0
    assert main(["codec", "decompress", str(sfc), "-o", str(out)]) == 0
    assert load_image(out).shape == (3, 45, 70)
    data = tmp_path / "data"
    data.mkdir()
    write_random_png(data / "c.png", (64, 64, 3))
    argv = ["codec", "evaluate", "--data", str(data), "--out", str(tmp_path / "rd")]
    assert main([*argv, "--jpeg-qualities", "50", "--webp-qualities", "50"]) == 0
    table = json.loads((tmp_path / "rd" / "rd.json").read_text())
    assert table["points"][0]["setting"] == str(weights / "codec.pt")
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv",
    [
        ["stego", "embed", "--cover", "a.png", "--secret", "b.png", "--out", "c.png"],
        ["stego", "extract", "--stego", "a.png", "--out", "c.png"],
        ["stego", "evaluate"],
        ["stamp", "encode", "--image", "a.png", "--secret", "hi", "--out", "d"],
        ["stamp", "decode", "--image", "a.png"],
        ["stamp", "evaluate"],
        ["stamp", "export-onnx", "--out", "d"],
        ["codec", "compress", "a.png", "-o", "a.sfc"],
        ["codec", "decompress", "a.sfc", "-o", "a.png"],
        ["codec", "evaluate"],
    ],
)
def test_a_family_without_a_bundled_file_is_one_error_line(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bundled, "WEIGHTS_DIR", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = single_error_line(capsys)
    assert f"no bundled {argv[0]} checkpoint ships with this installation" in line
    assert "--checkpoint" in line and f"stegafast {argv[0]} train" in line


def test_info_lists_the_bundled_checkpoints(weights, trained, capsys):
    assert main(["info", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["bundled"]
    assert set(listed) == {"codec"}
    codec = listed["codec"]
    assert codec["bytes"] == (weights / "codec.pt").stat().st_size and codec["step"] == 2
    assert codec["parameters"] == sum(p.numel() for p in load_trained(CodecTask, trained[2]).model.parameters())
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "  stego  not shipped" in text and "  stamp  not shipped" in text
    assert f"{codec['parameters']:,} parameters, step 2; held-out: tiny test" in text


def _export_script():
    spec = importlib.util.spec_from_file_location("export_bundled", REPO / "scripts" / "export_bundled.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_script_records_the_held_out_numbers(trained, tmp_path, capsys):
    metrics = tmp_path / "rd.json"
    metrics.write_text(json.dumps({"summary": "0.2 bpp, 25 dB", "points": [{"bpp": 0.2, "per_image": [1, 2]}]}))
    out = tmp_path / "codec.pt"
    argv = ["--family", "codec", "--run", str(trained[2]), "--metrics", str(metrics), "--out", str(out)]
    assert _export_script().main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: ") and "parameters, step 2, float16" in printed
    provenance = load_checkpoint(out)["provenance"]
    assert provenance["summary"] == "0.2 bpp, 25 dB" and provenance["metrics"]["points"] == [{"bpp": 0.2}]
    assert provenance["family"] == "codec" and "--metrics" in provenance["command"]
    assert _export_script().main(["--family", "codec", "--run", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
