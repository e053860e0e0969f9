"""The battery every native kernel runs, as a base class its test file subclasses.

A kernel's ``test_ops_<kernel>.py`` declares ``class Test<Kernel>(KernelTester)``
with the kernel's shapes, dtypes, tolerances and inputs; pytest then runs, for
that kernel:

* ``test_native_matches_reference``: native against reference, every
  ``shapes`` x ``dtypes`` pair, each call of ``parity_calls`` (per-dtype
  ``tolerances``; a call's ``expected``, such as a round trip's input, checked too);
* ``test_layouts_match_reference``: ``layout_calls`` (non-contiguous,
  channels_last, expanded inputs) natively against the reference on contiguous copies;
* ``test_gradcheck_float64``: ``gradcheck_calls`` of each ``grad_shapes`` entry,
  native and reference (and gradgradcheck when ``double_backward``);
* ``test_opcheck``: ``torch.library.opcheck`` of each ``opcheck_samples`` entry;
* ``test_torch_compile_fullgraph``: ``compile_case`` under
  ``torch.compile(fullgraph=True)`` against the reference, forward and backward;
* ``test_autocast_policy``: ``autocast_calls`` inside ``torch.autocast("cpu")``
  behave as the declared ``autocast_policy`` says (and equal a call's ``expected``);
* ``test_ops_are_declared``: ``op_names`` are declared with ``kernel`` and the policy;
* ``test_rejects_bad_input``: each ``bad_inputs`` entry raises its error.

Kernel-specific tests (formulas, exactness, CUDA parity, the baseline CPU
build) stay module-level functions in the kernel's file. Example::

    class TestBlur(KernelTester):
        kernel, op_names = "blur", ("blur", "blur_backward")
        shapes = [(1, 1, 3, 3), (2, 3, 17, 9)]
        dtypes = (torch.float32, torch.float64)
        tolerances = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12)}
        grad_shapes = [(1, 1, 4, 5)]
        autocast_policy = "lower"
        bad_inputs = [BadInput(ops.blur, ([1.0],), TypeError, "must be a torch.Tensor")]

        def parity_calls(self, shape, dtype):
            yield Call(ops.blur, (torch.randn(shape, dtype=dtype),))
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from testutils import on_native, on_reference, requires_native
from torch.autograd import gradcheck, gradgradcheck

import stegafast
from stegafast import use_backend
from stegafast.dtypes import HALF_TYPES
from stegafast.ops import registration

__all__ = ["BadInput", "Call", "KernelTester", "shape_id"]


@dataclass
class Call:
    """One call of a public op: ``fn(*args, **kwargs)``. ``expected``, when given,
    is what the native output must equal as well (within the tolerance), such
    as the image a round trip started from."""

    fn: Callable
    args: tuple
    kwargs: dict = field(default_factory=dict)
    expected: Any = None


@dataclass
class BadInput:
    """``fn(*args, **kwargs)`` must raise ``error`` with a message matching ``match``."""

    fn: Callable
    args: tuple
    error: type
    match: str
    kwargs: dict = field(default_factory=dict)


def shape_id(shape) -> str:
    return "x".join(map(str, shape))


def as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _detached(args) -> tuple:
    return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)


def _contiguous(args) -> tuple:
    return tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args)


def _cast_floating(args, dtype) -> tuple:
    return tuple(
        a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() and a.dtype != torch.float64 else a
        for a in args
    )


def _grads_of(loss_fn, fn, args) -> tuple:
    """Gradients of loss_fn(fn(*args)) with respect to args' tensors that require grad."""
    leaves = tuple(a.detach().requires_grad_() if isinstance(a, torch.Tensor) and a.requires_grad else a for a in args)
    wrt = [a for a in leaves if isinstance(a, torch.Tensor) and a.requires_grad]
    return torch.autograd.grad(loss_fn(as_tuple(fn(*leaves))), wrt)


def _sum_of_floating(outputs) -> torch.Tensor:
    return sum(o.sum() for o in outputs if o.is_floating_point())


