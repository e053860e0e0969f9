"""Model families built on the stegafast layers and training engine.

Each family lives in ``stegafast.models.<family>`` and follows one template
(``stegafast/models/README.md``): ``config`` (the seed's defaults), ``model``,
``losses``, ``task`` (the training task, which also rebuilds itself from a
checkpoint), ``inference`` (load a trained model and use it), ``evaluate``
(evaluation as library functions) and ``cli`` (the ``stegafast <family>``
verbs), plus modules for the family's own concepts.

* ``stego``: INN image-in-image steganography (cover + secret -> stego image,
  secret recovered from the stego image alone); ``stegafast stego
  train|embed|extract|evaluate``.
* ``stamp``: StegaStamp watermarking (a 7-byte BCH-protected message in an
  image, robust to print-like distortions); ``stegafast stamp
  train|encode|decode|evaluate|export-onnx``; own modules ``bch``, ``noise``,
  ``onnx_export``.
* ``codec``: learned image compression (a mean-scale hyperprior with real
  range-coded .sfc files); ``stegafast codec
  train|compress|decompress|evaluate``; own modules ``gdn``, ``fileformat``,
  ``plot``.
* ``autoencoder``: a grayscale autoencoder (presets tiny..large, four block
  types, "conv" or "spatial" latent, any input size, attention matrix and
  saliency); ``stegafast autoencoder train|reconstruct|encode|visualize|evaluate``;
  own modules ``blocks``, ``attention``, ``visualize``.
* ``diffusion``: conditional diffusion denoising of widefield microscopy (a
  diffusers UNet, DDIM / DPM-Solver++, physics guidance); ``stegafast diffusion
  train|denoise|evaluate|simulate``; own modules ``physics``, ``specimens``,
  ``data``, ``imagefiles``, ``attention``, ``schedulers``, ``guidance``,
  ``sampling``, ``frc``, ``baselines``. Needs the ``[diffusion]`` extra.
"""
