"""``--compile``: the models' training forwards through ``torch.compile``.

The engine keeps two views of each model: the plain module (``ctx.modules``), whose
weights are saved, loaded and handed back, and the module to call for forward passes
(``ctx.models``). Compiling wraps only the latter, so saved state dicts never carry the
``_orig_mod.`` prefix of a compiled wrapper, and a run may resume compiled from an
uncompiled checkpoint or the other way round. Under DDP the DDP wrapper itself is
compiled, so dynamo sees the bucket boundaries and splits the graph there.

Validation calls the plain modules: it runs in eval mode under no_grad, which would
compile a second graph per model for a few batches.

``compile_parts`` is the inference side (the families' ``--compile`` on embed, encode,
compress...): it compiles named parts of a loaded network in place, modules through
``Module.compile`` (their state dicts, and so a codec's model identifier, do not change)
and methods as compiled instance attributes. Whatever is not named (a codec's range coder
and the networks both its encoder and its decoder must compute bit for bit alike, BCH)
stays eager.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["COMPILE_MODES", "compile_models", "compile_options", "compile_parts"]

# torch.compile's modes; "default" passes none (torch's own default).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def compile_options(mode: str) -> dict:
    """``torch.compile``'s keyword arguments for ``mode`` (one of ``COMPILE_MODES``)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    return {} if mode == "default" else {"mode": mode}


def compile_models(models: dict[str, nn.Module], mode: str = "default") -> dict[str, nn.Module]:
    """``torch.compile`` wrappers of ``models`` (name -> the module to call for forwards), in
    ``mode`` (one of ``COMPILE_MODES``). Compilation itself happens at each model's first call;
    the wrapped modules are shared, not copied, so their weights stay the ones being trained."""
    options = compile_options(mode)
    return {name: torch.compile(model, **options) for name, model in models.items()}


def compile_parts(model: nn.Module, parts: Sequence[str] = (), mode: str = "default") -> nn.Module:
    """``model`` with each of its ``parts`` (attribute names: submodules or methods; none: the model
    itself) compiled in place, in ``mode``; returns ``model``. A module's ``__call__`` is compiled
    (``Module.compile``: names and state dict unchanged); a method is replaced on the instance by
    its compiled version. Each part compiles at its first call, again for a second input size
    (then with dynamic sizes), and the model must stay on its device and dtype afterwards."""
    options = compile_options(mode)
    if not parts:
        model.compile(**options)
    for name in parts:
        part = getattr(model, name)
        if isinstance(part, nn.Module):
            part.compile(**options)
        elif callable(part):
            setattr(model, name, torch.compile(part, **options))
        else:
            raise TypeError(f"compile_parts: {type(model).__name__}.{name} is neither a module nor a method")
    return model
