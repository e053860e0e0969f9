"""`stegafast diffusion simulate|train|denoise|evaluate` end to end in a temporary folder
with the CPU preset at 16 x 16, the mistakes each command reports as one error line, and
the package and command working without diffusers."""

import json
import subprocess
import sys

import numpy as np
import pytest
from testutils import QUICK_TRAIN_ARGS, single_error_line

pytest.importorskip("diffusers")

from stegafast.cli import main  # noqa: E402
from stegafast.models.diffusion.imagefiles import read_intensity, write_float_tiff  # noqa: E402

PHYSICS = ["--psf-size", "5", "--psf-sigma", "1.0"]
TINY_TRAIN = [*"--preset cpu --image-size 16".split(), *QUICK_TRAIN_ARGS, *PHYSICS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Simulated pairs and a 2-step run trained on them."""
    root = tmp_path_factory.mktemp("diffusion")
    assert (
        main(["diffusion", "simulate", "--out", str(root / "sim"), "--count", "3", "--image-size", "24", *PHYSICS]) == 0
    )
    run = root / "run"
    assert (
        main(["diffusion", "train", "--data", str(root / "sim"), "--out", str(run), "--steps", "2", *TINY_TRAIN]) == 0
    )
    return root, run


def test_simulate_writes_pairs_in_photons(trained):
    root, _ = trained
    clean = read_intensity(root / "sim" / "clean" / "0001.tif")
    widefield = read_intensity(root / "sim" / "widefield" / "0001.tif")
    assert clean.shape == widefield.shape == (24, 24)
    assert clean.max() == pytest.approx(100.0) and np.array_equal(widefield, np.round(widefield))
    assert read_intensity(root / "sim" / "psf.tif").sum() == pytest.approx(1.0, abs=1e-5)


def test_denoise_a_file_and_a_folder(trained, tmp_path):
    root, run = trained
    out = tmp_path / "one.tif"
    src = root / "sim" / "widefield" / "0000.tif"
    args = ["diffusion", "denoise", "--checkpoint", str(run), "--device", "cpu", "--steps", "2"]
    assert main([*args, "--input", str(src), "--out", str(out), "--sampler", "dpmpp", "--guidance", "l2"]) == 0
    restored = read_intensity(out)
    assert restored.shape == (24, 24) and (restored >= 0).all()
    assert main([*args, "--input", str(root / "sim" / "widefield"), "--out", str(tmp_path / "all")]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["0000.tif", "0001.tif", "0002.tif"]


def test_evaluate_prints_the_table_and_json(trained, capsys):
    _, run = trained
    args = ["diffusion", "evaluate", "--checkpoint", str(run), "--device", "cpu", "--images", "1"]
    assert main([*args, "--methods", "ddim:2,dpmpp:2:pkl"]) == 0
    table = capsys.readouterr().out
    for row in ("widefield", "richardson_lucy", "ddim2", "dpmpp2+pkl"):
        assert f"| {row} |" in table
    assert main([*args, "--methods", "ddim:2:anscombe", "--json", "--image-size", "24"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 1 and result["image_size"] == 24
    assert set(result["rows"]) == {"widefield", "richardson_lucy", "ddim2+anscombe"}
    assert all(-1 <= row["ssim"] <= 1 and row["frc_px"] >= 2 for row in result["rows"].values())


def test_user_mistakes_are_one_line(trained, tmp_path, capsys):
    root, run = trained
    src = str(root / "sim" / "widefield" / "0000.tif")
    denoise = ["diffusion", "denoise", "--checkpoint", str(run), "--device", "cpu", "--input", src]
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    write_float_tiff(np.zeros((8, 8), np.float32), tmp_path / "small.tif")
    cases = [
        ([*denoise, "--out", str(tmp_path / "x.png")], ".tif"),
        ([*denoise, "--out", str(tmp_path / "x.tif"), "--steps", "0"], "--steps"),
        ([*denoise, "--out", str(tmp_path / "x.tif"), "--lambda-base", "-1"], "--lambda-base"),
        ([*denoise, "--out", str(tmp_path / "x.tif"), "--t-threshold", "1000"], "--t-threshold"),
        ([*denoise, "--out", str(tmp_path / "x.tif"), "--psf-file", str(tmp_path / "bad.npy")], "PSF"),
        ([*denoise[:-1], str(tmp_path / "nope.tif"), "--out", str(tmp_path / "x.tif")], "does not exist"),
        ([*denoise[:-1], str(tmp_path / "small.tif"), "--out", str(tmp_path / "x.tif")], "16x16"),
        (["diffusion", "train", "--out", str(tmp_path / "r"), "--image-size", "20", *TINY_TRAIN[4:]], "multiple of 8"),
        (["diffusion", "train", "--out", str(tmp_path / "r"), "--psf-size", "4"], "--psf-size"),
        (["diffusion", "train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "none")], "does not exist"),
        (["diffusion", "simulate", "--out", str(tmp_path / "s"), "--count", "0"], "--count"),
        (["diffusion", "evaluate", "--checkpoint", str(run), "--methods", "euler:3"], "--methods"),
        (["diffusion", "evaluate", "--checkpoint", str(tmp_path / "small.tif")], "checkpoint"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in single_error_line(capsys), argv


def test_package_and_command_work_without_diffusers():
    code = (
        "import sys; sys.modules['diffusers'] = None\n"  # an import of diffusers now fails
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'diffusers' else real(name, *a)\n"
        "import stegafast, stegafast.models.stego, stegafast.cli as cli\n"
        "sys.exit(cli.main(['diffusion', 'train', '--steps', '3']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "pip install 'stegafast[diffusion]'" in done.stderr and "Traceback" not in done.stderr
