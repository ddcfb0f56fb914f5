"""Only regular files are opened as configs, images, kernels, IDX files and files named in meta.json: a FIFO, a
device or a folder is refused by name, never waited on. IDX decompression is bounded by what the run needs.

Every command runs as a real process with a timeout (a hang fails the test, it never stalls the suite), and the
memory-bounded cases measure the child's peak resident memory (conftest.run_measured)."""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, copy_run, need_dataset, run_measured

from filterlab.data.idx import read_idx

FOUR = REPO / "configs" / "single_four.yaml"
SMOKE = REPO / "configs" / "smoke_two_conv.yaml"


def _fl(*args, cwd: Path, timeout: float = 60, **kw):
    return run_measured(["python", "-m", "filterlab", *map(str, args)], timeout=timeout, cwd=cwd, **kw)


def _refused(result, *needles: str) -> str:
    code, out, err, peak = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("filterlab: error: "), (code, err[-2000:])
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert peak < 1.5e9, f"peak resident memory {peak / 1e9:.2f} GB"
    return lines[0]


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_a_fifo_as_a_config_is_refused(tmp_path, fifo):
    for cmd in (["config", fifo], ["train", fifo, "--out", tmp_path / "out"]):
        _refused(_fl(*cmd, cwd=tmp_path), str(fifo), "a FIFO (named pipe), not a regular file", "a config")
    assert not (tmp_path / "out").exists()


def test_a_folder_or_a_device_as_a_config_is_refused(tmp_path):
    (tmp_path / "folder.yaml").mkdir()
    _refused(_fl("config", tmp_path / "folder.yaml", cwd=tmp_path), "folder.yaml", "a folder, not a regular file")
    _refused(_fl("config", "/dev/null", cwd=tmp_path), "/dev/null", "a character device, not a regular file")


@pytest.mark.parametrize("name", ["pipe.png", "pipe", "pipe.txt"])
def test_a_fifo_as_convolve_image_is_refused(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(path)
    _refused(_fl("convolve", "--kernel", "sobel_x", "--image", path, "--out", tmp_path / "out", cwd=tmp_path),
             str(path), "a FIFO (named pipe), not a regular file")
    assert not (tmp_path / "out").exists()


def test_a_fifo_as_a_training_image_or_a_kernel_is_refused(tmp_path, fifo):
    _refused(_fl("train", FOUR, "--set", f"data.image={fifo}", "--out", tmp_path / "out", cwd=tmp_path),
             "data.image", str(fifo), "a FIFO")
    _refused(_fl("convolve", "--kernel", fifo, "--out", tmp_path / "out", cwd=tmp_path), "--kernel", "a FIFO")
    assert not (tmp_path / "out").exists()


def test_a_fifo_in_a_run_folder_or_named_in_meta_never_hangs(runner, four_run, tmp_path, fifo):
    """meta.json's preset naming a FIFO: `runs` lists the run (the preset cannot be read); a FIFO in place of
    summary.json or a figure: the reader names it."""
    run = copy_run(four_run, tmp_path / "runs", "a")
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "preset": str(fifo)}))
    code, out, err, _ = _fl("runs", tmp_path / "runs", cwd=tmp_path)
    assert code == 0 and "completed" in out and "preset pipe is gone or invalid" in out.replace("\n      ", " "), err
    (run / "summary.json").unlink()
    os.mkfifo(run / "summary.json")
    code, out, err, _ = _fl("runs", tmp_path / "runs", "--wide", cwd=tmp_path)
    assert code == 0 and "unreadable" in out and "summary.json: a FIFO (named pipe), not a regular file" in out
    _refused(_fl("visualize", run, "--out", tmp_path / "f", cwd=tmp_path), "summary.json", "a FIFO")


def test_an_idx_file_that_is_a_fifo_is_refused(tmp_path, fifo):
    from filterlab.data.idx import IdxError

    with pytest.raises(IdxError, match="a FIFO"):
        read_idx(fifo)


