"""Hostile and careless input: every case ends in one line, a meaningful exit status and a clean disk.

Each case runs ``python -m filterlab`` as a real process with its address space capped as ``prlimit
--as=6000000000`` caps it (``resource.setrlimit`` in the child) and a wall-clock limit, from an empty working folder.
A refused case must exit 2 with exactly one line on stderr that starts ``filterlab: error:`` and names the file, key
or value; the working folder must stay empty (no run folder, no output folder) and the run folders it read must be
unchanged. Importing the CUDA build of torch alone takes about 3.2 GB of address space (VmPeak) and 0.7 GB resident,
so the 6 GB cap leaves filterlab under 3 GB; a lower cap would test torch, not filterlab.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, REPO, wait_for
from PIL import Image

from filterlab import experiments
from filterlab.core.artifacts import Checkpoint
from filterlab.core.locks import RunLock
from filterlab.core.runfiles import read_metrics
from filterlab.data.images import _read_png, load_image
from filterlab.lifecycle import StopFlag, train_config

ADDRESS_SPACE = 6_000_000_000
TIMEOUT = float(os.environ.get("FILTERLAB_HOSTILE_TIMEOUT", "30"))  # seconds; each case takes 1-4 s on a quiet CPU
FOUR = REPO / "configs" / "single_four.yaml"
SMOKE = REPO / "configs" / "smoke_two_conv.yaml"
MINI = FIXTURES / "mnist-mini"


# ---------------------------------------------------------------------------------------------------------------------
# Running filterlab as a user would, bounded


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def first(self) -> str:
        return (self.err.splitlines() or [""])[0]


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def filterlab(*args: str | Path, cwd: Path, timeout: float = TIMEOUT) -> Result:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "filterlab", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout, preexec_fn=_cap_memory)
    return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - start)


def state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time (the lock file aside: taking and releasing
    it is not a change to the run)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "lock"}


# ---------------------------------------------------------------------------------------------------------------------
# Hostile inputs, built once per module in a temporary folder


def billion_laughs(kind: str = "single_image") -> str:
    """Ten levels of nine aliases each: 1 KB of YAML that expands to 10**9 strings."""
    lines = [f"kind: {kind}", 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in zip("abcdefghi", "bcdefghij"):
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join([*lines, "name: *j"]) + "\n"


def png_of_size(path: Path, width: int, height: int) -> None:
    """A black 8-bit grey PNG of any size, compressed row by row: a few hundred KB that decode to gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 and a row of zeros
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


class Evil:
    """Unpickled, this would create the marker file: proof that a checkpoint was loaded beyond weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def corrupt(path: Path, how: str, marker: Path) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "random":
        path.write_bytes(random.Random(0).randbytes(len(data)))
    else:  # pickled code
        torch.save({"format": Evil(marker)}, path)


def _train(out: Path, config: Path, sets: list[str]) -> Path:
    cfg = experiments.load_config(config, sets)
    outcome = train_config(cfg, out_root=out)
    assert outcome.status == "completed", outcome.error
    return outcome.run_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs shared by every case (read-only) and two small real runs to copy and break."""
    root = tmp_path_factory.mktemp("hostile")
    inp = root / "inputs"
    inp.mkdir()
    (inp / "laughs.yaml").write_text(billion_laughs())
    with open(inp / "big.yaml", "w") as f:  # 54 MB, as in the issue
        f.write("kind: single_image\n")
        for _ in range(54):
            f.write("# " + "x" * (1 << 20) + "\n")
    (inp / "complex_key.yaml").write_text("kind: single_image\n? [a, b]\n: 1\n")
    (inp / "deep.yaml").write_text("kind: single_image\nname: " + "[" * 5000 + "]" * 5000 + "\n")
    (inp / "bigint.yaml").write_text("kind: single_image\nseed: " + "9" * 5000 + "\n")
    four = load_image("four").pixels
    Image.fromarray(four).save(inp / "four.png")
    Image.fromarray(four.astype(np.uint16) * 257).save(inp / "four16.png")  # 16-bit grey, full range
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(inp / "black.png")
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(inp / "constant.png")
    png_of_size(inp / "bomb.png", 20_000, 20_000)  # 400 megapixels: Pillow's own DecompressionBombError
    png_of_size(inp / "huge.png", 5_000, 5_000)  # 25 megapixels: over filterlab's 4096x4096 cap
    (inp / "a_file").write_text("not a folder\n")
    row = "r: &r [" + ", ".join(["1"] * 5_000) + "]\n"  # 45 KB that a YAML loader with aliases makes 2.5*10**7 numbers
    (inp / "wide_kernel.yaml").write_text(row + "kernel: [" + ", ".join(["*r"] * 5_000) + "]\n")
    quick = ["threads=1", "output.figures=false"]
    base = root / "base"
    runs = {"classifier": _train(base, SMOKE, [*quick, f"data.root={MINI}", "data.train_limit=0", "data.test_limit=0",
                                               "output.snapshot_every=4"]),
            "single_image": _train(base, FOUR, [*quick, "train.steps=20"])}
    return {"inputs": inp, "runs": runs, "marker": root / "PICKLE_WAS_RUN"}


