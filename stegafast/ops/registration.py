"""Declaring a native operator once: its kernel folder, the dtypes its native
kernels take, its fake implementation, its autograd formula and its autocast
policy. The declaration does the torch.library registrations (when the loaded
native library has the op), answers the wrapper's backend choice, and is what
`stegafast info` lists.

A kernel folder ``csrc/blur/`` with the schemas ``blur(Tensor x) -> Tensor`` and
``blur_backward(Tensor grad, Tensor x) -> Tensor`` is declared like this::

    from ..dtypes import FLOAT_TYPES
    from .registration import declare

    BLUR = declare(
        "blur", kernel="blur", dtypes=FLOAT_TYPES, autocast="lower",
        fake=lambda x: torch.empty_like(x),
        setup_context=_save_x, backward=_blur_grad,   # _blur_grad calls BLUR_BACKWARD.native
    )
    BLUR_BACKWARD = declare(
        "blur_backward", kernel="blur", dtypes=FLOAT_TYPES, autocast="lower",
        fake=lambda grad, x: torch.empty_like(x),
        gradient_of="blur",   # its own gradient raises "double backward ... not supported"
    )

    def blur(x):
        check_tensor("blur", "x", x, BLUR.dtypes, ndim=4)   # validation first
        if BLUR.use_native(x):                              # backend choice, declared dtypes
            return BLUR.native(x)
        return reference.blur(x)

Autocast policies (what happens to the op inside ``torch.autocast``):

* ``"keep"``: nothing is registered, so autocast passes the op through: it runs
  on the dtype of its inputs and returns that dtype; half inputs are computed in
  float32 inside the kernel.
* ``"float32"``: floating inputs are cast to float32 first (for ops whose
  accuracy needs float32 storage as well as float32 arithmetic).
* ``"lower"``: as ``F.scaled_dot_product_attention``: floating inputs (float64
  excepted, as autocast does) are cast to the active autocast dtype of their
  device, ``torch.get_autocast_dtype(device_type)`` (float16 or bfloat16), and
  the op runs in it. Gradients flow back through the casts to the inputs' dtypes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .. import backend

__all__ = ["AUTOCAST_POLICIES", "DeclaredOp", "Registry", "declare", "declared"]

AUTOCAST_POLICIES = ("keep", "float32", "lower")
NAMESPACE = "stegafast"
# device types that get an autocast kernel under the "float32" and "lower" policies
AUTOCAST_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class DeclaredOp:
    """One operator ``torch.ops.stegafast.<name>`` as declared.

    ``kernel`` is its ``csrc/<kernel>/`` folder, ``dtypes`` the tensor dtypes its
    native kernels take, ``autocast`` one of :data:`AUTOCAST_POLICIES`;
    ``native`` is the op (``torch.ops.stegafast.<name>``), or None when the
    loaded library lacks it (or none is loaded).
    """

    name: str
    kernel: str
    dtypes: tuple[torch.dtype, ...]
    autocast: str
    native: Any = None

    def use_native(self, tensor: torch.Tensor) -> bool:
        """Resolve the backend for one call on ``tensor`` (the tensor whose device
        and dtype pick the kernel): True runs ``self.native``."""
        return backend.use_native(self.name, tensor, self.dtypes)


def _native_op(name: str):
    # an older build of the library may lack an op another build has
    namespace = getattr(torch.ops, NAMESPACE)
    return getattr(namespace, name) if hasattr(namespace, name) else None


def _double_backward_error(public_op: str) -> Callable:
    def no_double_backward(ctx, *grads):
        raise NotImplementedError(
            f"stegafast.ops.{public_op}: the gradient of its gradient (double backward) is not "
            "supported; use stegafast.use_backend('reference') for higher-order gradients"
        )

    return no_double_backward


def _cast_floating(value, device_type: str, dtype: torch.dtype):
    """value with its floating tensors on device_type (float64 excepted) cast to
    dtype, looking inside lists and tuples (a Tensor[] argument)."""
    if isinstance(value, torch.Tensor):
        eligible = value.is_floating_point() and value.dtype != torch.float64 and value.device.type == device_type
        return value.to(dtype) if eligible else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floating(v, device_type, dtype) for v in value)
    return value


class Registry:
    """The declared ops of one process (the module-level :func:`declare` and
    :func:`declared` use one shared instance; a test may make its own)."""

    def __init__(self) -> None:
        self._ops: dict[str, DeclaredOp] = {}
        # keeps the "lower" autocast kernels registered for the life of the registry
        self._library: torch.library.Library | None = None

    def declare(
        self,
        name: str,
        *,
        kernel: str,
        dtypes: Sequence[torch.dtype],
        fake: Callable,
        autocast: str = "keep",
        backward: Callable | None = None,
        setup_context: Callable | None = None,
        gradient_of: str | None = None,
    ) -> DeclaredOp:
        """Declare ``torch.ops.stegafast.<name>`` and, when the loaded library has
        it, register ``fake`` (torch.compile), the autograd formula and the
        autocast policy.

        ``backward(ctx, *grads)`` with ``setup_context(ctx, inputs, output)`` is
        the autograd formula; an op that is itself the backward of the public op
        ``gradient_of`` gets, instead, an autograd formula that raises a clear
        NotImplementedError for double backward (rather than autograd's
        fallback, which only warns). An op with neither is not differentiable
        (integer data). Returns the declaration.
        """
        if autocast not in AUTOCAST_POLICIES:
            raise ValueError(f"{name}: unknown autocast policy {autocast!r}; choose one of {AUTOCAST_POLICIES}")
        if backward is not None and gradient_of is not None:
            raise ValueError(f"{name}: give either backward or gradient_of, not both")
        if setup_context is not None and backward is None:
            raise ValueError(f"{name}: setup_context needs a backward")
        op = DeclaredOp(name, kernel, tuple(dtypes), autocast, _native_op(name))
        self._ops[name] = op
        # resolve the op's devices now, not on its first call: torch.compile
        # cannot trace the dispatcher query that answers it
        backend.native_devices(name)
        if op.native is not None:
            self._register(op, fake, backward, setup_context, gradient_of)
        return op

    def declared(self) -> list[DeclaredOp]:
        """Every declared op, in the order of declaration."""
        return list(self._ops.values())

    def _register(self, op: DeclaredOp, fake, backward, setup_context, gradient_of) -> None:
        qualname = f"{NAMESPACE}::{op.name}"
        torch.library.register_fake(qualname)(fake)
        if gradient_of is not None:
            backward = _double_backward_error(gradient_of)
        if backward is not None:
            torch.library.register_autograd(qualname, backward, setup_context=setup_context)
        if op.autocast == "float32":
            for device in AUTOCAST_DEVICES:
                torch.library.register_autocast(qualname, device, torch.float32)
        elif op.autocast == "lower":
            for device in AUTOCAST_DEVICES:
                self._register_lower(op, device)

    def _register_lower(self, op: DeclaredOp, device_type: str) -> None:
        """An autocast kernel that runs op in the autocast dtype active when it is
        called (register_autocast fixes one dtype when registering)."""
        key_name = "Autocast" + torch._C._dispatch_key_for_device(device_type)
        key = getattr(torch._C.DispatchKey, key_name)
        overload = op.native.default

        def run_lowered(*args):
            dtype = torch.get_autocast_dtype(device_type)
            with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(key)):
                return overload(*_cast_floating(args, device_type, dtype))

        # the Python dispatcher (torch.compile, fake tensors) reads py_kernels;
        # the C++ dispatcher reads the library's kernel
        overload.py_kernels.pop(key, None)
        overload.py_impl(key)(run_lowered)
        if self._library is None:
            self._library = torch.library.Library(NAMESPACE, "IMPL")
        self._library.impl(op.name, lambda keyset, *args: run_lowered(*args), key_name, with_keyset=True)


_REGISTRY = Registry()


def declare(name: str, **kwargs) -> DeclaredOp:
    """:meth:`Registry.declare` on the process's registry (what `stegafast info` lists)."""
    return _REGISTRY.declare(name, **kwargs)


def declared() -> list[DeclaredOp]:
    """Every op declared through :func:`declare`, in the order of declaration."""
    return _REGISTRY.declared()
