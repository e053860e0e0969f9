"""Swin layers: window partitioning, the relative-position index, and SwinBlock against a
plain-PyTorch Swin block written here (window by window, the bias and the shift mask
from coordinates) with the same weights, shifted and unshifted, odd sizes, both layouts."""

import math

import pytest
import torch
import torch.nn.functional as F
from testutils import requires_native

from stegafast import use_backend
from stegafast.nn import SwinBlock, WindowAttention, shifted_window_mask, window_partition, window_reverse


def _band(t, size, window, shift):
    """Which of Swin's three regions coordinate t of the rolled padded map lies in: the
    windows the roll left whole, the last window's unwrapped part, its wrapped part."""
    return 0 if t < size - window else (1 if t < size - shift else 2)


def _plain_bias(attn: WindowAttention) -> torch.Tensor:
    """(heads, N, N) from the table, the offsets computed token pair by token pair."""
    ws, n = attn.window_size, attn.window_size**2
    rows = torch.empty(n, n, dtype=torch.long)
    for i in range(n):
        for j in range(n):
            dy, dx = i // ws - j // ws, i % ws - j % ws
            rows[i, j] = (dy + ws - 1) * (2 * ws - 1) + (dx + ws - 1)
    return attn.relative_position_bias_table[rows].permute(2, 0, 1)


def _plain_window_attention(attn: WindowAttention, tokens, bias, mask):
    """tokens (B, N, C) of one window; mask (N, N) or None."""
    b, n, c = tokens.shape
    heads, d = attn.heads, c // attn.heads
    qkv = F.linear(tokens, attn.qkv.weight, attn.qkv.bias).view(b, n, 3, heads, d)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    s = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(d) + bias
    if mask is not None:
        s = s + mask
    out = torch.einsum("bhij,bhjd->bhid", torch.softmax(s, dim=-1), v)
    return F.linear(out.transpose(1, 2).reshape(b, n, c), attn.proj.weight, attn.proj.bias)


