"""The dtype sets stegafast's kernels and metrics are written for, named once.

* :data:`HALF_TYPES`: float16 and bfloat16, the storage types that compute in
  float32 (inside the native kernels, in the references and in the metrics).
* :data:`FLOAT_TYPES`: every floating dtype a kernel accepts: float32, float64
  and the half types.

A leaf module: any layer may import it.
"""

from __future__ import annotations

import torch

__all__ = ["FLOAT_TYPES", "HALF_TYPES", "compute_dtype"]

HALF_TYPES = (torch.float16, torch.bfloat16)
FLOAT_TYPES = (torch.float32, torch.float64, *HALF_TYPES)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic on ``dtype`` data runs in: float32 for the half
    types (which keep their storage type), ``dtype`` itself otherwise."""
    return torch.float32 if dtype in HALF_TYPES else dtype
