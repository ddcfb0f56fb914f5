"""Reading MNIST-like data: the IDX reader, dataset folders and layouts, and missing or broken files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, need_dataset

from filterlab.data.datasets import DataError, download, find_files, load_split
from filterlab.data.idx import IdxError, read_idx, write_idx

MINI = FIXTURES / "mnist-mini"


def test_reads_the_real_mnist_test_split():
    root = need_dataset("mnist")
    split = load_split(root, "mnist", "test")
    assert split.images.shape == (10000, 28, 28) and split.images.dtype == np.uint8
    assert split.labels.shape == (10000,) and set(split.labels.tolist()) == set(range(10))
    assert split.labels[0] == 7  # the test split opens with a 7


def test_plain_and_gzip_give_the_same_array(tmp_path):
    gz = MINI / "t10k-images-idx3-ubyte.gz"
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    a, b = read_idx(gz), read_idx(plain)
    assert a.shape == (200, 28, 28) and np.array_equal(a, b)


def test_write_then_read_round_trips(tmp_path):
    arr = read_idx(MINI / "train-images-idx3-ubyte.gz")[:7]
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        write_idx(tmp_path / name, arr)
        assert np.array_equal(read_idx(tmp_path / name), arr)


@pytest.mark.parametrize("cut", [3, 10, 16 + 783, -1])
def test_truncated_file_is_refused_by_name(tmp_path, cut):
    raw = gzip.decompress((MINI / "t10k-images-idx3-ubyte.gz").read_bytes())
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(raw[:cut])
    with pytest.raises(IdxError) as e:
        read_idx(bad)
    assert str(bad) in str(e.value)
    assert any(w in str(e.value) for w in ("truncated", "too short", "cut short"))


def test_truncated_gzip_is_refused(tmp_path):
    data = (MINI / "t10k-images-idx3-ubyte.gz").read_bytes()
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(IdxError, match="gzip stream is damaged or cut short"):
        read_idx(bad)


def test_wrong_magic_is_refused(tmp_path):
    raw = bytearray(gzip.decompress((MINI / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[2] = 0x0D  # float data instead of unsigned bytes
    bad = tmp_path / "labels"
    bad.write_bytes(bytes(raw))
    with pytest.raises(IdxError, match="wrong magic number 0x00000d01"):
        read_idx(bad)
    png = Path(__file__).resolve().parents[1] / "filterlab" / "samples" / "four.png"
    with pytest.raises(IdxError, match="wrong magic"):
        read_idx(png)


def test_labels_where_images_are_expected(tmp_path):
    shutil.copy(MINI / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    shutil.copy(MINI / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="3 dimensions, expected 1"):
        load_split(tmp_path, "mnist", "test")


@pytest.mark.parametrize("layout", ["flat", "torchvision", "named"])
def test_dataset_layouts(tmp_path, layout):
    dest = {"flat": tmp_path, "torchvision": tmp_path / "MNIST" / "raw", "named": tmp_path / "mnist"}[layout]
    shutil.copytree(MINI, dest, dirs_exist_ok=True)
    assert find_files(tmp_path, "mnist", "train") is not None
    split = load_split(tmp_path, "mnist", "train")
    assert len(split) == 500 and np.bincount(split.labels).tolist() == [50] * 10


def test_missing_files_say_where_and_how(tmp_path):
    with pytest.raises(DataError) as e:
        load_split(tmp_path, "fashion_mnist", "train")
    msg = str(e.value)
    assert "train-images-idx3-ubyte[.gz]" in msg and str(tmp_path / "FashionMNIST" / "raw") in msg
    assert "set data.root" in msg and "data.download=true" in msg


def test_failed_download_is_one_clear_message_and_leaves_no_files(tmp_path, monkeypatch):
    """Offline, torchvision's downloader fails; filterlab reports it once and leaves nothing half-downloaded."""
    import torchvision.datasets as tvd

    class Offline:
        def __init__(self, root, train, download):
            raw = Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")  # what a cut download leaves
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error [Errno -3] "
                               "Temporary failure in name resolution>")

    monkeypatch.setattr(tvd, "MNIST", Offline)
    with pytest.raises(DataError) as e:
        download(tmp_path, "mnist")
    msg = str(e.value)
    assert msg.startswith("downloading mnist into") and "name resolution" in msg and "set data.root" in msg
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    with pytest.raises(DataError):
        download(tmp_path / "new", "mnist")
    assert not (tmp_path / "new").exists()  # a folder made for the download goes again when nothing arrived


# ---------------------------------------------------------------------------------------------------------------------
# The MNIST test split shipped inside the package


def test_the_shipped_test_split_is_the_official_one():
    """Without any data folder the MNIST test split is read from the package: the official files, md5-checked, the
    same digits as the shared dataset's test split."""
    from filterlab.data.bundled import BUNDLED_DIR, MD5

    shipped = load_split(None, "mnist", "test")
    assert shipped.images.shape == (10000, 28, 28) and shipped.labels[0] == 7
    assert [Path(f).parent for f in shipped.files] == [BUNDLED_DIR, BUNDLED_DIR]
    assert sorted(MD5) == sorted(p.name for p in BUNDLED_DIR.glob("*.gz"))
    shared = load_split(need_dataset("mnist"), "mnist", "test")
    assert np.array_equal(shipped.images, shared.images) and np.array_equal(shipped.labels, shared.labels)


def test_a_folder_without_the_test_split_falls_back_to_the_shipped_one_but_the_training_split_is_not_shipped(tmp_path):
    assert len(load_split(tmp_path, "mnist", "test")) == 10000
    with pytest.raises(DataError, match="mnist train split not found"):
        load_split(tmp_path, "mnist", "train")
    with pytest.raises(DataError, match="no mnist train split is shipped"):
        load_split(None, "mnist", "train")
    with pytest.raises(DataError, match="fashion_mnist test split not found"):
        load_split(tmp_path, "fashion_mnist", "test")  # only MNIST's test split is shipped


def test_a_folder_with_its_own_test_split_is_read_not_the_shipped_one(tmp_path):
    shutil.copytree(MINI, tmp_path, dirs_exist_ok=True)
    assert len(load_split(tmp_path, "mnist", "test")) == len(read_idx(MINI / "t10k-labels-idx1-ubyte.gz"))


def test_a_damaged_shipped_copy_is_refused_by_its_md5(tmp_path, monkeypatch):
    from filterlab.data import bundled

    for f in bundled.BUNDLED_DIR.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # the first label changed: still a valid IDX file, no longer the official one
    labels.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    with pytest.raises(DataError) as e:
        load_split(None, "mnist", "test")
    msg = str(e.value)
    assert str(labels) in msg and "is not the official ec29112dd5afa0611ce80d1b7f02629c" in msg and "reinstall" in msg


def test_the_shipped_files_are_package_data_and_their_licence_is_named():
    from fnmatch import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from filterlab.data.bundled import BUNDLED_DIR

    pkg = Path(__file__).resolve().parent.parent / "filterlab"
    globs = tomllib.loads((pkg.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [p.relative_to(pkg).as_posix() for p in BUNDLED_DIR.iterdir()]
    assert sorted(shipped) == sorted(["data/mnist_test/README.md", "data/mnist_test/t10k-images-idx3-ubyte.gz",
                                      "data/mnist_test/t10k-labels-idx1-ubyte.gz"])
    assert all(any(fnmatch(f, g) for g in globs["filterlab"]) for f in shipped)
    assert "CC BY-SA 3.0" in (BUNDLED_DIR / "README.md").read_text()
