"""stegafast.nn invertible layers: exact inverses, log-determinants against the
full Jacobian, ActNorm's data-dependent initialisation, gradients and bad input."""

import io
import math
from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck
from torch.autograd.functional import jacobian

from stegafast import native_available, use_backend
from stegafast.nn import (
    SUBNETS,
    ActNorm,
    AffineCouplingBlock,
    DenseSubnet,
    GlowSubnet,
    InvertibleConv1x1,
    InvertibleSequential,
    StarINNBlock,
    register_subnet,
)

F64 = torch.float64


def _perturb(module: nn.Module, scale: float = 0.1) -> nn.Module:
    """Move every parameter off its initial value: zero-initialised subnets make a
    fresh coupling the identity, which would make the inverse tests trivial."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def _ready(layer: nn.Module, x: torch.Tensor, scale: float = 0.1) -> nn.Module:
    """In x's dtype, ActNorm initialised on x (the first forward), then perturbed."""
    layer = layer.to(x.dtype)
    layer(x)
    return _perturb(layer, scale)


LAYERS = {
    "actnorm": lambda c: ActNorm(c),
    "conv1x1-lu": lambda c: InvertibleConv1x1(c),
    "conv1x1-full": lambda c: InvertibleConv1x1(c, lu=False),
    "coupling-glow-tanh": lambda c: AffineCouplingBlock(c, subnet="glow", hidden=16),
    "coupling-dense-atan": lambda c: AffineCouplingBlock(c, subnet="dense", clamp=1.5, clamp_fn="atan"),
    "starinn": lambda c: StarINNBlock(c, hidden=16),
    "starinn-identity": lambda c: StarINNBlock(c, hidden=16, init="identity"),
    "stack-of-3": lambda c: InvertibleSequential(*(StarINNBlock(c, hidden=16) for _ in range(3))),
}
SHAPES = [(2, 4, 5, 7), (1, 4, 3, 3), (1, 6, 1, 6), (3, 8, 9, 2)]


def _input(shape, dtype=F64):
    # an offset and spread so that ActNorm's initialisation does something
    return 2.0 * torch.randn(shape, dtype=dtype) + 0.5


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(LAYERS))
def test_inverse_of_forward_is_exact_in_float64(name, shape):
    x = _input(shape)
    layer = _ready(LAYERS[name](shape[1]), x)
    y, logdet = layer(x)
    assert y.shape == x.shape and y.dtype == F64
    assert logdet.shape == (shape[0],) and logdet.dtype == F64
    assert (y - x).abs().max() > 1e-3, "the perturbed layer should not be the identity"
    x_back, logdet_inv = layer.inverse(y)
    assert (x_back - x).abs().max() < 1e-10
    assert (logdet + logdet_inv).abs().max() < 1e-10
    # and the other way round: forward(inverse(y)) == y
    y_back, _ = layer(layer.inverse(y)[0])
    assert (y_back - y).abs().max() < 1e-10


def _per_sample_logabsdet(fn, x):
    """log|det| of each sample's block of the full Jacobian of fn at x, after
    checking that samples do not influence one another."""
    b, n = x.shape[0], x[0].numel()
    jac = jacobian(fn, x).reshape(b, n, b, n)
    out = []
    for i in range(b):
        for j in range(b):
            if i != j:
                assert jac[i, :, j].abs().max() == 0
        sign, logabsdet = torch.linalg.slogdet(jac[i, :, i])
        assert sign != 0
        out.append(logabsdet)
    return torch.stack(out)


@pytest.mark.parametrize("name", list(LAYERS))
def test_logdet_is_log_abs_det_of_the_jacobian(name):
    x = _input((2, 4, 3, 3))
    layer = _ready(LAYERS[name](4), x)
    y, logdet = layer(x)
    torch.testing.assert_close(logdet, _per_sample_logabsdet(lambda v: layer(v)[0], x), rtol=0, atol=1e-9)
    _, logdet_inv = layer.inverse(y)
    torch.testing.assert_close(logdet_inv, _per_sample_logabsdet(lambda v: layer.inverse(v)[0], y), rtol=0, atol=1e-9)