def _plain_swin_block(block: SwinBlock, x):
    """Swin's block for x (B, H, W, C), one window at a time."""
    b, h, w, c = x.shape
    ws, shift = block.window_size, block.shift
    y = F.layer_norm(x, (c,), block.norm1.weight, block.norm1.bias)
    hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
    y = F.pad(y, (0, 0, 0, wp - w, 0, hp - h))
    y = torch.roll(y, (-shift, -shift), (1, 2))
    bias = _plain_bias(block.attn)
    out = torch.empty_like(y)
    for wy in range(hp // ws):
        for wx in range(wp // ws):
            rows, cols = slice(wy * ws, (wy + 1) * ws), slice(wx * ws, (wx + 1) * ws)
            mask = None
            if shift:
                # tokens attend within their region only
                region = torch.tensor(
                    [
                        3 * _band(wy * ws + t // ws, hp, ws, shift) + _band(wx * ws + t % ws, wp, ws, shift)
                        for t in range(ws * ws)
                    ]
                )
                mask = torch.where(region[:, None] == region[None, :], 0.0, -100.0)
            tokens = y[:, rows, cols].reshape(b, ws * ws, c)
            out[:, rows, cols] = _plain_window_attention(block.attn, tokens, bias, mask).view(b, ws, ws, c)
    out = torch.roll(out, (shift, shift), (1, 2))[:, :h, :w]
    x = x + out
    z = F.layer_norm(x, (c,), block.norm2.weight, block.norm2.bias)
    mlp = block.mlp
    return x + F.linear(F.gelu(F.linear(z, mlp[0].weight, mlp[0].bias)), mlp[2].weight, mlp[2].bias)


def test_window_partition_and_reverse():
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float32).view(2, 8, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (12, 4, 4, 3)
    # window 4 is image 0's second row of windows, second column: rows 4..7, columns 4..7
    assert torch.equal(windows[4], x[0, 4:8, 4:8])
    assert torch.equal(windows[6], x[1, 0:4, 0:4])
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)
    with pytest.raises(ValueError, match="multiples of the window size 4"):
        window_partition(torch.zeros(1, 6, 8, 1), 4)


def test_relative_position_bias_is_swins():
    attn = WindowAttention(16, 7, 2)
    assert attn.relative_position_bias_table.shape == (169, 2)
    assert attn.relative_position_index.shape == (49, 49)
    torch.testing.assert_close(attn.relative_position_bias(), _plain_bias(attn), rtol=0, atol=0)


def test_shifted_window_mask():
    mask = shifted_window_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)  # the top-left window holds one region only
    assert torch.all((mask == 0) | (mask == -100))
    assert torch.equal(mask, mask.transpose(1, 2))
    assert torch.all(mask.diagonal(dim1=1, dim2=2) == 0)  # every token sees itself


CASES = [  # H, W, window, shift, heads
    (14, 14, 7, 0, 2),
    (14, 14, 7, 3, 2),
    (13, 10, 4, 2, 4),
    (9, 17, 4, 0, 1),
    (5, 3, 8, 4, 2),  # smaller than one window
]


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("h,w,ws,shift,heads", CASES, ids=lambda v: str(v))
def test_swin_block_matches_a_plain_swin_block(backend, h, w, ws, shift, heads):
    if backend == "native":
        pytest.importorskip("stegafast._C")
    block = SwinBlock(32, heads, window_size=ws, shift=shift, mlp_ratio=2.0)
    x = torch.randn(2, h, w, 32)
    with use_backend(backend):
        got = block(x)
    torch.testing.assert_close(got, _plain_swin_block(block, x), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("shift", [0, 2])
def test_one_image_one_window_high(shift):
    # batch 1 and a single row of windows: window_partition returns a non-contiguous view there,
    # which a .view of its result cannot take
    block = SwinBlock(16, 2, window_size=4, shift=shift, mlp_ratio=2.0)
    x = torch.randn(1, 4, 12, 16)
    torch.testing.assert_close(block(x), _plain_swin_block(block, x), atol=2e-5, rtol=1e-4)


@requires_native
def test_nchw_layout_and_gradients_match_the_reference():
    block = SwinBlock(16, 2, window_size=4, shift=2, channels_last=False)
    x = torch.randn(2, 16, 10, 7, requires_grad=True)
    grads = []
    for backend in ("native", "reference"):
        with use_backend(backend):
            y = block(x)
        assert y.shape == x.shape
        grads.append(torch.autograd.grad(y.square().sum(), [x, *block.parameters()]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    want = _plain_swin_block(block, x.detach().permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(block(x), want, atol=2e-5, rtol=1e-4)


def test_shift_mask_is_computed_once_per_size():
    block = SwinBlock(8, 1, window_size=4, shift=2)
    for size in ((8, 8), (8, 8), (5, 6)):
        block(torch.randn(1, *size, 8))
    # 8 x 8 and 5 x 6 (padded to 8 x 8) share one mask; 9 x 9 needs a 12 x 12 one
    assert len(block._masks) == 1
    block(torch.randn(1, 9, 9, 8))
    assert len(block._masks) == 2


def test_swin_block_compiles_fullgraph():
    block = SwinBlock(16, 2, window_size=4, shift=2)
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 9, 11, 16)
    torch.testing.assert_close(compiled(x), block(x))


def test_swin_block_under_autocast():
    block = SwinBlock(32, 2, window_size=7, shift=3)
    x = torch.randn(1, 14, 14, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    torch.testing.assert_close(y.float(), block(x), atol=0.1, rtol=0.05)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(dim=32, heads=3), "multiple of heads"),
        (dict(dim=32, heads=2, shift=7), "shift must be 0..6"),
        (dict(dim=32, heads=2, window_size=17), "window_size must be 1..16"),
        (dict(dim=512, heads=2), "at most 128"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SwinBlock(**kwargs)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(B, H, W, C\) with C = 16, got 8 channels"):
        SwinBlock(16, 2)(torch.zeros(1, 7, 7, 8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\) with C = 16"):
        SwinBlock(16, 2, channels_last=False)(torch.zeros(1, 7, 7, 16))
    with pytest.raises(ValueError, match="x must be 4-D"):
        SwinBlock(16, 2)(torch.zeros(7, 7, 16))
    with pytest.raises(ValueError, match=r"x must be \(B \* nW, 16, 8\)"):
        WindowAttention(8, 4, 2)(torch.zeros(3, 15, 8))
