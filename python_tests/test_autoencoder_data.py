"""The grayscale bundled collection the autoencoder trains on by default (stegafast.data)."""

import pytest

from stegafast.data import (
    BUNDLED_GRAY_SPLITS,
    BUNDLED_PHOTOS,
    BUNDLED_SPLITS,
    BUNDLED_TEXTURES,
    BundledPhotos,
    load_bundled_photo,
    training_images,
    validation_images,
)


def test_grayscale_split_is_disjoint_and_extends_the_photo_split():
    train, val = set(BUNDLED_GRAY_SPLITS["train"]), set(BUNDLED_GRAY_SPLITS["val"])
    assert not train & val
    assert train | val == set(BUNDLED_PHOTOS) | set(BUNDLED_TEXTURES)
    assert set(BUNDLED_SPLITS["train"]) <= train and set(BUNDLED_SPLITS["val"]) <= val


def test_grayscale_collection_serves_one_channel_crops():
    val = BundledPhotos("val", (152, 201), mode="L", collection="grayscale")
    assert len(val) == len(BUNDLED_GRAY_SPLITS["val"])
    assert val[len(val) - 1].shape == (1, 152, 201)  # gravel, a texture
    everything = BundledPhotos("all", 16, mode="L", collection="grayscale")
    assert everything.image_count() == len(BUNDLED_PHOTOS) + len(BUNDLED_TEXTURES)
    assert load_bundled_photo("brick").shape == (1, 512, 512)


def test_choice_passes_mode_and_collection():
    train = training_images(None, (24, 20), 5, mode="L", collection="grayscale")
    assert len(train) == 5 and train[0].shape == (1, 24, 20)
    assert validation_images(None, None, 16, mode="L", collection="grayscale").names == BUNDLED_GRAY_SPLITS["val"]
    assert training_images(None, 16, 5)[0].shape == (3, 16, 16)  # the default stays RGB photos


def test_unknown_collection():
    with pytest.raises(ValueError, match="unknown collection"):
        BundledPhotos("train", 16, collection="textures")