# --- ActNorm ---------------------------------------------------------------


def test_actnorm_initialises_to_zero_mean_unit_variance():
    scale = torch.tensor([0.5, 3.0, 10.0]).view(1, 3, 1, 1)
    shift = torch.tensor([-4.0, 0.0, 7.0]).view(1, 3, 1, 1)
    x = torch.randn(4, 3, 11, 13) * scale + shift
    layer = ActNorm(3)
    assert not layer.initialized
    y, logdet = layer(x)
    assert layer.initialized
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(y.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), rtol=0, atol=1e-4)
    # log|det| = H * W * sum(log scale) with scale = 1 / std
    expected = -11 * 13 * torch.log(x.std(dim=(0, 2, 3), unbiased=False)).sum()
    torch.testing.assert_close(logdet, expected.expand(4), rtol=1e-5, atol=1e-3)


def test_actnorm_initialises_once_and_not_after_loading():
    layer = ActNorm(3)
    layer(_input((2, 3, 5, 5), torch.float32))
    first = {k: v.clone() for k, v in layer.state_dict().items()}
    layer(10 * _input((2, 3, 5, 5), torch.float32))  # a second batch does not re-initialise
    for key, value in layer.state_dict().items():
        assert torch.equal(value, first[key]), key

    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    loaded = ActNorm(3)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    assert loaded.initialized
    x = 5 * _input((1, 3, 4, 6), torch.float32)
    torch.testing.assert_close(loaded(x)[0], layer(x)[0], rtol=0, atol=0)
    assert torch.equal(loaded.log_scale, first["log_scale"]) and torch.equal(loaded.bias, first["bias"])


def test_actnorm_loading_an_uninitialised_state_initialises_again():
    """Once initialised the layer stops reading its buffer (compiled graphs need no sync), but loading a state dict
    whose ``initialized`` is False makes the next forward initialise again."""
    layer = ActNorm(3)
    layer(_input((2, 3, 5, 5), torch.float32))
    layer.load_state_dict(ActNorm(3).state_dict())
    assert not layer.initialized and torch.equal(layer.bias, torch.zeros(1, 3, 1, 1))
    y, _ = layer(10 * _input((2, 3, 5, 5), torch.float32))
    assert layer.initialized
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), rtol=0, atol=1e-5)


def test_actnorm_inverse_does_not_initialise_and_constant_channels_stay_finite():
    layer = ActNorm(2)
    y = _input((1, 2, 3, 3), torch.float32)
    x, logdet = layer.inverse(y)
    assert not layer.initialized and torch.equal(x, y) and torch.equal(logdet, torch.zeros(1))
    constant = torch.full((1, 2, 4, 4), 3.0)
    out, logdet = layer(constant)
    assert torch.isfinite(out).all() and torch.isfinite(logdet).all()


def test_actnorm_without_data_init_starts_and_stays_the_identity():
    layer = ActNorm(3, data_init=False)
    assert bool(layer.initialized)
    x = _input((2, 3, 4, 4), torch.float32)
    y, logdet = layer(x)  # no batch statistics are taken
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))
    assert torch.equal(layer.bias, torch.zeros(1, 3, 1, 1)) and torch.equal(layer.log_scale, torch.zeros(1, 3, 1, 1))


# --- InvertibleConv1x1 -----------------------------------------------------