class KernelTester:
    """Base of a kernel's test class; see the module docstring. Class attributes
    and the ``*_calls`` methods describe the kernel; the ``test_*`` methods are
    the battery."""

    kernel: str = ""  # the csrc/<kernel>/ folder, as declared
    op_names: Sequence[str] = ()  # its torch.ops.stegafast ops
    autocast_policy: str = "keep"
    shapes: Sequence[tuple] = ()  # parity shapes: odd sizes, batch 1, large batch
    dtypes: Sequence[torch.dtype] = ()  # parity dtypes
    tolerances: dict = {}  # dtype -> assert_close keyword arguments
    grad_shapes: Sequence[tuple] = ()  # float64 gradcheck shapes
    gradcheck_options: dict = {}  # keyword arguments of gradcheck
    double_backward = False  # the native ops differentiate twice (gradgradcheck)
    autocast_input_dtypes: Sequence[torch.dtype] = (torch.float32, torch.bfloat16)
    autocast_dtype = torch.bfloat16  # the autocast region's dtype
    compile_backend = "inductor"
    compile_tolerance: dict | None = None  # None: the tolerance of the compiled inputs' dtype
    compile_grad_tolerance: dict = {}  # assert_close's defaults unless set
    bad_inputs: Sequence[BadInput] = ()

    # --- what a kernel supplies -------------------------------------------------------

    def parity_calls(self, shape, dtype) -> Iterable[Call]:
        """The calls of ``test_native_matches_reference`` for one shape and dtype."""
        return ()

    def layout_calls(self) -> Iterable[Call]:
        """Calls on non-contiguous (or otherwise laid out) inputs."""
        return ()

    def gradcheck_calls(self, shape) -> Iterable[Call]:
        """float64 calls whose tensors requiring grad gradcheck differentiates."""
        return ()

    def opcheck_samples(self) -> list:
        """(op, args) or (op, args, opcheck keyword arguments) entries."""
        return []

    def compile_case(self) -> tuple[Callable, tuple] | None:
        """(fn, args) for the torch.compile smoke test, or None."""
        return None

    def autocast_calls(self, dtype) -> Iterable[Call]:
        """Calls on inputs of ``dtype`` for ``test_autocast_policy``."""
        return ()

    def output_tolerance(self, index: int, outputs: tuple, dtype) -> dict:
        """assert_close keyword arguments for output ``index`` of a call on ``dtype``."""
        return self.tolerances[dtype]

    def check_native_output(self, call: Call, outputs: tuple) -> None:
        """Kernel-specific checks of a native call's outputs (layout, say)."""

    def compile_loss(self, outputs: tuple) -> torch.Tensor:
        """The scalar whose backward the compile test runs."""
        return _sum_of_floating(outputs)

    def compile_expected(self, fn, args) -> tuple:
        """What the compiled fn must return: by default the reference's outputs."""
        return as_tuple(on_reference(fn, *_detached(args)))

    def check_compiled(self, outputs: tuple, args: tuple) -> None:
        """Kernel-specific checks of the compiled outputs."""

    # --- parametrisation ----------------------------------------------------------------

    def pytest_generate_tests(self, metafunc):
        params = {
            "shape": (list(self.shapes), [shape_id(s) for s in self.shapes]),
            "dtype": (list(self.dtypes), [str(d).replace("torch.", "") for d in self.dtypes]),
            "grad_shape": (list(self.grad_shapes), [shape_id(s) for s in self.grad_shapes]),
            "backend": ([pytest.param("native", marks=requires_native), "reference"], None),
            # the samples name native ops: without the library there are none to count
            "opcheck_sample": (list(range(len(self.opcheck_samples()))) if stegafast.native_available() else [], None),
            "autocast_input_dtype": (list(self.autocast_input_dtypes), None),
            "bad_input": (list(self.bad_inputs), [b.match for b in self.bad_inputs]),
        }
        taken = {n for m in metafunc.definition.iter_markers("parametrize") for n in _argnames(m)}
        for name in metafunc.fixturenames:
            if name in params and name not in taken:
                values, ids = params[name]
                if not values:  # say why rather than pytest's "empty parameter set"
                    skip = pytest.mark.skip(reason=f"{self.kernel}: no {name} cases")
                    values, ids = [pytest.param(None, marks=skip)], None
                metafunc.parametrize(name, values, ids=ids)

    # --- comparisons -------------------------------------------------------------------

    def assert_outputs_close(self, got, want, dtype, tolerance: dict | None = None) -> None:
        got, want = as_tuple(got), as_tuple(want)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert g.shape == w.shape and g.dtype == w.dtype, (i, g.shape, w.shape, g.dtype, w.dtype)
            tol = self.output_tolerance(i, want, dtype) if tolerance is None else tolerance
            torch.testing.assert_close(g, w, **tol)

    def _native_against_reference(self, call: Call, dtype, reference_args=None) -> None:
        got = as_tuple(on_native(call.fn, *call.args, **call.kwargs))
        want = on_reference(call.fn, *(call.args if reference_args is None else reference_args), **call.kwargs)
        self.assert_outputs_close(got, want, dtype)
        if call.expected is not None:
            self.assert_outputs_close(got, call.expected, dtype)
        self.check_native_output(call, got)

    # --- the battery ----------------------------------------------------------------------

    @requires_native
    def test_native_matches_reference(self, shape, dtype):
        calls = list(self.parity_calls(shape, dtype))
        assert calls, "parity_calls gave no calls"
        for call in calls:
            self._native_against_reference(call, dtype)

    @requires_native
    def test_layouts_match_reference(self):
        calls = list(self.layout_calls())
        if not calls:
            pytest.skip(f"{self.kernel}: no layout cases")
        for call in calls:
            dtype = next(a.dtype for a in call.args if isinstance(a, torch.Tensor))
            self._native_against_reference(call, dtype, reference_args=_contiguous(call.args))

    def test_gradcheck_float64(self, backend, grad_shape):
        calls = list(self.gradcheck_calls(grad_shape))
        assert calls, "gradcheck_calls gave no calls"
        with use_backend(backend):
            for call in calls:
                fn = _bind(call)
                assert gradcheck(fn, call.args, **self.gradcheck_options)
                if self.double_backward:
                    assert gradgradcheck(fn, call.args, **self.gradcheck_options)

    @requires_native
    def test_opcheck(self, opcheck_sample):
        op, args, *options = self.opcheck_samples()[opcheck_sample]
        torch.library.opcheck(op, args, **(options[0] if options else {}))

    @requires_native
    def test_torch_compile_fullgraph(self):
        case = self.compile_case()
        if case is None:
            pytest.skip(f"{self.kernel}: no compile case")
        fn, args = case
        torch._dynamo.reset()
        outputs = as_tuple(torch.compile(fn, fullgraph=True, backend=self.compile_backend)(*args))
        dtype = next(a.dtype for a in args if isinstance(a, torch.Tensor))
        self.assert_outputs_close(outputs, self.compile_expected(fn, args), dtype, self.compile_tolerance)
        self.check_compiled(outputs, args)
        leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        if not leaves:
            return
        self.compile_loss(outputs).backward()
        expected = on_reference(_grads_of, self.compile_loss, fn, args)
        for leaf, want in zip(leaves, expected):
            torch.testing.assert_close(leaf.grad, want, **self.compile_grad_tolerance)

    @requires_native
    def test_autocast_policy(self, autocast_input_dtype):
        calls = list(self.autocast_calls(autocast_input_dtype))
        assert calls, "autocast_calls gave no calls"
        for call in calls:
            with torch.autocast("cpu", dtype=self.autocast_dtype):
                got = as_tuple(call.fn(*call.args, **call.kwargs))
            want = as_tuple(call.fn(*self._autocast_inputs(call.args), **call.kwargs))
            for g, w in zip(got, want, strict=True):
                assert g.dtype == w.dtype and torch.equal(g, w)
            if call.expected is not None:
                for g, w in zip(got, as_tuple(call.expected), strict=True):
                    assert g.dtype == w.dtype and torch.equal(g, w)

    def _autocast_inputs(self, args) -> tuple:
        """The inputs an op of the declared policy runs on inside autocast."""
        if self.autocast_policy == "keep":
            return args
        if self.autocast_policy == "float32":
            return _cast_floating(args, torch.float32)
        assert self.autocast_policy == "lower" and self.autocast_dtype in HALF_TYPES
        return _cast_floating(args, self.autocast_dtype)

    def test_ops_are_declared(self):
        declared = {op.name: op for op in registration.declared()}
        assert self.op_names
        for name in self.op_names:
            assert declared[name].kernel == self.kernel and declared[name].autocast == self.autocast_policy

    def test_rejects_bad_input(self, bad_input):
        with pytest.raises(bad_input.error, match=bad_input.match):
            bad_input.fn(*bad_input.args, **bad_input.kwargs)


def _argnames(mark) -> list[str]:
    names = mark.args[0]
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


def _bind(call: Call) -> Callable:
    def fn(*args):
        return call.fn(*args, **call.kwargs)

    return fn
