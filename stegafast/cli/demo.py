"""`stegafast demo`: a lossless multi-level 5/3 lifting wavelet round trip on a
real photograph bundled with scikit-image, timed with the native kernels and
with the reference."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from .. import _native, use_backend
from ..data import BUNDLED_PHOTOS, load_bundled_photo, write_pil_image
from ..errors import UserError
from ..nn import ILWT2d
from .common import check_at_least, check_output_file


def add_parser(sub) -> None:
    """Add ``stegafast demo`` (a lossless wavelet round trip on a bundled photograph) to ``sub``."""
    p = sub.add_parser("demo", help="lossless multi-level wavelet round trip on a bundled photograph")
    p.add_argument("--image", default="chelsea", help=f"one of: {', '.join(BUNDLED_PHOTOS)} (default: chelsea)")
    p.add_argument("--levels", type=int, default=3, help="decomposition levels (default: 3)")
    p.add_argument("--batch", type=int, default=8, help="copies of the photo in the batch (default: 8)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per backend (default: 7)")
    p.add_argument("--save", metavar="PNG", help="write the subband mosaic of the first level as a PNG")
    p.set_defaults(run=run)


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _check_args(args) -> None:
    if args.image not in BUNDLED_PHOTOS:
        raise UserError(f"unknown image {args.image!r}; choose one of {', '.join(BUNDLED_PHOTOS)}")
    for flag in ("levels", "batch", "repeats"):
        check_at_least(f"--{flag}", getattr(args, flag), 1)
    if args.save is not None:
        check_output_file("--save", args.save, ".png")


def _mosaic(image: torch.Tensor) -> np.ndarray:
    """One level's four subbands of a (C, H, W) image side by side, 8-bit: LL
    scaled to its range, the high bands as magnitudes with a gain that shows edges."""
    level = ILWT2d(levels=1)(image.unsqueeze(0))
    channels = image.shape[0]
    bands = torch.cat([level.low, level.highs[0]], 1)[0].float().unflatten(0, (4, channels))
    ll = bands[0] / bands[0].abs().amax().clamp_min(1) * 255
    highs = (bands[1:].abs() * 4).clamp(0, 255)
    top = torch.cat([ll, highs[0]], -1)
    bottom = torch.cat([highs[1], highs[2]], -1)
    return torch.cat([top, bottom], -2).permute(1, 2, 0).squeeze(-1).round().byte().numpy()


def run(args) -> int:
    """``stegafast demo``: decompose a batch of one bundled photo with ``ILWT2d``, check the round trip is bit-exact,
    time it.

    Prints the subband sizes, the exactness and the median time per backend; with ``--save`` writes the first level's
    subband mosaic as a PNG. Returns 0; raises ``UserError`` for bad options or a photo too small for ``--levels``.
    """
    _check_args(args)
    photo = load_bundled_photo(args.image)
    c, h, w = photo.shape
    batch = photo.to(torch.int32).unsqueeze(0).repeat(args.batch, 1, 1, 1)
    wavelet = ILWT2d(levels=args.levels)
    try:
        pyramid = wavelet(batch)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    exact = torch.equal(wavelet.inverse(pyramid), batch)

    print(f"image: skimage.data {args.image}, {c} channel(s), {h}x{w}; batch of {args.batch}")
    for level, (size, high) in enumerate(zip(pyramid.sizes, pyramid.highs), 1):
        small = (high.abs() <= 2).float().mean().item()
        print(
            f"  level {level}: {size[0]}x{size[1]} -> 4 subbands of {high.shape[2]}x{high.shape[3]}; "
            f"{small:.0%} of high-pass coefficients within +-2"
        )
    print(f"lossless round trip (int32, {args.levels} levels): {'bit-exact' if exact else 'MISMATCH'}")

    round_trip = lambda: wavelet.inverse(wavelet(batch))  # noqa: E731
    backends = ["native", "reference"] if _native.has_kernel("ilwt53_forward", "cpu") else ["reference"]
    timings = {}
    for name in backends:
        with use_backend(name):
            timings[name] = _median_ms(round_trip, args.repeats)
        print(
            f"  forward+inverse, {name:9s}: {timings[name]:8.2f} ms (median of {args.repeats}, "
            f"{torch.get_num_threads()} threads)"
        )
    if len(timings) == 2:
        print(f"  native speed-up over the reference: {timings['reference'] / timings['native']:.1f}x")
    else:
        print(f"  native kernels unavailable: {_native.status().reason or 'no CPU kernel'}")

    if args.save:
        from PIL import Image

        write_pil_image(Image.fromarray(_mosaic(batch[0])), args.save, "PNG")
        print(f"subband mosaic of level 1 written to {args.save}")
    return 0 if exact else 1
