"""`stegafast codec train|compress|decompress|evaluate` end to end with a tiny model,
and the user mistakes each command reports as one error line and exit status 2."""

import json

import pytest
from PIL import Image
from testutils import QUICK_TRAIN_ARGS, single_error_line, train_tiny_run, write_random_png

from stegafast.cli import main
from stegafast.data import load_image
from stegafast.models.codec.evaluate import jpeg_psnr_at

TINY_TRAIN = [*"--N 8 --M 8 --image-size 64".split(), *QUICK_TRAIN_ARGS, *"--lr 1e-3".split()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run("codec", tmp_path_factory.mktemp("codec"), 3, (70, 80, 3), 2, TINY_TRAIN)


def test_compress_decompress_round_trip(trained, capsys):
    root, _, run = trained
    image = write_random_png(root / "odd.png", (37, 53), "L", seed=5)  # odd size, grayscale
    sfc, out = root / "odd.sfc", root / "odd-decoded.png"
    assert main(["codec", "compress", image, "-o", str(sfc), "--checkpoint", str(run), "--device", "cpu"]) == 0
    assert "bpp" in capsys.readouterr().out
    assert main(["codec", "decompress", str(sfc), "-o", str(out), "--checkpoint", str(run)]) == 0
    decoded = load_image(out)
    assert decoded.shape == (3, 37, 53)


def test_evaluate_writes_json_and_plot(trained, tmp_path, capsys):
    _, data, run = trained
    assert (
        main(
            [
                "codec",
                "evaluate",
                "--checkpoint",
                str(run),
                "--data",
                str(data),
                "--out",
                str(tmp_path),
                "--limit",
                "2",
                "--jpeg-qualities",
                "20",
                "80",
                "--webp-qualities",
                "50",
            ]
        )
        == 0
    )
    table = json.loads((tmp_path / "rd.json").read_text())
    codecs = [(p["codec"], p["setting"]) for p in table["points"]]
    assert codecs == [("stegafast", str(run)), ("JPEG", "q20"), ("JPEG", "q80"), ("WebP", "q50")]
    for point in table["points"]:
        assert len(point["per_image"]) == 2 and point["bpp"] > 0 and 0 < point["psnr"] <= 100
        assert point["ms_ssim"] is None  # 70x80 images are too small for five MS-SSIM scales
        for record in point["per_image"]:
            assert record["bpp"] == pytest.approx(8 * record["bytes"] / (70 * 80))
    jpeg = [p for p in table["points"] if p["codec"] == "JPEG"]
    assert jpeg[1]["bpp"] > jpeg[0]["bpp"] and jpeg[1]["psnr"] > jpeg[0]["psnr"]
    ours = table["points"][0]
    expected = jpeg_psnr_at(table["points"], ours["bpp"])
    assert ours["jpeg_psnr_at_bpp"] == expected
    assert table["summary"].startswith(f"{ours['bpp']:.3f} bpp, {ours['psnr']:.2f} dB PSNR")
    with Image.open(tmp_path / "rd.png") as plot:
        assert plot.format == "PNG" and plot.width >= 600
        assert len(plot.getcolors(1 << 20)) > 10  # axes, text and curves were drawn
    assert "wrote" in capsys.readouterr().out


def test_damaged_and_foreign_files(trained, tmp_path, capsys):
    root, data, run = trained
    image = write_random_png(tmp_path / "a.png", (20, 30, 3))
    sfc = tmp_path / "a.sfc"
    assert main(["codec", "compress", image, "-o", str(sfc), "--checkpoint", str(run)]) == 0
    capsys.readouterr()
    good = sfc.read_bytes()
    for damaged, message in (
        (good[:-3], "truncated"),
        (good[:10] + bytes([good[10] ^ 1]) + good[11:], "corrupt"),
        (b"hello world", "not an .sfc file"),
    ):
        sfc.write_bytes(damaged)
        assert main(["codec", "decompress", str(sfc), "-o", str(tmp_path / "b.png"), "--checkpoint", str(run)]) == 2
        assert message in single_error_line(capsys)
    # another model (another training run) refuses the file
    other = root / "other-run"
    assert (
        main(["codec", "train", "--data", str(data), "--out", str(other), "--steps", "1", "--seed", "1", *TINY_TRAIN])
        == 0
    )
    capsys.readouterr()
    sfc.write_bytes(good)
    assert main(["codec", "decompress", str(sfc), "-o", str(tmp_path / "b.png"), "--checkpoint", str(other)]) == 2
    assert "another model" in single_error_line(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["codec", "compress", "missing.png", "-o", "x.sfc", "--checkpoint", "RUN"], "does not exist"),
        (["codec", "compress", "IMG", "-o", "/no/such/folder/x.sfc", "--checkpoint", "RUN"], "does not exist"),
        (["codec", "decompress", "SFC", "-o", "out.jpg", "--checkpoint", "RUN"], "must be a .png"),
        (["codec", "compress", "IMG", "-o", "x.sfc", "--checkpoint", "IMG"], "not a checkpoint"),
        (["codec", "train", "--image-size", "100", "--out", "OUT"], "multiple of 64"),
        (["codec", "train", "--N", "0", "--out", "OUT"], "--N must be a positive integer"),
        (["codec", "train", "--lmbda", "-1", "--out", "OUT"], "--lmbda must be positive"),
        (["codec", "evaluate", "--checkpoint", "RUN", "--limit", "0"], "--limit"),
        (["codec", "evaluate", "--checkpoint", "RUN", "--jpeg-qualities", "120"], "0..100"),
    ],
)
def test_mistakes_are_one_line_errors(trained, tmp_path, capsys, argv, message):
    root, _, run = trained
    image = write_random_png(tmp_path / "img.png", (16, 16, 3))
    sfc = tmp_path / "x.sfc"
    sfc.write_bytes(b"")
    names = {
        "RUN": str(run),
        "IMG": image,
        "SFC": str(sfc),
        "OUT": str(tmp_path / "out"),
        "x.sfc": str(tmp_path / "x.sfc"),
        "out.jpg": str(tmp_path / "out.jpg"),
    }
    argv = [names.get(a, a) for a in argv]
    assert main(argv) == 2
    assert message in single_error_line(capsys)


def test_checkpoint_of_another_task_is_refused(trained, tmp_path, capsys):
    root, _, _ = trained
    from stegafast.train import atomic_save
    from stegafast.train.checkpoint import CHECKPOINT_FORMAT

    fake = tmp_path / "stego.pt"
    atomic_save({"format": CHECKPOINT_FORMAT, "identity": {"task": "stego"}, "models": {}}, fake)
    image = write_random_png(tmp_path / "img.png", (16, 16, 3))
    assert main(["codec", "compress", image, "-o", str(tmp_path / "x.sfc"), "--checkpoint", str(fake)]) == 2
    assert "stego" in single_error_line(capsys)


def test_jpeg_psnr_at_interpolates_between_the_qualities_around_a_rate():
    points = [
        {"codec": "JPEG", "bpp": 0.4, "psnr": 28.0},
        {"codec": "JPEG", "bpp": 0.2, "psnr": 24.0},
        {"codec": "WebP", "bpp": 0.3, "psnr": 40.0},
    ]
    assert jpeg_psnr_at(points, 0.25) == pytest.approx(25.0)
    assert jpeg_psnr_at(points, 0.4) == 28.0
    assert jpeg_psnr_at(points, 0.1) is None and jpeg_psnr_at(points, 0.5) is None
