"""``--compile``: the models' training forwards through ``torch.compile``.

The engine keeps two views of each model: the plain module (``ctx.modules``), whose
weights are saved, loaded and handed back, and the module to call for forward passes
(``ctx.models``). Compiling wraps only the latter, so saved state dicts never carry the
``_orig_mod.`` prefix of a compiled wrapper, and a run may resume compiled from an
uncompiled checkpoint or the other way round. Under DDP the DDP wrapper itself is
compiled, so dynamo sees the bucket boundaries and splits the graph there.

Validation calls the plain modules: it runs in eval mode under no_grad, which would
compile a second graph per model for a few batches.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["COMPILE_MODES", "compile_models"]

# torch.compile's modes; "default" passes none (torch's own default).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def compile_models(models: dict[str, nn.Module], mode: str = "default") -> dict[str, nn.Module]:
    """``torch.compile`` wrappers of ``models`` (name -> the module to call for forwards), in
    ``mode`` (one of ``COMPILE_MODES``). Compilation itself happens at each model's first call;
    the wrapped modules are shared, not copied, so their weights stay the ones being trained."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    options = {} if mode == "default" else {"mode": mode}
    return {name: torch.compile(model, **options) for name, model in models.items()}
