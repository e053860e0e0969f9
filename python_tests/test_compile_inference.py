"""``--compile`` on the inference commands: ``compile_parts`` compiles named parts in place without
changing the state dict; a compiled command's output matches the eager command's (a codec file
written compiled decodes eagerly, and the other way round); ``--compile-mode`` needs ``--compile``.
The end-to-end cases compile with inductor and are slow (tens of seconds each on a small CPU)."""

import numpy as np
import pytest
import torch
from PIL import Image
from testutils import QUICK_TRAIN_ARGS, single_error_line, train_tiny_run, write_random_png
from torch import nn

from stegafast.cli import main
from stegafast.train import compile_parts


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.body(x))

    def features(self, x):
        return self.body(x).mean((2, 3))


def test_compile_parts_keeps_names_and_values():
    torch.manual_seed(0)
    net = _Net().eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        want, want_features = net(x), net.features(x)
    keys = list(net.state_dict())
    compile_parts(net, ("body", "features"))
    assert list(net.state_dict()) == keys  # no _orig_mod. prefix: identifiers and checkpoints unchanged
    with torch.no_grad():
        torch.testing.assert_close(net(x), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.features(x), want_features, atol=1e-5, rtol=1e-5)


def test_compile_parts_rejects_a_non_callable():
    with pytest.raises(TypeError, match="neither a module nor a method"):
        compile_parts(_Net(), ("training",))
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        compile_parts(_Net(), (), "fastest")


@pytest.mark.parametrize(
    "argv",
    [
        ["stego", "embed", "--cover", "a.png", "--secret", "b.png", "--out", "s.png"],
        ["stego", "extract", "--stego", "a.png", "--out", "s.png"],
        ["stamp", "encode", "--secret", "hi", "--out", "d", "--image", "a.png"],
        ["stamp", "decode", "--image", "a.png"],
        ["codec", "compress", "a.png", "-o", "a.sfc"],
        ["codec", "decompress", "a.sfc", "-o", "a.png"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_compile_mode_needs_compile(argv, tmp_path, capsys):
    assert main([*argv, "--checkpoint", str(tmp_path / "none"), "--compile-mode", "max-autotune"]) == 2
    assert "--compile-mode max-autotune needs --compile" in single_error_line(capsys)


@pytest.mark.slow
def test_stego_embed_and_extract_compiled(tmp_path):
    tiny = [*"--blocks 2 --hidden 16 --image-size 32".split(), *QUICK_TRAIN_ARGS]
    _, _, run = train_tiny_run("stego", tmp_path, 2, (40, 48, 3), 1, tiny)
    cover = write_random_png(tmp_path / "cover.png", (40, 48, 3), seed=5)
    secret = write_random_png(tmp_path / "secret.png", (40, 48, 3), seed=6)
    outputs = {}
    for mode in ("eager", "compiled"):
        flag = ["--compile"] if mode == "compiled" else []
        stego, recovered = tmp_path / f"{mode}_stego.png", tmp_path / f"{mode}_secret.png"
        common = ["--checkpoint", str(run), "--device", "cpu", *flag]
        assert main(["stego", "embed", "--cover", cover, "--secret", secret, "--out", str(stego), *common]) == 0
        assert main(["stego", "extract", "--stego", str(stego), "--out", str(recovered), *common]) == 0
        outputs[mode] = _pixels(stego), _pixels(recovered)
    # 8-bit PNGs of float results: compiled kernels may round a pixel the other way, never further
    for eager, compiled in zip(outputs["eager"], outputs["compiled"], strict=True):
        assert np.abs(eager - compiled).max() <= 1


@pytest.mark.slow
def test_codec_files_cross_between_compiled_and_eager(tmp_path, capsys):
    tiny = [*"--N 8 --M 8 --image-size 64".split(), *QUICK_TRAIN_ARGS]
    _, _, run = train_tiny_run("codec", tmp_path, 2, (70, 80, 3), 1, tiny)
    image = write_random_png(tmp_path / "image.png", (70, 80, 3), seed=3)
    common = ["--checkpoint", str(run), "--device", "cpu"]
    for mode in ("eager", "compiled"):
        flag = ["--compile"] if mode == "compiled" else []
        assert main(["codec", "compress", image, "-o", str(tmp_path / f"{mode}.sfc"), *common, *flag]) == 0
    decoded = {}
    for source in ("eager", "compiled"):
        for mode in ("eager", "compiled"):
            flag = ["--compile"] if mode == "compiled" else []
            out = tmp_path / f"{source}_by_{mode}.png"
            assert main(["codec", "decompress", str(tmp_path / f"{source}.sfc"), "-o", str(out), *common, *flag]) == 0
            decoded[source, mode] = _pixels(out)
    capsys.readouterr()
    # each file decodes alike eagerly and compiled: the parts both sides share never compile
    for source in ("eager", "compiled"):
        assert np.abs(decoded[source, "eager"] - decoded[source, "compiled"]).max() <= 1