# ---------------------------------------------------------------------------------------------------------------------
# An IDX gzip bomb with an honest header: memory follows data.train_limit

BOMB_IMAGES = 2_600_000  # the header's count, as in the issue: 2 GB of pixels once decompressed


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """Real MNIST: its 5,000 training digits and labels, then zeros up to 2.6 M images (an honest header: the file
    does hold them all), gzip'ed to a few MB; the real test split beside it."""
    mnist = need_dataset("mnist")
    root = tmp_path_factory.mktemp("bomb")
    images = read_idx(mnist / "train-images-idx3-ubyte.gz")
    labels = read_idx(mnist / "train-labels-idx1-ubyte.gz")
    n = len(images)
    with open(root / "train-images-idx3-ubyte.gz", "wb") as f:
        z = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
        f.write(z.compress(np.array([0, 0, 8, 3], np.uint8).tobytes()
                           + np.array([BOMB_IMAGES, 28, 28], ">u4").tobytes() + images.tobytes()))
        zeros = bytes(784 * 10_000)
        for _ in range((BOMB_IMAGES - n) // 10_000):
            f.write(z.compress(zeros))
        f.write(z.compress(bytes(784 * ((BOMB_IMAGES - n) % 10_000))) + z.flush())
    lab = np.zeros(BOMB_IMAGES, np.uint8)
    lab[:n] = labels
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(
        np.array([0, 0, 8, 1], np.uint8).tobytes() + np.array([BOMB_IMAGES], ">u4").tobytes() + lab.tobytes()))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / name).symlink_to(mnist / name)
    assert (root / "train-images-idx3-ubyte.gz").stat().st_size < 16 << 20
    return root


def test_an_idx_gzip_bomb_is_read_only_as_far_as_the_run_needs(bomb, tmp_path):
    code, out, err, peak = _fl("train", SMOKE, "--set", f"data.root={bomb}", "--set", "data.train_limit=500",
                               "--set", "data.test_limit=200", "--set", "train.epochs=1", "--set", "threads=1",
                               "--set", "output.figures=false", "--out", tmp_path / "out", "-q", cwd=tmp_path,
                               timeout=300)
    assert code == 0, err[-3000:]
    assert peak < 1.5e9, f"peak resident memory {peak / 1e9:.2f} GB"
    summary = json.loads((Path(out.strip().splitlines()[-1]) / "summary.json").read_text())
    assert summary["train_images"] == 500 and summary["test_images"] == 200


def test_a_bounded_read_keeps_the_same_images_as_a_whole_read(tmp_path):
    """data.train_limit picks the same images, in the same order, read in chunks as read whole."""
    mnist = need_dataset("mnist")
    whole = read_idx(mnist / "train-images-idx3-ubyte.gz")
    pick = np.random.default_rng(0).permutation(len(whole))[:700]
    import filterlab.data.idx as idx

    old = idx.CHUNK
    idx.CHUNK = 784 * 37  # many chunks, the picks spread over them
    try:
        some = read_idx(mnist / "train-images-idx3-ubyte.gz", rows=lambda n: pick)
    finally:
        idx.CHUNK = old
    assert np.array_equal(some, whole[pick])


def test_a_header_that_promises_more_than_the_file_holds_is_refused(tmp_path):
    from filterlab.data.idx import IdxError

    mnist = need_dataset("mnist")
    data = gzip.decompress((mnist / "train-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "cut.gz").write_bytes(gzip.compress(data[:-10]))
    for rows in (None, lambda n: np.arange(3)):
        with pytest.raises(IdxError, match="cut short"):
            read_idx(tmp_path / "cut.gz", rows=rows)
    (tmp_path / "long").write_bytes(data + b"\0")
    with pytest.raises(IdxError, match="holds more"):
        read_idx(tmp_path / "long")
