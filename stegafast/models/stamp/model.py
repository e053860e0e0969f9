"""The StegaStamp networks (Tancik et al., CVPR 2020), NCHW, images in [0, 1].

* ``StampEncoder(secret, image) -> residual``: a U-Net. The secret (B, bits)
  goes through a dense layer to 3 x (S/8) x (S/8) values (the original's
  7500 -> 3x50x50 at S = 400), is upsampled x8 (nearest) and concatenated with
  the image; the down path has 32, 32, 64, 128, 256 channels (the last four
  with stride 2), the up path upsamples x2, convolves 2x2 and concatenates the
  skip connection, and a 1x1 convolution of ``conv9`` (the original's; of
  ``conv10`` for ``residual_layer="conv10"``, checkpoints before issue 14)
  gives the 3-channel residual. The encoded image is ``image + residual``.
  Every convolution and the dense layer start from he_normal (Keras's:
  a normal truncated at two standard deviations, zero biases).
* ``StampDecoder(image) -> logits``: a spatial transformer (three stride-2
  convolutions, dense 128, dense 6 initialised to the identity affine map,
  ``F.affine_grid``/``F.grid_sample``), then seven convolutions, dense 512 and
  dense ``bits`` logits.
* ``StampCritic(image) -> score``: the WGAN critic, five stride-2 convolutions
  whose last map's mean is the score (higher: more likely encoded).

As in the original, every network sees its inputs shifted by -0.5. Sizes:
square images whose side is the config's ``image_size``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import StampModelConfig

__all__ = ["StampEncoder", "StampDecoder", "StampCritic", "check_batch", "he_normal_"]


def check_batch(name: str, images: torch.Tensor, size: int) -> None:
    """A (B, 3, size, size) floating batch, or an error naming ``name``."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor in [0, 1], got {images.dtype}")
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size) or images.shape[0] == 0:
        raise ValueError(
            f"{name} must be a (B, 3, {size}, {size}) batch (the model's image size), got shape {tuple(images.shape)}"
        )


# the std of a standard normal truncated to [-2, 2]: Keras divides by it so that the truncated draw keeps the variance
_TRUNCATED_STD = 0.87962566103423978


def he_normal_(layer: nn.Conv2d | nn.Linear) -> None:
    """Keras's he_normal: weights from a normal of std sqrt(2 / fan_in) truncated at two of its
    standard deviations (rescaled so the truncated law keeps that std), zero bias."""
    fan_in = layer.weight[0].numel()
    std = (2.0 / fan_in) ** 0.5 / _TRUNCATED_STD
    nn.init.trunc_normal_(layer.weight, 0.0, std, -2 * std, 2 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(inplace=True))


class _Up(nn.Module):
    """x2 nearest upsampling then a 2x2 convolution padded as TensorFlow's "same"
    (the extra row and column at the bottom and right)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv = nn.Conv2d(cin, cout, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(self.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"))))


class StampEncoder(nn.Module):
    """The U-Net encoder; ``forward(secret, image)`` -> the residual (B, 3, S, S)."""

    def __init__(self, config: StampModelConfig | None = None):
        super().__init__()
        self.config = c = config or StampModelConfig()
        self.secret_dense = nn.Linear(c.secret_bits, 3 * c.secret_map_size**2)
        self.conv1 = _conv(6, 32)
        self.conv2 = _conv(32, 32, 2)
        self.conv3 = _conv(32, 64, 2)
        self.conv4 = _conv(64, 128, 2)
        self.conv5 = _conv(128, 256, 2)
        self.up6, self.conv6 = _Up(256, 128), _conv(256, 128)
        self.up7, self.conv7 = _Up(128, 64), _conv(128, 64)
        self.up8, self.conv8 = _Up(64, 32), _conv(64, 32)
        self.up9, self.conv9 = _Up(32, 32), _conv(32 + 32 + 6, 32)
        if c.residual_layer == "conv10":
            self.conv10 = _conv(32, 32)  # the original builds it too, but never uses it: only old checkpoints have it
        self.residual = nn.Conv2d(32, 3, 1)
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                he_normal_(layer)

    def forward(self, secret: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The residual that hides ``secret`` in ``image``: float (B, 3, S, S), unbounded; ``image + residual`` is
        encoded.

        ``secret``: (B, secret_bits) of 0/1 (any dtype); ``image``: float (B, 3, S, S) in [0, 1] with S =
        ``image_size``. Raises ValueError for other shapes, TypeError for a non-floating image.
        """
        c = self.config
        check_batch("image", image, c.image_size)
        if secret.shape != (image.shape[0], c.secret_bits):
            raise ValueError(
                f"secret must be ({image.shape[0]}, {c.secret_bits}) bits for this batch, "
                f"got shape {tuple(secret.shape)}"
            )
        m = c.secret_map_size
        s = F.relu(self.secret_dense(secret.to(image.dtype) - 0.5)).view(-1, 3, m, m)
        s = F.interpolate(s, scale_factor=8.0, mode="nearest")
        inputs = torch.cat([s, image - 0.5], 1)
        c1 = self.conv1(inputs)
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        c5 = self.conv5(c4)
        c6 = self.conv6(torch.cat([c4, self.up6(c5)], 1))
        c7 = self.conv7(torch.cat([c3, self.up7(c6)], 1))
        c8 = self.conv8(torch.cat([c2, self.up8(c7)], 1))
        c9 = self.conv9(torch.cat([c1, self.up9(c8), inputs], 1))
        return self.residual(self.conv10(c9) if c.residual_layer == "conv10" else c9)