@dataclass
class W:
    """One case's world: shared inputs, its own copies of runs (under ``runs``), an empty working folder."""

    inputs: Path
    base: dict[str, Path]
    runs: Path
    work: Path
    marker: Path

    def i(self, name: str) -> Path:
        return self.inputs / name

    def run(self, kind: str = "classifier", name: str = "ok", **edits: str) -> Path:
        """A copy of a real run at RUNS/NAME/RUN, with files replaced (``meta_json="[1]"``) or broken
        (``checkpoint_pt="truncated"``); ``status`` sets meta.json's status."""
        dest = self.runs / name / f"{kind}-run"
        if not dest.exists():
            shutil.copytree(self.base[kind], dest)
            for key, how in edits.items():
                target = dest / key.replace("_json", ".json").replace("_pt", ".pt").replace("_yaml", ".yaml")
                if key == "status":
                    meta = json.loads((dest / "meta.json").read_text())
                    (dest / "meta.json").write_text(json.dumps({**meta, "status": how}))
                elif how == "missing":
                    target.unlink()
                elif target.suffix == ".pt" and how in ("truncated", "random", "pickled"):
                    corrupt(target, how, self.marker)
                else:
                    target.write_text(how)
        return dest


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[W], list]
    needles: tuple[str, ...] = ()  # in the first line of stderr
    code: int = 2
    check: Callable[[W, Result], None] | None = None
    marks: tuple = field(default=())


def _listing(w: W, r: Result) -> None:
    """One hostile run folder never breaks `filterlab runs`: every run is listed, the good one with its metrics."""
    assert r.err == ""
    rows = {"/" + line.split()[0]: line for line in r.out.splitlines()[1:]
            if line.strip() and not line[0].isspace() and not line.startswith("result of")}
    assert len(rows) == 7, r.out
    good = next((v for k, v in rows.items() if "/ok/" in k), None)
    assert good is not None, r.out
    assert re.search(r"completed\s+0\.\d+", good), good
    assert "stale" in next(v for k, v in rows.items() if "/lock-foreign/" in k)
    for name in ("meta-list", "meta-bad", "meta-deep"):
        assert "unreadable" in next(v for k, v in rows.items() if f"/{name}/" in k)


def _listing_json(w: W, r: Result) -> None:
    records = {Path(x["run"]).parent.name: x for x in json.loads(r.out)}
    assert set(records) == {"ok", "laughs", "meta-list", "meta-bad", "summary-number", "meta-deep", "lock-foreign"}
    assert records["laughs"]["changes"] is None and "alias" in records["laughs"]["error"]
    assert records["summary-number"]["status"] == "unreadable" and records["summary-number"]["metrics"] == {}
    assert "expected a JSON object" in records["summary-number"]["error"]
    assert records["ok"]["metrics"]["test_accuracy"] > 0


