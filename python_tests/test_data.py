"""Datasets and image I/O on real files written to temporary folders (PNG, JPEG,
RGBA, grayscale, 16-bit, palette, nested, corrupt), pairing, determinism,
DataLoader workers, the bundled photographs' split, and bad input."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from stegafast.data import (
    BUNDLED_PHOTOS,
    BUNDLED_SPLITS,
    BundledPhotos,
    DataError,
    ImageFolder,
    PairedImages,
    find_images,
    load_bundled_photo,
    load_image,
    save_image,
)


def _pixels(h, w, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    """A nested folder of mixed images plus files that must be skipped."""
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    Image.fromarray(_pixels(40, 50, 3, 0)).save(tmp_path / "a_rgb.png")
    Image.fromarray(_pixels(48, 36, 4, 1)).save(tmp_path / "b" / "rgba.PNG")
    Image.fromarray(_pixels(30, 44, 1, 2)).save(tmp_path / "b" / "deep" / "gray.png")
    Image.fromarray(_pixels(64, 64, 3, 3)).save(tmp_path / "b" / "photo.JPG", quality=90)
    Image.fromarray(_pixels(52, 40, 3, 4)).save(tmp_path / "c.jpeg", quality=90)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._a_rgb.png").write_bytes(b"macOS resource fork")
    Image.fromarray(_pixels(8, 8, 3, 5)).save(tmp_path / ".hidden" / "skip.png")
    return tmp_path


EXPECTED_ORDER = ["a_rgb.png", "b/deep/gray.png", "b/photo.JPG", "b/rgba.PNG", "c.jpeg"]


# --- finding and reading files -------------------------------------------------------


def test_find_images_is_recursive_sorted_and_skips_other_files(folder):
    assert [p.relative_to(folder).as_posix() for p in find_images(folder)] == EXPECTED_ORDER
    assert ImageFolder(folder).image_name(1) == "b/deep/gray.png"


def test_load_image_converts_to_rgb_and_gray(folder):
    rgba = _pixels(48, 36, 4, 1)
    rgb = load_image(folder / "b" / "rgba.PNG")
    assert rgb.shape == (3, 48, 36) and rgb.dtype == torch.float32
    # Alpha is dropped, the stored colours kept exactly.
    assert torch.equal((rgb * 255).round().byte(), torch.from_numpy(rgba[..., :3]).permute(2, 0, 1))
    gray = load_image(folder / "b" / "deep" / "gray.png")
    assert gray.shape == (3, 30, 44)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert torch.equal((gray[0] * 255).round().byte(), torch.from_numpy(_pixels(30, 44, 1, 2)))
    luma = load_image(folder / "a_rgb.png", mode="L")
    expected = np.array(Image.fromarray(_pixels(40, 50, 3, 0)).convert("L"))
    assert luma.shape == (1, 40, 50)
    assert torch.equal((luma[0] * 255).round().byte(), torch.from_numpy(expected))


def test_load_image_reads_16_bit_and_palette_files(tmp_path):
    deep = (np.arange(12 * 10).reshape(12, 10) * 500).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    got = load_image(tmp_path / "deep.png", mode="L")
    assert torch.equal((got[0] * 255).round().to(torch.int64), torch.from_numpy(np.round(deep / 257).astype(np.int64)))
    palette = Image.fromarray((np.arange(100).reshape(10, 10) % 4).astype(np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png")
    rgb = load_image(tmp_path / "palette.png")
    assert rgb.shape == (3, 10, 10) and torch.equal(rgb[:, 0, 1], torch.tensor([1.0, 0.0, 0.0]))


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.png does not exist"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(DataError, match="cannot read image .*fake.png"):
        load_image(tmp_path / "fake.png")
    Image.fromarray(_pixels(64, 64, 3, 0)).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read image .*cut.jpg"):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(ValueError, match="mode"):
        load_image(tmp_path / "whole.jpg", mode="RGBA")


def test_save_image_round_trips_and_rounds(tmp_path):
    image = torch.from_numpy(_pixels(9, 7, 3, 0)).permute(2, 0, 1).float() / 255
    save_image(image, tmp_path / "out.png")
    assert torch.equal(load_image(tmp_path / "out.png"), image)
    gray = torch.tensor([[-0.2, 0.4 / 255, 0.6 / 255], [127.5 / 255, 1.0, 3.0]])
    save_image(gray, tmp_path / "gray.png")
    assert Image.open(tmp_path / "gray.png").mode == "L"
    stored = np.asarray(Image.open(tmp_path / "gray.png"))
    assert stored.tolist() == [[0, 0, 1], [128, 255, 255]]
    save_image(torch.full((1, 4, 4), 7, dtype=torch.uint8), tmp_path / "bytes.png")
    assert np.asarray(Image.open(tmp_path / "bytes.png")).max() == 7


def test_save_image_errors(tmp_path):
    image = torch.rand(3, 8, 8)
    with pytest.raises(DataError, match="should end in .png"):
        save_image(image, tmp_path / "out.jpg")
    with pytest.raises(DataError, match="cannot write"):
        save_image(image, tmp_path / "no" / "such" / "folder.png")
    with pytest.raises(ValueError, match="not a batch"):
        save_image(image[None], tmp_path / "out.png")
    with pytest.raises(ValueError, match="C in 1, 3, 4"):
        save_image(torch.rand(2, 8, 8), tmp_path / "out.png")
    with pytest.raises(ValueError, match="NaN"):
        save_image(torch.full((3, 2, 2), float("nan")), tmp_path / "out.png")


# --- the folder dataset --------------------------------------------------------------


@pytest.mark.parametrize("mode, channels", [("RGB", 3), ("L", 1)])
def test_folder_crops_have_the_size_and_range(folder, mode, channels):
    data = ImageFolder(folder, crop_size=(24, 32), mode=mode, seed=0)
    assert len(data) == 5
    for item in data:
        assert item.shape == (channels, 24, 32) and item.dtype == torch.float32
        assert 0 <= item.min() and item.max() <= 1 and item.is_contiguous()


def test_folder_upscales_images_smaller_than_the_crop(folder):
    data = ImageFolder(folder, crop_size=100, train=False)
    crops = [data[i] for i in range(len(data))]
    assert all(c.shape == (3, 100, 100) for c in crops)
    assert all(c.std() > 0.05 for c in crops)  # content everywhere, no flat padding


def test_folder_eval_gives_centre_crops_without_flips(folder):
    data = ImageFolder(folder, crop_size=(20, 30), train=False)
    full = load_image(folder / "a_rgb.png")  # 40x50
    assert torch.equal(data[0], full[:, 10:30, 10:40])
    data.set_epoch(3)
    assert torch.equal(data[0], full[:, 10:30, 10:40])
    whole = ImageFolder(folder, train=False)
    assert torch.equal(whole[0], full)


def test_folder_eval_crops_are_fixed(folder):
    data = ImageFolder(folder, crop_size=16, train=False, eval_crops=3)
    assert len(data) == 15 and data.image_index(4) == 1
    first = [data[i] for i in range(len(data))]
    data.set_epoch(5)
    assert all(torch.equal(a, data[i]) for i, a in enumerate(first))
    assert not torch.equal(first[0], first[1])


def test_seeded_crops_depend_on_seed_and_epoch_only(folder):
    a = ImageFolder(folder, crop_size=16, seed=7, epoch_length=12)
    b = ImageFolder(folder, crop_size=16, seed=7, epoch_length=12)
    assert len(a) == 12 and a.image_index(7) == 2
    reversed_b = {i: b[i] for i in reversed(range(12))}
    assert all(torch.equal(a[i], reversed_b[i]) for i in range(12))
    first = [a[i] for i in range(12)]
    a.set_epoch(1)
    assert sum(torch.equal(x, a[i]) for i, x in enumerate(first)) < 3
    other_seed = ImageFolder(folder, crop_size=16, seed=8, epoch_length=12)
    assert sum(torch.equal(x, other_seed[i]) for i, x in enumerate(first)) < 3


def test_unseeded_crops_follow_torch_generator(folder):
    data = ImageFolder(folder, crop_size=16)
    torch.manual_seed(3)
    first = [data[i] for i in range(5)]
    torch.manual_seed(3)
    assert all(torch.equal(x, data[i]) for i, x in enumerate(first))


def test_random_flips_happen_and_only_when_asked(folder):
    def crops(hflip):
        data = ImageFolder(folder, crop_size=(40, 50), hflip=hflip, seed=0, epoch_length=40)
        return [data[i] for i in range(0, 40, 5)]  # items 0, 5, ... all crop image 0 (40x50: no shift)

    full = load_image(folder / "a_rgb.png")
    flipped = [torch.equal(c, full.flip(-1)) for c in crops(True)]
    assert any(flipped) and not all(flipped)
    assert all(torch.equal(c, full) for c in crops(False))


def test_folder_errors(tmp_path, folder):
    with pytest.raises(DataError, match="does not exist"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG or JPEG images"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(DataError, match="not a folder"):
        ImageFolder(folder / "a_rgb.png")
    with pytest.raises(ValueError, match="crop_size"):
        ImageFolder(folder, crop_size=0)
    with pytest.raises(ValueError, match="epoch_length"):
        ImageFolder(folder, epoch_length=0)


def test_folder_reports_a_corrupt_file(folder):
    (folder / "b" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"cannot read image .*b/broken\.png"):
        ImageFolder(folder)
    lazy = ImageFolder(folder, verify=False, train=False)
    assert lazy.image_name(1) == "b/broken.png"
    assert lazy[0].shape == (3, 40, 50)
    with pytest.raises(DataError, match=r"broken\.png"):
        lazy[1]


def test_a_corrupt_file_read_in_a_worker_raises_data_error(folder):
    (folder / "b" / "broken.png").write_bytes(b"this is not a png")
    loader = DataLoader(ImageFolder(folder, crop_size=8, verify=False, seed=0), batch_size=1, num_workers=2)
    with pytest.raises(DataError, match=r"cannot read image .*b/broken\.png"):
        list(loader)


# --- pairs for steganography ----------------------------------------------------------


def test_pairs_never_pair_an_image_with_itself(folder):
    pairs = PairedImages(ImageFolder(folder, crop_size=16, seed=1, epoch_length=50))
    partners = set()
    for epoch in range(4):
        pairs.set_epoch(epoch)
        for item in range(len(pairs)):
            own, other = pairs.images.image_index(item), pairs.partner(item)
            assert other != own
            partners.add((own, other))
    assert len(partners) == 20  # every ordered pair of different images occurs


def test_pairs_are_deterministic_and_crop_the_partner(folder):
    pairs = PairedImages(ImageFolder(folder, crop_size=(40, 36), seed=4, hflip=False, epoch_length=10))
    again = PairedImages(ImageFolder(folder, crop_size=(40, 36), seed=4, hflip=False, epoch_length=10))
    for item in range(10):
        cover, secret = pairs[item]
        cover2, secret2 = again[item]
        assert torch.equal(cover, cover2) and torch.equal(secret, secret2)
        assert cover.shape == secret.shape == (3, 40, 36)
    # Image 0 (40x50) is cropped at row 0; its pixels identify the partner.
    full = load_image(folder / "a_rgb.png")
    item = next(i for i in range(10) if pairs.partner(i) == 0)
    secret = pairs[item][1]
    assert any(torch.equal(secret, full[:, :, left : left + 36]) for left in range(15))


def test_eval_pairs_are_fixed_across_epochs(folder):
    pairs = PairedImages(ImageFolder(folder, crop_size=16, train=False))
    first = [pairs[i] for i in range(len(pairs))]
    pairs.set_epoch(9)
    for i, (cover, secret) in enumerate(first):
        assert torch.equal(cover, pairs[i][0]) and torch.equal(secret, pairs[i][1])
        assert pairs.partner(i) != i


def test_single_image_pairs_with_another_crop_of_itself(tmp_path):
    Image.fromarray(_pixels(64, 64, 3, 0)).save(tmp_path / "only.png")
    pairs = PairedImages(ImageFolder(tmp_path, crop_size=16, seed=0, epoch_length=4))
    cover, secret = pairs[0]
    assert pairs.partner(0) == 0 and not torch.equal(cover, secret)


def test_dataloader_with_two_workers_matches_in_process(folder):
    pairs = PairedImages(ImageFolder(folder, crop_size=16, seed=2, epoch_length=12))
    pairs.set_epoch(1)
    loader = DataLoader(pairs, batch_size=4, num_workers=2)
    covers, secrets = zip(*loader)
    covers, secrets = torch.cat(covers), torch.cat(secrets)
    assert covers.shape == (12, 3, 16, 16)
    for item in range(12):
        assert torch.equal(covers[item], pairs[item][0]) and torch.equal(secrets[item], pairs[item][1])


# --- the bundled photographs --------------------------------------------------------


def test_bundled_split_is_disjoint_and_complete():
    train, val = set(BUNDLED_SPLITS["train"]), set(BUNDLED_SPLITS["val"])
    assert not train & val
    assert train | val == set(BUNDLED_PHOTOS)
    assert {"motorcycle_left", "motorcycle_right"} <= train  # the stereo pair stays together


def test_bundled_photos_load_in_both_splits():
    train = BundledPhotos("train", crop_size=96, seed=0, epoch_length=18)
    assert len(train) == 18 and train.train
    batch = torch.stack([train[i] for i in range(18)])
    assert batch.shape == (18, 3, 96, 96) and 0 <= batch.min() and batch.max() <= 1
    val = BundledPhotos("val", crop_size=(180, 200), mode="L")
    assert len(val) == 4 and not val.train
    for i in range(len(BUNDLED_SPLITS["val"])):
        crop = val[i]
        assert crop.shape == (1, 180, 200)
        assert torch.equal(crop, val[i])
    # camera is grayscale: its validation crop is the photo's own centre.
    camera = load_bundled_photo("camera")[0]
    index = BUNDLED_SPLITS["val"].index("camera")
    assert torch.equal(val[index][0], camera[166:346, 156:356].float() / 255)


def test_bundled_rejects_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        BundledPhotos("test")