@pytest.mark.parametrize("lu", [True, False])
def test_conv1x1_starts_orthogonal_and_follows_the_global_seed(lu):
    torch.manual_seed(3)
    layer = InvertibleConv1x1(6, lu=lu)
    w = layer.weight_matrix(F64)
    torch.testing.assert_close(w @ w.T, torch.eye(6, dtype=F64), rtol=0, atol=1e-6)
    assert layer(torch.randn(2, 6, 3, 3))[1].abs().max() < 1e-4  # |det W| = 1
    torch.manual_seed(3)
    again = InvertibleConv1x1(6, lu=lu)
    torch.testing.assert_close(again.weight_matrix(), layer.weight_matrix(), rtol=0, atol=0)
    torch.manual_seed(4)
    assert not torch.equal(InvertibleConv1x1(6, lu=lu).weight_matrix(), layer.weight_matrix())


@pytest.mark.parametrize("lu", [True, False])
def test_conv1x1_identity_init_passes_channels_through(lu):
    state = torch.random.get_rng_state()
    layer = InvertibleConv1x1(6, lu=lu, init="identity")
    assert torch.equal(torch.random.get_rng_state(), state)  # draws nothing from the global RNG
    assert torch.equal(layer.weight_matrix(F64), torch.eye(6, dtype=F64))
    x = torch.randn(2, 6, 3, 3)
    y, logdet = layer(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))
    assert "init='identity'" in repr(layer)


def test_conv1x1_lu_factors_and_inverse_weight():
    layer = _perturb(InvertibleConv1x1(5)).double()
    w, w_inv = layer.weight_matrix(F64), layer.inverse_weight_matrix(F64)
    torch.testing.assert_close(w_inv @ w, torch.eye(5, dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.log_s.sum(), torch.linalg.slogdet(w)[1], rtol=0, atol=1e-12)
    # the fixed parts stay fixed: the permutation and the signs are buffers
    assert {name for name, _ in layer.named_parameters()} == {"lower", "upper", "log_s"}
    # the conv is the matrix applied at every pixel
    x = torch.randn(2, 5, 3, 4, dtype=F64)
    torch.testing.assert_close(layer(x)[0], torch.einsum("ij,bjhw->bihw", w, x), rtol=0, atol=1e-12)


def test_float32_round_trip_uses_a_float32_inverse():
    x = _input((2, 8, 7, 5), torch.float32)
    block = _ready(StarINNBlock(8, hidden=16), x)
    y, logdet = block(x)
    x_back, logdet_inv = block.inverse(y)
    assert x_back.dtype == torch.float32
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-4)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros(2), rtol=0, atol=1e-3)


# --- AffineCouplingBlock ----------------------------------------------------


@pytest.mark.parametrize("subnet", ["glow", "dense"])
def test_fresh_coupling_is_the_identity(subnet):
    x = _input((2, 6, 5, 4), torch.float32)
    y, logdet = AffineCouplingBlock(6, subnet=subnet, hidden=8)(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))


@pytest.mark.parametrize("clamp_fn,squash", [("tanh", torch.tanh), ("atan", lambda v: 0.636 * torch.atan(v))])
def test_coupling_transforms_the_second_half_from_the_first(clamp_fn, squash):
    x = _input((2, 6, 4, 5))
    block = _perturb(AffineCouplingBlock(6, hidden=8, clamp=1.5, clamp_fn=clamp_fn).double(), 0.3)
    y, logdet = block(x)
    s_raw, t = block.subnet(x[:, :3]).chunk(2, 1)
    s = 1.5 * squash(s_raw / 1.5)
    assert torch.equal(y[:, :3], x[:, :3])
    torch.testing.assert_close(y[:, 3:], x[:, 3:] * s.exp() + t, rtol=0, atol=1e-12)
    torch.testing.assert_close(logdet, s.sum(dim=(1, 2, 3)), rtol=0, atol=1e-12)
    assert s.abs().max() < 1.5 * (1.0 if clamp_fn == "tanh" else 0.636 * math.pi / 2)