def _runs_root(w: W) -> list:
    w.run(name="ok")
    w.run(name="laughs", config_yaml=billion_laughs("classifier"))
    w.run(name="meta-list", meta_json="[1, 2, 3]")
    w.run(name="meta-bad", meta_json='{"status": "interr')
    w.run(name="summary-number", summary_json="42")
    w.run(name="meta-deep", meta_json="[" * 100_000)  # past the JSON parser's recursion limit
    w.run(name="lock-foreign", lock='{"host": "elsewhere", "pid": "x", "heartbeat": "soon"}', status="running")
    return [w.runs]


def _sixteen_bit(w: W, r: Result) -> None:
    run = Path(r.out.strip().splitlines()[-1])
    cosines = [f["weight_cosine_end"] for f in json.loads((run / "summary.json").read_text())["filters"]]
    assert len(cosines) == 5 and all(abs(c) > 0.05 for c in cosines), cosines


def _one_search_list(w: W, r: Result) -> None:
    folders = re.search(r" in (.*?)\. Place", r.first).group(1).split(", ")
    assert len(folders) == len(set(folders)) >= 3, folders


def _not_a_flip(w: W, r: Result) -> None:
    assert "the flip matters" not in r.out and re.search(r"blank|constant", r.out), r.out


def _drawn_from_the_snapshots(w: W, r: Result) -> None:
    """match and compare read snapshots.pt, never checkpoint.pt: a broken checkpoint does not stop them."""
    assert r.err == ""
    assert Path(r.out.strip().splitlines()[-1].removeprefix("figure: ")).exists(), r.out


