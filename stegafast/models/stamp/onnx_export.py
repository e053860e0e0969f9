"""ONNX export of a trained StegaStamp encoder and decoder (``stegafast stamp export-onnx``).

Written with ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter,
which needs no onnxscript) at opset 17, under
``stegafast.backend.use_backend("reference")`` so that any stegafast operator
in the graph is traced as plain PyTorch, giving plain ONNX operators.

* ``encoder.onnx``: inputs ``secret`` (B, bits) float 0/1 and ``image``
  (B, 3, S, S) in [0, 1]; outputs ``encoded`` (the image plus the residual,
  clamped to [0, 1]) and ``residual``.
* ``decoder.onnx``: input ``image`` (B, 3, S, S); output ``logits`` (B, bits),
  positive for a one.

The batch dimension is dynamic; S is the model's training size (resize other
images as ``stegafast.models.stamp.inference`` does). ``check_onnx`` runs both
files in onnxruntime and compares them with PyTorch. onnx and onnxruntime are
the optional extra ``stegafast[onnx]``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ...backend import use_backend
from ...io import write_bytes
from .model import StampDecoder, StampEncoder

__all__ = ["OPSET", "ONNX_FILES", "export_onnx", "check_onnx", "ONNX_TOLERANCE"]

OPSET = 17
ONNX_TOLERANCE = 1e-3
ONNX_FILES = ("encoder.onnx", "decoder.onnx")  # what export_onnx writes into its folder


class _EncoderGraph(nn.Module):
    def __init__(self, encoder: StampEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, secret: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        residual = self.encoder(secret, image)
        return (image + residual).clamp(0, 1), residual


def _example(config, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    secret = torch.randint(0, 2, (batch, config.secret_bits), generator=g).float()
    image = torch.rand(batch, 3, config.image_size, config.image_size, generator=g)
    return secret, image


def export_onnx(encoder: StampEncoder, decoder: StampDecoder, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` into ``out_dir`` (created if
    missing); returns their paths. The models are exported on the CPU in eval mode; each
    graph is serialised in memory and written atomically (``stegafast.io``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder, decoder = encoder.cpu().eval(), decoder.cpu().eval()
    secret, image = _example(encoder.config)
    batch = {0: "batch"}
    paths = tuple(out / name for name in ONNX_FILES)
    graphs = io.BytesIO(), io.BytesIO()
    # the shape checks in forward are Python conditions: constant in the trace, which warns about them
    with use_backend("reference"), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")  # the padding's slices: harmless
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is the legacy exporter, on purpose
        torch.onnx.export(
            _EncoderGraph(encoder),
            (secret, image),
            graphs[0],
            dynamo=False,
            opset_version=OPSET,
            input_names=["secret", "image"],
            output_names=["encoded", "residual"],
            dynamic_axes={"secret": batch, "image": batch, "encoded": batch, "residual": batch},
        )
        torch.onnx.export(
            decoder,
            (image,),
            graphs[1],
            dynamo=False,
            opset_version=OPSET,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": batch, "logits": batch},
        )
    for path, graph in zip(paths, graphs):
        write_bytes(path, graph.getvalue())
    return paths


def check_onnx(
    encoder: StampEncoder, decoder: StampDecoder, encoder_path: str | Path, decoder_path: str | Path, batch: int = 3
) -> dict[str, float]:
    """Run the exported files in onnxruntime on random inputs (a batch size other
    than the export's) and return the largest absolute differences from PyTorch:
    ``encoded``, ``residual``, ``logits``, and ``bit_agreement`` (the fraction of
    bits whose sign agrees). Raises ImportError when onnxruntime is missing."""
    import onnxruntime

    encoder, decoder = encoder.cpu().eval(), decoder.cpu().eval()
    secret, image = _example(encoder.config, batch, seed=1)
    options = {"providers": ["CPUExecutionProvider"]}
    enc = onnxruntime.InferenceSession(str(encoder_path), **options)
    dec = onnxruntime.InferenceSession(str(decoder_path), **options)
    encoded_ort, residual_ort = enc.run(None, {"secret": secret.numpy(), "image": image.numpy()})
    logits_ort = dec.run(None, {"image": encoded_ort})[0]
    with torch.no_grad():
        encoded, residual = _EncoderGraph(encoder)(secret, image)
        logits = decoder(torch.from_numpy(encoded_ort))
    return {
        "encoded": (encoded - torch.from_numpy(encoded_ort)).abs().max().item(),
        "residual": (residual - torch.from_numpy(residual_ort)).abs().max().item(),
        "logits": (logits - torch.from_numpy(logits_ort)).abs().max().item(),
        "bit_agreement": ((logits > 0) == torch.from_numpy(logits_ort > 0)).float().mean().item(),
    }