def test_custom_subnets_by_callable_and_by_registry():
    x = _input((1, 4, 5, 5))
    block = _ready(AffineCouplingBlock(4, subnet=lambda i, o: nn.Conv2d(i, o, 3, padding=1)), x)
    assert isinstance(block.subnet, nn.Conv2d) and block.subnet.out_channels == 4
    assert (block.inverse(block(x)[0])[0] - x).abs().max() < 1e-10

    def pointwise(i, o, hidden):
        return nn.Sequential(nn.Conv2d(i, hidden, 1), nn.Tanh(), nn.Conv2d(hidden, o, 1))

    register_subnet("test-1x1", pointwise)
    try:
        block = AffineCouplingBlock(4, subnet="test-1x1", hidden=7)
        assert block.subnet[0].out_channels == 7
    finally:
        del SUBNETS["test-1x1"]
    assert isinstance(AffineCouplingBlock(4, subnet="dense").subnet, DenseSubnet)
    assert isinstance(AffineCouplingBlock(4, subnet="glow").subnet, GlowSubnet)


def test_subnet_shapes_and_zero_initialised_last_layer():
    dense = DenseSubnet(3, 6)
    assert [c.in_channels for c in dense.convs] == [3, 35, 67, 99] and dense.out.in_channels == 131
    assert isinstance(dense.act, nn.LeakyReLU) and dense.act.negative_slope == 0.2
    glow = GlowSubnet(3, 6, hidden=10)
    kinds = [(type(m).__name__, getattr(m, "kernel_size", None)) for m in glow]
    assert kinds == [("Conv2d", (3, 3)), ("ReLU", None), ("Conv2d", (1, 1)), ("ReLU", None), ("Conv2d", (3, 3))]
    for last in (dense.out, glow[-1]):
        assert not last.weight.any() and not last.bias.any()
    x = torch.randn(2, 3, 7, 9)
    assert dense(x).shape == glow(x).shape == (2, 6, 7, 9)


# --- StarINNBlock and InvertibleSequential ----------------------------------


def test_starinn_block_composes_actnorm_conv_coupling():
    x = _input((2, 4, 5, 5))
    block = _ready(StarINNBlock(4, hidden=8), x)
    assert [name for name, _ in block.named_children()] == ["actnorm", "conv", "coupling"]
    h, total = x, torch.zeros(2, dtype=F64)
    for layer in (block.actnorm, block.conv, block.coupling):
        h, logdet = layer(h)
        total = total + logdet
    y, logdet = block(x)
    assert torch.equal(y, h)
    torch.testing.assert_close(logdet, total, rtol=0, atol=1e-12)
    # the inverse runs the layers backwards
    back = y
    for layer in (block.coupling, block.conv, block.actnorm):
        back = layer.inverse(back)[0]
    assert torch.equal(block.inverse(y)[0], back)


@pytest.mark.parametrize("subnet", ["glow", "dense"])
def test_identity_starinn_block_is_the_identity_map(subnet):
    block = StarINNBlock(4, hidden=8, subnet=subnet, init="identity")
    x = _input((2, 4, 5, 5), torch.float32)
    y, logdet = block(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))
    assert torch.equal(block.inverse(x)[0], x)
    # the default is Glow's start: the first batch re-scales ActNorm, the 1x1 conv rotates
    glow = StarINNBlock(4, hidden=8)
    assert (glow(x)[0] - x).abs().max() > 0.1


def test_sequential_containers_index_and_name_their_layers():
    stack = InvertibleSequential(ActNorm(2), InvertibleConv1x1(2))
    assert len(stack) == 2 and isinstance(stack[1], InvertibleConv1x1) and isinstance(list(stack)[0], ActNorm)
    named = InvertibleSequential(OrderedDict(norm=ActNorm(2)))
    assert isinstance(named.norm, ActNorm)