def _capped_run(w: W, r: Result) -> None:
    run = Path(r.out.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
    assert size < 300 << 20, f"{size:,} bytes in {run}"



CASES = [
    # 1. Memory exhaustion from small YAML
    Case("laughs-config", lambda w: ["config", w.i("laughs.yaml")], ("laughs.yaml", "line 3", "alias *a")),
    Case("laughs-train", lambda w: ["train", w.i("laughs.yaml"), "--out", w.work / "out"], ("laughs.yaml", "alias")),
    Case("laughs-sweep", lambda w: ["sweep", w.i("laughs.yaml"), "--grid", "train.lr=0.1,0.2", "--out",
                                    w.work / "out"], ("laughs.yaml", "alias")),
    Case("laughs-in-a-run-folder", lambda w: ["runs", *_runs_root(w)], code=0, check=_listing),
    Case("hostile-run-folders-json", lambda w: ["runs", *_runs_root(w), "--json"], code=0, check=_listing_json),
    Case("54-MB-config", lambda w: ["train", w.i("big.yaml"), "--out", w.work / "out"],
         ("big.yaml", "56,623,", "at most 65,536")),
    Case("config-from-dev-zero", lambda w: ["config", "/dev/zero"],
         ("/dev/zero", "a character device, not a regular file")),
    Case("deep-nesting", lambda w: ["config", w.i("deep.yaml")], ("deep.yaml", "nested more than 20 levels")),
    Case("5000-digit-integer", lambda w: ["config", w.i("bigint.yaml")], ("bigint.yaml", "4300 digits")),
    Case("unsafe-tag", lambda w: ["config", FOUR, "--set", "name=!!python/object/apply:os.system [id]"],
         ("--set name", "the tag '!!python/object/apply:os.system'")),
    # 2. Images
    Case("16-bit-png", lambda w: ["train", FOUR, "--set", f"data.image={w.i('four16.png')}", "--set", "data.target=4",
                                  "--set", "train.steps=30", "--set", "output.figures=false", "--out", w.work / "out",
                                  "-q"], code=0, check=_sixteen_bit),
    Case("blank-image", lambda w: ["train", FOUR, "--set", f"data.image={w.i('black.png')}", "--out", w.work / "out"],
         ("data.image", "black.png", "blank: every pixel is 0")),
    Case("constant-image", lambda w: ["train", FOUR, "--set", f"data.image={w.i('constant.png')}", "--out",
                                      w.work / "out"], ("data.image", "constant.png", "constant: every pixel is")),
    Case("convolve-blank-image", lambda w: ["convolve", "--kernel", "sobel_x", "--image", w.i("black.png"), "--out",
                                            w.work / "out"], code=0, check=_not_a_flip),
    # 3. One line instead of a traceback
    *[Case(f"{how}-checkpoint-{cmd}", argv, ("checkpoint.pt", "not a filterlab checkpoint"))
      for how in ("truncated", "random", "pickled")
      for cmd, argv in (
          ("visualize", lambda w, how=how: ["visualize", w.run(checkpoint_pt=how), "--out", w.work / "figs"]),
          ("resume", lambda w, how=how: ["train", "--resume", w.run(checkpoint_pt=how, status="interrupted")]))],
    *[Case(f"{how}-checkpoint-{cmd}", argv, code=0, check=_drawn_from_the_snapshots)
      for how in ("truncated", "pickled")
      for cmd, argv in (
          ("match", lambda w, how=how: ["match", w.run(checkpoint_pt=how)]),
          ("compare", lambda w, how=how: ["compare", w.run(checkpoint_pt=how), w.run(name="b"), "--out",
                                          w.work / "cmp"]))],
    *[Case(f"{how}-snapshots-{cmd}", argv, ("snapshots.pt", "not a filterlab snapshot file"))
      for how in ("truncated", "random", "pickled")
      for cmd, argv in (
          ("visualize", lambda w, how=how: ["visualize", w.run(snapshots_pt=how), "--out", w.work / "figs"]),
          ("match", lambda w, how=how: ["match", w.run(snapshots_pt=how)]),
          ("compare", lambda w, how=how: ["compare", w.run(snapshots_pt=how), w.run(name="b")]),
          ("compare-out", lambda w, how=how: ["compare", w.run(snapshots_pt=how), w.run(name="b"), "--out",
                                              w.work / "new" / "cmp"]))],
    Case("missing-summary-visualize", lambda w: ["visualize", w.run(summary_json="missing"), "--out", w.work / "f"],
         ("summary.json", "missing")),
    Case("unreadable-meta-resume", lambda w: ["train", "--resume", w.run(meta_json='{"status": "interr')],
         ("meta.json", "not readable JSON")),
    Case("meta-not-an-object-resume", lambda w: ["train", "--resume", w.run(meta_json="[1, 2, 3]")],
         ("meta.json", "expected a JSON object, got list")),
    *[Case(f"decompression-bomb-{cmd}", argv, ("bomb.png", "decompression bomb", "at most 16,777,216 pixels"))
      for cmd, argv in (
          ("train", lambda w: ["train", FOUR, "--set", f"data.image={w.i('bomb.png')}", "--out", w.work / "out"]),
          ("visualize", lambda w: ["visualize", w.run(), "--image", w.i("bomb.png"), "--out", w.work / "figs"]))],
    Case("decompression-bomb-convolve", lambda w: ["convolve", "--kernel", "sobel_x", "--image", w.i("bomb.png")],
         ("bomb.png", "decompression bomb")),
    Case("25-megapixel-png", lambda w: ["train", FOUR, "--set", f"data.image={w.i('huge.png')}", "--out",
                                        w.work / "out"], ("huge.png", "5000x5000 pixels is too large")),
    Case("complex-key", lambda w: ["train", w.i("complex_key.yaml"), "--out", w.work / "out"],
         ("complex_key.yaml", "line 2", "a key must be a plain name")),
    Case("out-is-a-file-visualize", lambda w: ["visualize", w.run(), "--out", w.i("a_file")],
         ("--out", "a_file", "a file is in the way")),
    Case("out-is-a-file-compare", lambda w: ["compare", w.run(), w.run(name="b"), "--out", w.i("a_file")],
         ("--out", "a_file", "a file is in the way")),
    Case("convolve-kernel-of-aliases", lambda w: ["convolve", "--kernel", w.i("wide_kernel.yaml")],
         ("--kernel", "wide_kernel.yaml", "alias")),
    Case("convolve-padding-1000000", lambda w: ["convolve", "--kernel", "sobel_x", "--padding", "1000000", "--out",
                                                w.work / "out"], ("--padding", "1000000")),
    # 4. Refused before the run folder exists
    Case("seed-2**63", lambda w: ["train", FOUR, "--seed", str(2**63), "--out", w.work / "out"],
         ("seed", "9223372036854775808 is out of range", "<= 4294967295")),
    Case("geometry-that-does-not-fit", lambda w: ["train", SMOKE, "--set", "model.kernel_size=[28,28]", "--set",
                                                  "model.padding=[0,0]", "--out", w.work / "out"],
         ("model", "pool1", "does not fit its 1x1 input")),
    Case("geometry-in-shapes", lambda w: ["shapes", SMOKE, "--set", "model.kernel_size=[28,28]", "--set",
                                          "model.padding=[0,0]"], ("smoke_two_conv.yaml", "does not fit its 1x1")),
    Case("hidden-1e9", lambda w: ["train", SMOKE, "--set", "model.hidden=1000000000", "--out", w.work / "out"],
         ("model.hidden", "1000000000 is out of range", "<= 65536")),
    Case("num-classes-2e9", lambda w: ["train", FOUR, "--set", "model.num_classes=2000000000", "--out",
                                       w.work / "out"], ("model.num_classes", "GiB of memory", "lower model.num")),
    Case("steps-10**12", lambda w: ["train", FOUR, "--set", f"train.steps={10**12}", "--out", w.work / "out"],
         ("train.steps", "1,000,000,000,000 training steps", "at most 1,000,000,000")),
    Case("epochs-1e300", lambda w: ["train", SMOKE, "--set", "train.epochs=1e300", "--set",
                                    "output.snapshot_every=1e300", "--out", w.work / "out"],
         ("train.epochs", "training steps", "at most 1,000,000,000")),
    Case("batch-1e9", lambda w: ["train", SMOKE, "--set", "train.batch_size=1000000000", "--out", w.work / "out"],
         ("train.batch_size", "GiB of memory", "lower train.batch_size")),
    Case("sweep-steps-10**12", lambda w: ["sweep", FOUR, "--grid", f"train.steps=100,{10**12}", "--out",
                                          w.work / "out"], ("train.steps", "at most 1,000,000,000")),
    Case("filters-4096", lambda w: ["train", FOUR, "--set", "model.filters=4096", "--out", w.work / "out"],
         ("output.snapshot_every", "snapshots would take 1.3 GiB", "at most 1.0 GiB")),
    Case("filters-4096-50-steps", lambda w: ["train", FOUR, "--set", "model.filters=4096", "--set", "train.steps=50",
                                             "--set", "output.figures=false", "--out", w.work / "out", "-q"],
         code=0, check=_capped_run),
    Case("filters-4096-figures", lambda w: ["train", FOUR, "--set", "model.filters=4096", "--set", "train.steps=50",
                                            "--out", w.work / "out", "-q"], code=0, check=_capped_run),
    Case("threads-10**8", lambda w: ["train", FOUR, "--set", "threads=100000000", "--out", w.work / "out"],
         ("threads", "100000000 is out of range", "<= 1024")),
    Case("name-with-a-lone-surrogate", lambda w: ["train", FOUR, "--set", 'name="\\ud800"', "--out", w.work / "out"],
         ("name", "lone surrogates")),
    # 6. Smaller
    Case("compare-one-run", lambda w: ["compare", w.run()], ("compare needs two or more run folders, got 1",)),
    Case("kind-switch", lambda w: ["config", SMOKE, "--set", "kind=single_image"],
         ("'data.dataset' is a key of kind classifier, not of kind single_image",)),
    Case("data-search-list", lambda w: ["train", SMOKE, "--set", f"data.root={w.work / 'nowhere'}", "--out",
                                        w.work / "out"], ("data.root", "mnist train split not found"),
         check=_one_search_list),
    Case("visualize-bad-layer-leaves-no-folder", lambda w: ["visualize", w.run(), "--layer", "conv9", "--out",
                                                            w.work / "new" / "figs"], ("--layer", "conv9")),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_hostile_input(case: Case, world, tmp_path):
    w = W(world["inputs"], world["runs"], tmp_path / "runs", tmp_path / "work", world["marker"])
    w.runs.mkdir()
    w.work.mkdir()
    argv = case.argv(w)
    inputs_before, runs_before = state(w.inputs), state(w.runs)
    r = filterlab(*argv, cwd=w.work)
    assert r.code == case.code, (r.code, r.err[-3000:])
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err[-3000:]
    if case.code == 2:
        assert r.err.count("\n") == 1 and r.first.startswith("filterlab: error: "), r.err
        for needle in case.needles:
            assert needle in r.first, (needle, r.first)
        assert list(w.work.iterdir()) == [], "a refused command left files behind"
        assert state(w.runs) == runs_before, "a refused command changed a run folder"
    if case.check is not None:
        case.check(w, r)
    assert state(w.inputs) == inputs_before
    assert not w.marker.exists(), "a pickled object in a run file was executed"


# ---------------------------------------------------------------------------------------------------------------------
# Images read into the same 0-255 grey, whatever their mode


@pytest.mark.parametrize("mode", ["I;16", "I", "P", "LA", "RGB", "RGBA", "CMYK"])
def test_every_image_mode_reads_to_the_same_grey(tmp_path, mode):
    """The article's 4 saved in each mode reads back to exactly its 8-bit grey values, full range kept."""
    four = load_image("four").pixels
    im = Image.fromarray(four)
    if mode == "I;16":
        im = Image.fromarray(four.astype(np.uint16) * 257)
    elif mode == "I":
        im = Image.fromarray(four.astype(np.int32) * 257, mode="I")
    elif mode == "LA":
        im = Image.merge("LA", (im, Image.new("L", im.size, 255)))
    elif mode == "CMYK":
        im = Image.merge("CMYK", (*[Image.new("L", im.size, 0)] * 3, Image.fromarray(255 - four)))
    else:
        im = im.convert(mode)
    path = tmp_path / ("four.tiff" if mode in ("CMYK", "I") else "four.png")  # PNG has no 32-bit or CMYK mode
    im.save(path)
    got = _read_png(path)
    assert got.dtype == np.uint8 and np.array_equal(got, four), (mode, int(got.max()), int(four.max()))


# ---------------------------------------------------------------------------------------------------------------------
# Resume: from another working folder; never two processes in one run


def test_resume_from_another_folder_ends_where_an_uninterrupted_run_ends(tmp_path, monkeypatch):
    """A classifier run with a relative data.root, interrupted mid-epoch, resumed by a new process started in another
    folder (as a requeued cluster job is), ends bit for bit where the same run uninterrupted ends."""
    rel = os.path.relpath(MINI, REPO)
    sets = [f"data.root={rel}", "data.train_limit=0", "data.test_limit=0", "train.epochs=2", "train.batch_size=32",
            "output.figures=false", "threads=1", "output.snapshot_every=5"]
    monkeypatch.chdir(REPO)
    cfg = experiments.load_config(SMOKE, sets)
    ref = train_config(cfg, out_root=tmp_path / "ref")
    assert ref.status == "completed", ref.error
    calls = iter(range(10**6))

    class StopAfter(StopFlag):
        def __call__(self) -> bool:
            if next(calls) >= 20:  # inside the second epoch (16 steps each)
                self.signum = signal.SIGINT
            return self.signum is not None

    cut = train_config(cfg, out_root=tmp_path / "cut", stop=StopAfter())
    assert cut.status == "interrupted"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = filterlab("train", "--resume", os.path.relpath(cut.run_dir, elsewhere), "-q", cwd=elsewhere, timeout=120)
    assert r.code == 0, r.err
    assert Path(r.out.strip().splitlines()[-1]).resolve() == cut.run_dir.resolve()
    assert list(elsewhere.iterdir()) == []
    a, b = Checkpoint.load(ref.run_dir), Checkpoint.load(cut.run_dir)
    assert a.step == b.step > 20 and a.model.keys() == b.model.keys()
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    moments = lambda c: [t for s in c.training["optimizer"]["state"].values() for t in s.values()]
    assert all(torch.equal(x, y) for x, y in zip(moments(a), moments(b)))
    strip = lambda d: [{k: v for k, v in m.items() if k != "train_seconds"} for m in read_metrics(d)]
    assert strip(ref.run_dir) == strip(cut.run_dir)
    saved = experiments.load_config(cut.run_dir / "config.yaml")
    assert Path(saved.data.root).is_absolute()
    meta = json.loads((cut.run_dir / "meta.json").read_text())
    assert meta["paths_as_written"]["data.root"] == rel and meta["status"] == "completed"


def test_a_live_run_is_never_resumed_and_a_dead_one_is_stale(tmp_path):
    """--resume of a run a live process holds is refused; killed, the run shows as stale and is taken over, and a
    second resume while the first one trains is refused again (no lost "resumed" record)."""
    out = tmp_path / "out"
    sets = [f"data.root={MINI}", "data.train_limit=0", "data.test_limit=0", "train.epochs=100000", "threads=1",
            "output.snapshot_every=100000000", "output.figures=false", "train.schedule=none"]
    p = _popen(tmp_path, "train", SMOKE, "--out", out, "-q", *[x for s in sets for x in ("--set", s)])
    try:
        wait_for(lambda: any(out.glob("*/*/checkpoint.pt")), timeout=120)
        run = next(out.glob("*/*"))
        r = filterlab("train", "--resume", run, cwd=tmp_path)
        assert r.code == 2 and r.err.count("\n") == 1, r.err
        assert f"the run is in progress (pid {p.pid})" in r.first
        assert json.loads(filterlab("runs", out, "--json", cwd=tmp_path).out)[0]["status"] == "running"
    finally:
        p.kill()
        p.communicate()
    assert json.loads(filterlab("runs", out, "--json", cwd=tmp_path).out)[0]["status"] == "stale"
    first = _popen(tmp_path, "train", "--resume", run, "-q")
    try:
        wait_for(lambda: len(json.loads((run / "meta.json").read_text()).get("resumed", [])) == 1, timeout=120)
        second = filterlab("train", "--resume", run, cwd=tmp_path)
        assert second.code == 2 and f"the run is in progress (pid {first.pid})" in second.first, second.err
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "interrupted" and len(meta["resumed"]) == 1


def _popen(cwd: Path, *args: str | Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "filterlab", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_single_image_training_keeps_its_lock_alive(tmp_path, monkeypatch):
    """The heartbeat that tells other hosts a run is alive is refreshed while a single-image run trains."""
    beats = []
    monkeypatch.setattr(RunLock, "heartbeat", lambda self, force=False, now=None: beats.append(force))
    cfg = experiments.load_config(FOUR, ["train.steps=50", "output.figures=false"])
    assert train_config(cfg, out_root=tmp_path).status == "completed"
    assert beats.count(False) >= 50
