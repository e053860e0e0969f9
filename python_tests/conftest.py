import pytest
import torch

import stegafast

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords and not CUDA:
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


requires_native = pytest.mark.skipif(
    not stegafast.native_available(), reason="stegafast._C is not loaded"
)