def _flat_size(channels: int, size: int, halvings: int) -> int:
    for _ in range(halvings):
        size = (size + 1) // 2  # a 3x3 stride-2 convolution with padding 1: ceil(size / 2)
    return channels * size * size


class StampDecoder(nn.Module):
    """Spatial transformer + convolutional decoder; ``forward(image)`` -> (B, bits) logits."""

    def __init__(self, config: StampModelConfig | None = None):
        super().__init__()
        self.config = c = config or StampModelConfig()
        self.stn = nn.Sequential(
            _conv(3, 32, 2),
            _conv(32, 64, 2),
            _conv(64, 128, 2),
            nn.Flatten(),
            nn.Linear(_flat_size(128, c.image_size, 3), 128),
            nn.ReLU(inplace=True),
        )
        # the affine parameters start at the identity map: zero weights, identity bias
        self.stn_affine = nn.Linear(128, 6)
        nn.init.zeros_(self.stn_affine.weight)
        with torch.no_grad():
            self.stn_affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        coords = (torch.arange(c.image_size, dtype=torch.float64) * 2 + 1) / c.image_size - 1  # pixel centres
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        base = torch.stack([xx, yy, torch.ones_like(xx)], -1).view(-1, 3).float()
        self.register_buffer("_base_grid", base, persistent=False)
        self.decoder = nn.Sequential(
            _conv(3, 32, 2),
            _conv(32, 32),
            _conv(32, 64, 2),
            _conv(64, 64),
            _conv(64, 64, 2),
            _conv(64, 128, 2),
            _conv(128, 128, 2),
            nn.Flatten(),
            nn.Linear(_flat_size(128, c.image_size, 5), 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, c.secret_bits),
        )

    def affine(self, image: torch.Tensor) -> torch.Tensor:
        """The (B, 2, 3) affine map the transformer applies (identity at initialisation)."""
        return self.stn_affine(self.stn(image - 0.5)).view(-1, 2, 3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (B, secret_bits) of the hidden bits (> 0 means 1) in ``image``: float (B, 3, S, S) in [0, 1].

        S = ``image_size``. Raises ValueError for another shape, TypeError for a non-floating image.
        """
        check_batch("image", image, self.config.image_size)
        x = image - 0.5
        theta = self.affine(image).to(x.dtype)
        # F.affine_grid written out (align_corners=False): the same grid, and plain ONNX below opset 20
        size = self.config.image_size
        grid = (self._base_grid.to(x.dtype) @ theta.transpose(1, 2)).view(-1, size, size, 2)
        return self.decoder(F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False))


class StampCritic(nn.Module):
    """The WGAN critic; ``forward(image)`` -> (B,) scores (the mean of its last map)."""

    def __init__(self, config: StampModelConfig | None = None):
        super().__init__()
        self.config = config or StampModelConfig()
        self.net = nn.Sequential(
            _conv(3, 8, 2), _conv(8, 16, 2), _conv(16, 32, 2), _conv(32, 64, 2), nn.Conv2d(64, 1, 3, 1, 1)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """WGAN scores (B,) of ``image`` (float (B, 3, S, S) in [0, 1], S = ``image_size``): unbounded, in its dtype.

        Raises ValueError for another shape, TypeError for a non-floating image.
        """
        check_batch("image", image, self.config.image_size)
        return self.net(image - 0.5).mean(dim=(1, 2, 3))
