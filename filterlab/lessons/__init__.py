"""The lessons: four Jupyter notebooks shipped inside the package, written out by ``filterlab lessons DIR``.

1. ``1_convolution_by_hand.ipynb``: a hand-made kernel, the sliding window, one output pixel as a sum of products,
   the output-size arithmetic, stride, padding, pooling, and the colour chain 26x26x3 -> ... -> 108 -> 10.
2. ``2_single_image.ipynb``: does a filter trained on one "4" become the 4? Cosines, the binarised look, and a
   weight-decay sweep that shows what makes the published picture.
3. ``3_classifier.ipynb``: the classic two-conv notebook net: how far its filters move, the test patches that
   excite them and the inputs an optimiser draws for them.
4. ``4_saliency.ipynb``: Grad-CAM against gradient x input on a digit of your own, and what Grad-CAM shows on this
   net, across seeds.

Each lesson computes its numbers, writes its findings from them and asserts them in a cell, so a lesson whose claim
stops holding fails when it is run (the slow tests run all four). The notebooks are stored without outputs. They
find their data where the configs do (``FILTERLAB_DATA``). This module imports nothing heavy.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ..core.errors import InputError

LESSONS = ("1_convolution_by_hand.ipynb", "2_single_image.ipynb", "3_classifier.ipynb", "4_saliency.ipynb")


class LessonsError(InputError):
    """The lessons cannot be written where asked; the message names the path and what to do."""


def notebook_text(name: str) -> str:
    """The stored notebook ``name`` (one of :data:`LESSONS`), as JSON text."""
    if name not in LESSONS:
        raise LessonsError(f"{name!r} is not a lesson; the lessons are {', '.join(LESSONS)}")
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def write_lessons(folder: str | os.PathLike[str], force: bool = False) -> list[Path]:
    """Write the four lesson notebooks into ``folder`` (made when missing) and return their paths.

    A lesson file already there is left alone and nothing is written, unless ``force`` is true (then the lessons
    replace it); each file is written under a temporary name and renamed, so none is ever half-written.
    Raises :class:`LessonsError` (a ``ValueError``) naming the path.
    """
    from ..core.rundir import atomic_write_text  # noqa: PLC0415 - kept out of `import filterlab.lessons`

    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise LessonsError(f"{target}: a file is in the way; give a folder")
    paths = [target / name for name in LESSONS]
    for p in paths:
        if p.is_dir() or (p.exists() and not p.is_file()):
            raise LessonsError(f"{p}: something other than a file is in the way; remove it or give another folder")
    there = [p for p in paths if p.exists()]
    if there and not force:
        names = ", ".join(p.name for p in there)
        raise LessonsError(f"{target}: {names} {'is' if len(there) == 1 else 'are'} already there; nothing was "
                           "written (force=True replaces the lessons)")
    texts = [notebook_text(name) for name in LESSONS]  # read all before writing any
    made = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for p, text in zip(paths, texts):
            atomic_write_text(p, text)
    except OSError as e:
        if made:
            for p in paths:
                p.unlink(missing_ok=True)
            try:
                target.rmdir()
            except OSError:
                pass
        raise LessonsError(f"{target}: cannot write the lessons there ({e.strerror or e})") from None
    return paths