def test_state_dict_round_trip_reproduces_a_stack():
    x = _input((1, 4, 6, 6), torch.float32)
    stack = _ready(InvertibleSequential(StarINNBlock(4, hidden=8), StarINNBlock(4, hidden=8, subnet="dense")), x)
    buffer = io.BytesIO()
    torch.save(stack.state_dict(), buffer)
    buffer.seek(0)
    loaded = InvertibleSequential(StarINNBlock(4, hidden=8), StarINNBlock(4, hidden=8, subnet="dense"))
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    other = 3 * _input((1, 4, 6, 6), torch.float32)  # would move the ActNorms if they re-initialised
    assert torch.equal(loaded(other)[0], stack(other)[0])
    assert torch.equal(loaded.inverse(other)[0], stack.inverse(other)[0])


def test_seed_configuration_round_trips_in_float32():
    # the steganography seed: 8 blocks on 24 channels (2 images x 3 colours x 4 wavelet bands), hidden 128
    x = _input((1, 24, 16, 16), torch.float32)
    # a gentler perturbation: at 0.1 the 128-wide subnets saturate every clamp and
    # 8 blocks grow the activations ~1e7-fold, beyond what float32 can invert
    stack = _ready(InvertibleSequential(*(StarINNBlock(24) for _ in range(8))), x, scale=0.02)
    stack.eval()
    with torch.no_grad():
        y, logdet = stack(x)
        x_back, logdet_inv = stack.inverse(y)
    assert (x_back - x).abs().max() < 1e-3
    assert abs(float(logdet + logdet_inv)) < 1e-2 * max(1.0, abs(float(logdet)))


# --- gradients -------------------------------------------------------------


def test_gradients_reach_every_parameter_in_both_directions():
    x = _input((2, 4, 5, 3), torch.float32)
    stack = _ready(InvertibleSequential(StarINNBlock(4, hidden=8), StarINNBlock(4, hidden=8, subnet="dense")), x)
    y, logdet = stack(x)
    x_back, logdet_inv = stack.inverse(y.detach() + 0.1)
    (y.square().mean() - logdet.mean() + x_back.square().mean() + logdet_inv.mean()).backward()
    for name, p in stack.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name


def test_gradcheck_of_a_block_in_both_directions():
    x = _input((1, 4, 3, 2))
    block = _ready(StarINNBlock(4, hidden=4), x)
    inputs = x.clone().requires_grad_()
    assert gradcheck(lambda v: block(v), (inputs,))
    assert gradcheck(lambda v: block.inverse(v), (inputs,))


