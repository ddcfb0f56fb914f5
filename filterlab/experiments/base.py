"""What an experiment kind provides, and the few pieces every kind shares.

A kind is two modules in its own package: the package's ``__init__`` holds its :class:`Card` (config class, key
metrics, the result in words, its layers) and imports no torch, so ``filterlab runs``, ``config`` and ``shapes``
stay fast; ``experiment.py`` holds its :class:`Experiment` (inputs, training, figures, model rebuilding), which does.
The registry in ``filterlab.experiments`` maps the kind's name to both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.budget import Estimate
from ..core.geometry import Layer, Row
from ..core.rundir import Run

if TYPE_CHECKING:  # the checkpoint type imports torch; the card side of this module must not
    from ..core.artifacts import Checkpoint


@dataclass(frozen=True)
class Metric:
    """A key result: its summary.json key, a readable name, what it means in one line, and its number format."""

    key: str
    label: str
    meaning: str
    fmt: str = ".3f"

    def format(self, value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float) and self.fmt == "d":  # a mean over seeds of an integer count
            return f"{value:.1f}" if not value.is_integer() else str(int(value))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, self.fmt)
        return str(value)


@dataclass(frozen=True)
class Table:
    """A table for the report: a title, column names, rows of formatted cells and a note on how to read it."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""


def _no_tables(summary: dict[str, Any]) -> list[Table]:
    return []


@dataclass(frozen=True)
class Card:
    """The torch-free description of a kind."""

    kind: str
    title: str
    config_class: type
    metrics: tuple[Metric, ...]  # shown by `runs`, `compare` and the report, in this order
    layers: Callable[[Any], tuple[list[Layer], tuple[int, int, int]]]  # config -> layers and input (C, H, W)
    headline: Callable[[dict[str, Any]], list[str]]  # summary.json -> one or two lines of plain words
    what_happened: Callable[[dict[str, Any]], str]  # summary.json -> a short paragraph for the report
    # config, layer table and (once loaded) the inputs -> resources the run will need
    estimate: Callable[[Any, list[Row], Any], Estimate]
    paths: tuple[str, ...] = ()
    tables: Callable[[dict[str, Any]], list[Table]] = _no_tables  # summary.json -> the kind's own report tables
    # summary.json's own fields and their types (core.runfiles checks), beyond those every kind writes
    summary_fields: Callable[[Any, str], None] | None = None
    # the module whose draw_run(data, out_dir, cmap, dpi) draws a run's figures from plain arrays; the figure helper
    # imports it while the parent imports torch, so a torch-free one keeps torch out of the helper altogether
    figures: str = ""


class NullBoard:
    """Where a training loop sends what TensorBoard shows; this one (output.tensorboard off) drops it all.

    The writer (:class:`filterlab.board.writer.Board`) has the same methods. A loop asks ``enabled`` before it
    computes anything only the board needs (feature maps of the fixed image).
    """

    enabled = False

    def snapshot(self, step: int, filters: dict[str, Any], maps: dict[str, Any] | None = None,
                 weights: dict[str, Any] | None = None, change: bool = True) -> None:
        """Filter grids, feature maps and weight histograms (of ``weights``, else ``filters``) at a snapshot step;
        ``change``: also each filter's change since step 0 (for a kind whose metrics do not hold it)."""

    def fixed_image(self, name: str, pixels: Any, description: str) -> None:
        """The run's fixed input image, once."""

    def record(self, record: dict[str, Any]) -> None:
        """The scalars of one metrics record."""

    def flush(self) -> None:
        """Everything written so far onto the disk (called before each checkpoint)."""


@dataclass
class Hooks:
    """What the run lifecycle hands a training loop: progress, a stop request, divergence, a periodic tick."""

    progress: Callable[[int, int], None]
    should_stop: Callable[[], bool]
    diverged: Callable[[int, float], None] = field(default=lambda step, value: None)
    # called every step (force: at an epoch): heartbeat and the share of the cores; cheap unless work is due
    tick: Callable[..., None] = field(default=lambda step=0, force=False: None)
    board: NullBoard = field(default_factory=NullBoard)  # TensorBoard events (output.tensorboard), or nothing


@dataclass(frozen=True)
class Curve:
    """One panel of `filterlab compare`: a series per run, x against y."""

    title: str
    xlabel: str
    x: Any  # (T,) array
    y: Any  # (T,) array
    xscale: str = "linear"  # or "symlog" for long step axes
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class FigureOptions:
    """What `filterlab visualize` may change about a run's figures."""

    image: str | None = None  # another input for the figures that show one image
    layer: str | None = None  # restrict per-layer figures to this layer
    insight: bool = False  # also the costlier figures of what each filter detects
    cmap: str | None = None  # the diverging map for signed values instead of the run's output.cmap


@dataclass
class Probing:
    """What the insight functions need of a trained run: its model, how [0, 1] pixels become the model's input, its
    class names, and its images on request."""

    model: Any  # nn.Module in eval mode, on the CPU
    scale: Any  # filterlab.insight.probe.InputScale
    classes: tuple[str, ...] | None
    split: Callable[[str], tuple[Any, Any]]  # "test" -> (uint8 images (N, H, W[, C]), labels (N,)); InputError
    image: Callable[[str], Any]  # an image spec -> an Image28 (pixels, label, description) the model takes


@dataclass(frozen=True)
class Experiment:
    """A kind's runtime, everything that needs torch: one function per job, given by the kind's ``experiment.py``."""

    card: Card
    # Load and check the run's inputs before any run folder exists; InputError when they are unusable.
    prepare: Callable[[Any], Any]
    # (cfg, inputs, run, device, hooks, resume checkpoint or None) -> summary: train into the run (from the
    # checkpoint when given), writing checkpoint, snapshots and metrics.
    train: Callable[[Any, Any, Run, Any, Hooks, Checkpoint | None], dict[str, Any]]
    # (run_dir, cfg, options) -> plain arrays for draw, rebuilt from a finished run's files alone.
    figure_data: Callable[[Path, Any, FigureOptions], dict[str, Any]]
    # (data, out_dir, cmap, dpi) -> every figure of the kind from plain arrays (also in the figure helper process).
    draw: Callable[[dict[str, Any], Path, str, int], list[Any]]
    # The trained model, rebuilt from a checkpoint alone, in eval mode on the CPU.
    build_model: Callable[[Checkpoint], Any]
    # (run_dir, cfg, options, out_dir) -> the costlier figures (`visualize --insight`, `--image`) written, and lines
    # for the terminal.
    insight: Callable[[Path, Any, FigureOptions, Path], tuple[list[Any], list[str]]]
    # (run_dir, cfg) -> the run's training curves for `filterlab compare`, one per panel, in a fixed order.
    curves: Callable[[Path, Any], list[Curve]]
    # (run_dir, cfg) -> the trained model and its inputs, for the insight calls (Run.top_patches and the others).
    probing: Callable[[Path, Any], Probing]


def snapshot_schedule(steps: int, every: int, early: bool) -> list[int]:
    """Steps whose filters are kept: 0, every ``every``-th, the last, and powers of two below ``every`` if ``early``."""
    out = {0, steps, *range(0, steps + 1, every)}
    if early:
        out |= {2 ** i for i in range(32) if 2 ** i < min(every, steps)}
    return sorted(out)
