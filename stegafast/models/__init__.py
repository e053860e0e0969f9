"""Model families built on the stegafast layers and training engine.

Each family lives in ``stegafast.models.<family>`` with its config (the seed's
defaults), model, losses, training task and command-line verbs:

* ``stego``: INN image-in-image steganography (cover + secret -> stego image,
  secret recovered from the stego image alone).
"""