# --- bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: AffineCouplingBlock(3), ValueError, "channels must be even"),
        (lambda: StarINNBlock(5), ValueError, "StarINNBlock: channels must be even"),
        (lambda: ActNorm(0), ValueError, "positive int"),
        (lambda: InvertibleConv1x1(2.0), ValueError, "positive int"),
        (lambda: InvertibleConv1x1(4, lu="yes"), TypeError, "lu must be True or False"),
        (lambda: InvertibleConv1x1(4, init="eye"), ValueError, "init must be one of random, identity"),
        (lambda: ActNorm(4, data_init=1), TypeError, "data_init must be True or False"),
        (lambda: StarINNBlock(4, init="random"), ValueError, "StarINNBlock: init must be one of glow, identity"),
        (lambda: AffineCouplingBlock(4, subnet="resnet"), ValueError, "unknown subnet 'resnet'.*dense, glow"),
        (lambda: AffineCouplingBlock(4, subnet=3), TypeError, "registered name or a callable"),
        (lambda: AffineCouplingBlock(4, subnet=lambda i, o: "conv"), TypeError, "not an nn.Module"),
        (lambda: AffineCouplingBlock(4, clamp=0.0), ValueError, "clamp must be a positive finite"),
        (lambda: AffineCouplingBlock(4, clamp=math.inf), ValueError, "clamp must be a positive finite"),
        (lambda: AffineCouplingBlock(4, clamp_fn="sigmoid"), ValueError, "clamp_fn must be one of tanh, atan"),
        (lambda: AffineCouplingBlock(4, hidden=0), ValueError, "hidden must be a positive int"),
        (lambda: InvertibleSequential(), ValueError, "at least one layer"),
        (lambda: InvertibleSequential(ActNorm(2), nn.ReLU()), TypeError, "layer '1' \\(ReLU\\) is not an invertible"),
    ],
)
def test_bad_construction_is_reported(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("name", list(LAYERS))
def test_bad_inputs_are_reported_in_both_directions(name):
    layer = LAYERS[name](4)
    for direction in (layer, layer.inverse):
        with pytest.raises(ValueError, match=r"must be a \(B, C, H, W\) feature map, got shape \(4, 3, 3\)"):
            direction(torch.zeros(4, 3, 3))
        with pytest.raises(ValueError, match="has 6 channels, but the layer was built for 4"):
            direction(torch.zeros(1, 6, 3, 3))
        with pytest.raises(TypeError, match="floating tensor, got torch.int64"):
            direction(torch.zeros(1, 4, 3, 3, dtype=torch.long))
        with pytest.raises(TypeError, match="must be a torch.Tensor, got list"):
            direction([[0.0]])
        with pytest.raises(ValueError, match="is empty"):
            direction(torch.zeros(0, 4, 3, 3))


def test_a_subnet_with_the_wrong_output_shape_is_reported():
    block = AffineCouplingBlock(4, subnet=lambda i, o: nn.Conv2d(i, o, 3))  # no padding: shrinks the map
    with pytest.raises(ValueError, match="subnet must map"):
        block(torch.zeros(1, 4, 5, 5))


# --- precision and backends ------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_blocks_keep_float32_logdets(dtype):
    x = _input((2, 4, 6, 5), torch.float32)
    block = _ready(StarINNBlock(4, hidden=8), x)
    reference_logdet = block(x)[1]
    half = block.to(dtype)
    y, logdet = half(x.to(dtype))
    assert y.dtype == dtype and logdet.dtype == torch.float32
    torch.testing.assert_close(logdet, reference_logdet, rtol=0.02, atol=0.1)
    x_back, logdet_inv = half.inverse(y)
    torch.testing.assert_close(x_back.float(), x, rtol=0.02, atol=0.1)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros(2), rtol=0, atol=1e-3)


def test_bfloat16_autocast_runs_both_directions():
    x = _input((1, 4, 6, 6), torch.float32)
    block = _ready(StarINNBlock(4, hidden=8), x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, logdet = block(x)
        x_back, _ = block.inverse(y)
    assert logdet.dtype == torch.float32
    torch.testing.assert_close(x_back.float(), x, rtol=0.02, atol=0.1)
    # a coupling fed float32 keeps its affine step in float32 though its subnet runs in bfloat16
    coupling = block.coupling
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = coupling(x)
        x_back, _ = coupling.inverse(y)
    assert y.dtype == x_back.dtype == torch.float32
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-5)


def test_every_coupling_backend_gives_the_same_block():
    x = _input((2, 4, 5, 6))
    block = _ready(StarINNBlock(4, hidden=8), x)
    with use_backend("reference"):
        expected = block(x)
        expected_inv = block.inverse(expected[0])
    for name in ("auto", "native") if native_available() else ("auto",):
        with use_backend(name):
            for got, want in zip((*block(x), *block.inverse(expected[0])), (*expected, *expected_inv)):
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# --- ActNorm under torch.distributed -------------------------------------------------------


def _actnorm_rank(rank, world, port, batch, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        layer = ActNorm(batch.shape[1])
        layer(batch.chunk(world)[rank])  # each process sees its own half of the global batch
        torch.save(layer.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_actnorm_initialises_from_the_global_batch_under_distributed(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    batch = torch.randn(4, 3, 5, 6, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.5]).view(1, 3, 1, 1) + 2
    mp.spawn(_actnorm_rank, args=(2, port, batch, str(tmp_path)), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = ActNorm(3)
    single(batch.float())
    for state in states:
        torch.testing.assert_close(state["bias"], single.bias.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(state["log_scale"], single.log_scale.detach(), rtol=1e-5, atol=1e-6)
