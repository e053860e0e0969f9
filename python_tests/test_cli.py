"""The `stegafast` command line: info, the demo, and user mistakes."""

import json
import os
import subprocess
import sys

import pytest

from stegafast.cli import main


def test_info_json_lists_every_op(capsys):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["backend"] == "auto"
    assert set(facts["ops"]) >= {
        "ilwt53_forward",
        "ilwt53_inverse",
        "ilwt53_forward_backward",
        "ilwt53_inverse_backward",
    }
    for name, op in facts["ops"].items():
        # the attention runs in the autocast dtype, as scaled_dot_product_attention does
        policy = "lower" if name == "window_attention" else "keep"  # its backward keeps the saved dtypes
        assert set(op["devices"]) == {"cpu", "cuda"} and op["autocast"] == policy


def test_console_script_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "stegafast", "info"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("stegafast ")


def test_demo_is_lossless_and_writes_the_mosaic(tmp_path, capsys):
    png = tmp_path / "bands.png"
    assert (
        main(["demo", "--image", "coins", "--levels", "2", "--batch", "2", "--repeats", "1", "--save", str(png)]) == 0
    )
    out = capsys.readouterr().out
    assert "bit-exact" in out and png.stat().st_size > 0
    from PIL import Image

    assert Image.open(png).size == (2 * 192, 2 * 152)  # 303x384 -> subbands of 152x192


@pytest.mark.parametrize(
    "argv,message",
    [
        (["demo", "--image", "lena"], "unknown image 'lena'"),
        (["demo", "--levels", "0"], "--levels must be at least 1"),
        (["demo", "--image", "text", "--levels", "20", "--repeats", "1"], "would get"),
    ],
)
def test_user_mistakes_give_one_error_line(argv, message):
    out = subprocess.run(
        [sys.executable, "-m", "stegafast", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stegafast: error:") and message in lines[0]
    assert "Traceback" not in out.stderr
