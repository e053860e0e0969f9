"""The user-facing error types (stegafast.errors): one base the command reports,
each layer's own subclass, importable where it was before."""

import pytest

from stegafast import errors
from stegafast.cli import main
from stegafast.cli.common import UserError as CommonUserError
from stegafast.data import DataError
from stegafast.models.codec import CodecFileError
from stegafast.train import CheckpointError, RunDirError


def test_every_layer_error_is_a_user_error():
    for error in (
        DataError,
        CheckpointError,
        RunDirError,
        errors.DeviceError,
        CodecFileError,
        errors.CorruptStreamError,
    ):
        assert issubclass(error, errors.UserError)
    for error in (CheckpointError, RunDirError, errors.DeviceError, CodecFileError, errors.CorruptStreamError):
        assert issubclass(error, ValueError)  # what they were before the shared base
    assert CommonUserError is errors.UserError


def test_the_command_reports_a_layer_error_as_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    status = main(["stego", "train", "--data", str(missing), "--out", str(tmp_path / "run"), "--steps", "1"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("stegafast: error: ") and str(missing) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("error", [DataError, CheckpointError, RunDirError])
def test_a_layer_error_keeps_its_message(error):
    with pytest.raises(errors.UserError, match="^the problem$"):
        raise error("the problem")
