"""The one device resolver (stegafast.device) the commands and the engine share."""

import pytest
import torch

from stegafast.device import device_type_of, resolve_device
from stegafast.errors import DeviceError, UserError

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answers of a machine without a GPU")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_is_cpu_everywhere():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cpu", local_rank=3) == torch.device("cpu")
    assert device_type_of("cpu") == "cpu"


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "", "meta"])
def test_unknown_names_are_user_errors(spec):
    with pytest.raises(DeviceError, match=f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N"):
        resolve_device(spec)
    assert issubclass(DeviceError, UserError) and issubclass(DeviceError, ValueError)


@no_gpu
def test_without_a_gpu():
    assert resolve_device("auto") == torch.device("cpu")
    assert device_type_of("auto") == "cpu" and device_type_of("cuda:1") == "cuda"
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError, match="no CUDA GPU is visible"):
            resolve_device(spec)


@needs_gpu
def test_with_a_gpu():
    assert resolve_device("auto") == torch.device("cuda", torch.cuda.current_device())
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
    with pytest.raises(DeviceError, match="names one GPU"):
        resolve_device("cuda:0", local_rank=0)
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
