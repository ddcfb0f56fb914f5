"""filterlab's public Python API (``import filterlab as fl``): what a command does, a call does, with the same
validation and messages.

- :func:`load_config` reads and validates a config (a YAML file, a dict or a config object, then overrides).
- :func:`train` trains one config into a new run folder and returns its :class:`Run`; :func:`resume` continues an
  interrupted one; :func:`open_run` opens a finished one.
- A :class:`Run` gives its config, summary, metrics, model, filters at every snapshot, figures and the insight
  results (:class:`Insight`: numbers, a caption, and a matplotlib Figure on request).

This module imports no torch at import time (``filterlab --help`` stays fast); the calls that train or compute import
what they need when they run.
"""

from __future__ import annotations

import base64
import html
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import experiments
from .core import config as C
from .core.errors import ConfigError, InputError
from .core.rundir import (
    CONFIG_FILE,
    FIGURES_DIR,
    META_FILE,
    SNAPSHOTS_FILE,
    SUMMARY_FILE,
    is_run_dir,
)
from .core.runfiles import SIDECAR, read_json_object, read_meta, read_metrics
from .notebook import figure_png, in_notebook, inline

if TYPE_CHECKING:  # these import torch and matplotlib; the API's import must not
    import pandas
    import torch
    from matplotlib.figure import Figure

load_config = experiments.load_config

__all__ = ["Comparison", "ConfigError", "FigureFile", "InputError", "Insight", "Run", "RunTable", "Sweep", "compare",
           "dump_config", "load_config", "open_run", "resume", "runs", "sweep", "tensorboard", "train"]

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | Any


# ---------------------------------------------------------------------------------------------------------------------
# Showing a figure in a notebook


def _img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="max-width:100%">'


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td style='text-align:left'>"
                    f"{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


@dataclass(frozen=True)
class FigureFile:
    """One figure a run wrote: its PNG, caption and alt text (figures/NAME.png and NAME.json)."""

    name: str
    path: Path
    caption: str
    alt: str

    def _repr_png_(self) -> bytes:
        return self.path.read_bytes()

    def _repr_html_(self) -> str:
        return f"<figure>{_img_tag(self.path.read_bytes(), self.alt)}<figcaption>{html.escape(self.caption)}" \
               "</figcaption></figure>"

    def __str__(self) -> str:
        return f"{self.path}: {self.caption}"


@dataclass
class Insight:
    """One insight result: the numbers (``data``, an object of :mod:`filterlab.insight`), the caption computed from
    them, and :meth:`figure`, which draws them. ``numbers`` is a few of them in words, for the table a notebook shows.
    """

    name: str  # "filter_change", "top_patches", "feature_vis", "saliency"
    layer: str
    data: Any
    caption: str
    alt: str
    numbers: list[tuple[str, str]]
    draw: Callable[[], Any] = field(repr=False)
    lines: list[str] = field(default_factory=list, repr=False)  # what the command prints for it, where it has any

    _png: bytes | None = field(default=None, init=False, repr=False)

    def figure(self) -> Figure:
        """A new matplotlib Figure of the numbers (nothing is saved; ``fig.savefig(path)`` saves it); a notebook
        shows it."""
        return inline(self.draw())

    def _repr_png_(self) -> bytes:
        if self._png is None:  # a notebook asks for PNG and HTML of the same result: draw it once
            self._png = figure_png(self.figure())
        return self._png

    def _repr_html_(self) -> str:
        return (f"<div><b>{html.escape(self.name)} ({html.escape(self.layer)})</b>{_table(self.numbers)}"
                f"<figure>{_img_tag(self._repr_png_(), self.alt)}<figcaption>{html.escape(self.caption)}"
                "</figcaption></figure></div>")

    def __str__(self) -> str:
        return "\n".join([f"{self.name} ({self.layer})", *(f"  {k}: {v}" for k, v in self.numbers), self.caption])

    def __repr__(self) -> str:  # the plain text a notebook shows beside the HTML: a few lines, not the arrays
        return "\n".join([f"<Insight {self.name} of {self.layer}>", *(f"  {k}: {v}" for k, v in self.numbers)])


# ---------------------------------------------------------------------------------------------------------------------
# A run


class Run:
    """A run folder, read on request: ``path`` (absolute), ``config``, ``meta``, ``status``, ``summary``,
    ``metrics``, the trained model, the filters at every snapshot, the figures and the insight results.

    The config and the snapshots are read once per object; meta, summary and metrics each time they are asked for
    (a run that is still training changes them).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(os.path.abspath(path))  # absolute: the Run outlives a change of working folder
        if not is_run_dir(self.path):
            raise InputError(f"{self.path}: not a run directory (no {META_FILE} and {CONFIG_FILE})")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"

    # --- files ----------------------------------------------------------------------------------------------------

    @cached_property
    def config(self) -> Any:
        """The run's resolved config (frozen dataclasses), as saved in config.yaml."""
        return load_config(self.path / CONFIG_FILE)

    @property
    def kind(self) -> str:
        return str(self.config.kind)

    @property
    def meta(self) -> dict[str, Any]:
        """meta.json: versions, device, seed, threads, command line, times, status."""
        return read_meta(self.path)

    @property
    def status(self) -> str:
        """running, completed, failed, interrupted or diverged (a running run whose process is gone: stale)."""
        from .runtable import live_status  # noqa: PLC0415 - the locks module, only when a status is asked for

        return str(live_status(self.path, self.meta.get("status")))

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json, the final metrics (empty before the run has one)."""
        path = self.path / SUMMARY_FILE
        return experiments.read_summary(self.path, self.kind) if path.exists() else {}

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl: one record per logged step or epoch, as written."""
        return read_metrics(self.path)

    def metrics_frame(self) -> pandas.DataFrame:
        """The metrics as a pandas DataFrame (pandas is not a dependency of filterlab: install it for this)."""
        try:
            import pandas  # noqa: PLC0415 - optional: only this method needs it
        except ImportError:
            raise ImportError("Run.metrics_frame needs pandas (pip install pandas); Run.metrics gives the same "
                              "records as a list of dicts") from None
        return pandas.DataFrame.from_records(self.metrics)

    # --- tensors --------------------------------------------------------------------------------------------------

    def model(self) -> torch.nn.Module:
        """The trained model rebuilt from checkpoint.pt alone, on the CPU, in eval mode. A checkpoint that is not
        this run's (another run's run id, or a model config other than config.yaml's) is refused, as `visualize`
        refuses it."""
        return experiments.get(self.kind).build_model(self._tied_checkpoint())

    @cached_property
    def _snapshots(self) -> Any:
        """snapshots.pt, tied to the run as `visualize` ties it: its run id that of meta.json and summary.json, and
        its filter shapes those of checkpoint.pt where that loads (a broken checkpoint does not stop what reads
        the snapshots alone)."""
        from .core.artifacts import load_tied  # noqa: PLC0415 - imports torch

        return load_tied(self.path, C.tied(self.config.model), checkpoint_if_readable=True)[1]

    @property
    def layers(self) -> list[str]:
        """The conv layers whose filters were snapshotted, first layer first."""
        return list(self._snapshots.weights)

    @property
    def steps(self) -> list[int]:
        """The training steps of the snapshots (the first is 0, before any step)."""
        return [int(s) for s in self._snapshots.steps]

    def filters(self, layer: str | None = None) -> torch.Tensor:
        """A layer's filters at every snapshot: (S, out_channels, in_channels, k, k), S = len(run.steps)."""
        weights = self._snapshots.weights
        name = layer or self.layers[0]
        if name not in weights:
            raise InputError(f"layer: {name!r} is not one of {', '.join(weights)}")
        return weights[name]

    # --- figures --------------------------------------------------------------------------------------------------

    @property
    def figures(self) -> list[FigureFile]:
        """The figures the run drew (figures/*.png with their captions), in the report's order."""
        from .viz.report import figure_entries  # noqa: PLC0415 - the report's reading order

        out = []
        for name, path, info in figure_entries(self.path / FIGURES_DIR):
            if path.suffix == ".png":
                out.append(FigureFile(name, path, str(info.get("caption", "")), str(info.get("alt", ""))))
        return out

    def figure(self, name: str) -> FigureFile:
        """One figure by name (``run.figure("evolution")``)."""
        found = {f.name: f for f in self.figures}
        if name not in found:
            raise InputError(f"figure: {name!r} is not one of {', '.join(found) or '(none: the run drew no figures)'}")
        return found[name]

    def key_figure(self) -> FigureFile | None:
        """The figure a notebook shows for the run: the filters' evolution, or the first figure there is."""
        figures = self.figures
        return next((f for f in figures if f.name == "evolution"), figures[0] if figures else None)

    # --- insight --------------------------------------------------------------------------------------------------

    @cached_property
    def _probing(self) -> Any:
        self._tied_checkpoint()  # every kind's model, refused when its checkpoint is another run's
        return experiments.get(self.kind).probing(self.path, self.config)

    def _tied_checkpoint(self) -> Any:
        from .core.artifacts import load_tied_checkpoint  # noqa: PLC0415 - imports torch

        return load_tied_checkpoint(self.path, C.tied(self.config.model))

    def _probe(self, layer: str | None, last: bool = False) -> Any:
        from .insight.probe import conv_probes  # noqa: PLC0415 - imports torch

        p = self._probing
        probes = conv_probes(p.model, self._input_shape())
        if layer is None:
            return probes[-1] if last else probes[0]
        found = {q.name: q for q in probes}
        if layer not in found:
            raise InputError(f"layer: {layer!r} is not one of {', '.join(found)}")
        return found[layer]

    def _input_shape(self) -> tuple[int, int, int]:
        return experiments.card(self.kind).layers(self.config)[1]

    def filter_change(self, layer: str | None = None) -> Insight:
        """How far each filter of ``layer`` (default: the first) moved from its start, at every snapshot."""
        from .insight import change as ch  # noqa: PLC0415 - NumPy and matplotlib
        from .insight import figures as draw  # noqa: PLC0415

        name = layer or self.layers[0]
        c = ch.filter_change(name, self.filters(name), self.steps)
        cmap = self.config.output.cmap
        vlim, clim = draw.change_scales(self.filters(name), c)
        caption, alt = ch.caption_change(c, cmap, vlim, clim)
        s = ch.summary(c)
        numbers = [("filters", str(c.filters)), ("steps", f"{self.steps[0]} to {self.steps[-1]}"),
                   ("relative change, median", f"{s['relative_change_median']:.3g}"),
                   ("cosine with the start, median", f"{s['cosine_to_initial_median']:.3g}")]
        return Insight("filter_change", name, c, caption, alt, numbers,
                       lambda: draw.draw_filter_change(c, cmap, vlim, clim))

    def top_patches(self, layer: str | None = None, k: int = 9, split: str = "test") -> Insight:
        """The ``k`` image patches of ``split`` that excite each filter of ``layer`` (default: the first) most."""
        from .insight import figures as draw  # noqa: PLC0415 - imports torch and matplotlib
        from .insight.patches import caption_top_patches, top_patches  # noqa: PLC0415

        if not isinstance(k, int) or not 1 <= k <= 100:
            raise InputError(f"k: {k!r}; accepted: an integer from 1 to 100")
        probe, p = self._probe(layer), self._probing
        images, labels = p.split(split)
        tp = top_patches(p.model, [probe], images, labels, p.scale, k)[probe.name]
        caption, alt = caption_top_patches(tp, split)
        numbers = [("filters", str(tp.channels)), ("images searched", f"{tp.n_images:,}"),
                   ("receptive field", f"{tp.field.size}x{tp.field.size}"),
                   ("strongest activation, median over filters", f"{float(_median(tp.values[:, 0])):.3g}")]
        return Insight("top_patches", probe.name, tp, caption, alt, numbers, lambda: draw.draw_top_patches(tp))

    def feature_vis(self, layer: str | None = None, steps: int = 200, seed: int = 0, k: int = 9) -> Insight:
        """For each filter of ``layer`` (default: the first), an input optimised to excite it, beside its strongest
        test patches (``k`` of them searched)."""
        from .insight import figures as draw  # noqa: PLC0415 - imports torch and matplotlib
        from .insight.featvis import caption_feature_vis, comparison, feature_visualisation  # noqa: PLC0415

        if not isinstance(steps, int) or not 1 <= steps <= 10_000:
            raise InputError(f"steps: {steps!r}; accepted: an integer from 1 to 10,000")
        tops = self.top_patches(layer, k)
        tp, p = tops.data, self._probing
        probe = self._probe(tops.layer)
        fv = feature_visualisation(p.model, probe, p.scale, self._input_shape(), steps=steps, seed=seed)
        show = min(3, k)
        caption, alt = caption_feature_vis(fv, tp.values[:, 0], tp.n_images, show)
        cmp = comparison(fv, tp.values[:, 0], tp.best_mean)
        numbers = [("filters", str(len(fv.value))), ("optimisation steps", str(steps)),
                   ("filters whose optimised input beats every test patch", str(cmp["above_dataset"]))]
        return Insight("feature_vis", probe.name, fv, caption, alt, numbers,
                       lambda: draw.draw_feature_vis(fv, tp, show))

    def saliency(self, image: str, target: int | None = None) -> Insight:
        """Class probabilities, Grad-CAM and HiResCAM on the last conv layer, and gradient x input, for one image
        (a spec such as ``"test:first-7"``, ``"digit-3"`` or a PNG path)."""
        import numpy as np  # noqa: PLC0415 - NumPy and torch only when computing

        from .insight import figures as draw  # noqa: PLC0415
        from .insight.saliency import caption_saliency, explain  # noqa: PLC0415

        p = self._probing
        img = p.image(image)
        probe = self._probe(None, last=True)
        n = len(p.classes) if p.classes else int(p.model(p.scale.from_uint8(np.asarray(img.pixels)[None])).shape[1])
        if target is not None and (isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < n):
            raise InputError(f"target: {target!r}; accepted: a class index from 0 to {n - 1}")
        s = explain(p.model, probe, p.scale, np.asarray(img.pixels), target, p.classes)
        cmap = self.config.output.cmap
        caption, alt = caption_saliency(s, cmap)
        numbers = [("image", img.description), ("predicted", f"{s.classes[s.predicted]} "
                                                             f"({100 * s.probs[s.predicted]:.1f}%)"),
                   ("explained class", s.classes[s.target]), ("layer", s.layer)]
        return Insight("saliency", probe.name, s, caption, alt, numbers, lambda: draw.draw_saliency(s, cmap))

    def nearest_kernels(self, save: bool = False) -> Insight:
        """Each first-layer filter's nearest hand-made kernel by |cosine| (``filterlab match``), trained and at step 0
        (the chance level); ``data`` is one dict per filter. ``save`` also writes nearest_kernels.png, its caption
        sidecar and nearest_kernels.jsonl into the run's figures/ folder (``lines`` then ends with the figure)."""
        from .explain import match as M  # noqa: PLC0415 - NumPy and matplotlib

        if not (self.path / SNAPSHOTS_FILE).is_file():
            raise InputError(f"{self.path}: not a run directory with snapshots.pt")
        weights = self.filters().sum(2).numpy()  # (S, N, k, k): summed over input channels
        rows, rows0 = M.paired(weights)
        cmap, step = self.config.output.cmap, self.steps[-1]
        drawn = M.match_figure(weights[-1], rows, rows0, step, cmap)
        numbers = [("filters", str(len(rows))),
                   ("mean best |cosine|, trained", f"{_mean_abs(rows):.3f}"),
                   ("mean best |cosine|, step 0 (chance)", f"{_mean_abs(rows0):.3f}")]
        lines = M.table_lines(rows)
        if save:
            lines.append(f"figure: {M.write(drawn, rows, self.path / FIGURES_DIR, self.config.output.dpi)}")
        return Insight("nearest_kernels", self.layers[0], rows, drawn.caption, drawn.alt, numbers,
                       lambda: M.match_figure(weights[-1], rows, rows0, step, cmap).fig, lines)

    def redraw(self, out: str | os.PathLike[str] | None = None, *, image: str | None = None,
               layer: str | None = None, cmap: str | None = None, insight: bool = False) -> list[FigureFile]:
        """Draw the run's figures again from its files (``filterlab visualize``), into ``out`` (default: its own
        figures/ folder, and its report is rewritten); ``image`` another input for the figures that show one,
        ``insight`` also the costlier insight figures."""
        from .viz.visualize import visualize  # noqa: PLC0415 - imports torch and matplotlib

        paths, _ = visualize(self.path, image=image, layer=layer, cmap=cmap, out=Path(out) if out is not None else None,
                             insight=insight)
        out_dir = Path(out) if out is not None else self.path / FIGURES_DIR
        found = {f.path: f for f in self.figures} if out is None else {}
        return [found.get(p) or _figure_file(p) for p in paths if p.suffix == ".png" and p.parent == out_dir]

    def export_tensorboard(self) -> Path:
        """Write TensorBoard event files for a finished run trained without them, from its snapshots and metrics,
        into RUN/tensorboard (returned); :func:`tensorboard` then shows it."""
        from .board import require  # noqa: PLC0415

        require("tensorboard")
        from .board.writer import export  # noqa: PLC0415 - imports torch and TensorBoard

        self._snapshots  # noqa: B018 - what the events are made of, refused when it is another run's
        return export(self.path)

    # --- notebook faces -------------------------------------------------------------------------------------------

    def _rows(self) -> list[tuple[str, Any]]:
        meta = self.meta
        rows: list[tuple[str, Any]] = [("run", self.path), ("kind", meta.get("kind")), ("status", self.status),
                                       ("seed", meta.get("seed")), ("device", meta.get("device"))]
        summary = self.summary
        kind = meta.get("kind")
        if kind in experiments.kinds():
            rows += [(m.label, m.format(summary.get(m.key))) for m in experiments.card(kind).metrics]
        if meta.get("error"):
            rows.append(("error", meta["error"]))
        return rows

    def __str__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._rows())

    def _repr_html_(self) -> str:
        fig = self.key_figure()
        shown = fig._repr_html_() if fig is not None else "<p>(no figures)</p>"
        return f"<div>{_table(self._rows())}{shown}</div>"

    def _repr_png_(self) -> bytes | None:
        fig = self.key_figure()
        return fig._repr_png_() if fig is not None else None


def _mean_abs(rows: list[dict[str, Any]]) -> float:
    return sum(abs(r["cosine"]) for r in rows) / len(rows)


def _figure_file(png: Path) -> FigureFile:
    meta = png.with_suffix(".json")
    info = read_json_object(meta, SIDECAR) if meta.is_file() else {}  # checked by the sidecar's reader
    return FigureFile(png.stem, png, str(info.get("caption", "")), str(info.get("alt", "")))


def _median(values: Any) -> float:
    import numpy as np  # noqa: PLC0415 - only when a result is summarised

    return float(np.median(np.asarray(values, dtype=float)))


def open_run(path: str | os.PathLike[str]) -> Run:
    """The run in folder ``path`` (what ``fl.train`` returned, from any later session)."""
    return Run(path)


# ---------------------------------------------------------------------------------------------------------------------
# Training


class NotebookProgress:
    """A progress bar in a Jupyter output cell: an HTML ``<progress>`` element updated in place.

    rich's live display needs ipywidgets inside Jupyter (not a dependency of filterlab), so a notebook gets this
    instead; on a terminal the run's rich bar is used.
    """

    def __init__(self, label: str):
        from IPython.display import HTML, display  # noqa: PLC0415 - only inside a notebook kernel

        self.label, self._html = label, HTML
        self.t0 = self.last = time.monotonic()
        self.handle = display(HTML(self._text(0, 1)), display_id=True)

    def _text(self, step: int, total: int) -> str:
        return (f"<progress value='{step}' max='{max(total, 1)}' style='width:40ex'></progress> "
                f"{html.escape(self.label)}: {step:,}/{total:,} steps, {time.monotonic() - self.t0:.1f} s")

    def __call__(self, step: int, total: int) -> None:
        now = time.monotonic()
        if step < total and now - self.last < 0.2:
            return
        self.last = now
        if self.handle is not None:
            self.handle.update(self._html(self._text(step, total)))

    def close(self) -> None:
        pass


def _progress(progress: bool, label: str) -> Any:
    from .lifecycle import Progress  # noqa: PLC0415 - imports torch

    if progress and in_notebook():
        return NotebookProgress(label)
    return Progress(label, quiet=not progress)


def _result(outcome: Any) -> Run:
    """The Run of a finished training call; an interrupted one raises KeyboardInterrupt (the cell stops, as at a
    terminal) naming how to resume it."""
    if outcome.status == "interrupted":
        raise KeyboardInterrupt(f"run interrupted ({outcome.error}); it is resumable: "
                                f"fl.resume({str(outcome.run_dir)!r})")
    run = Run(outcome.run_dir)
    if outcome.status == "diverged":
        warnings.warn(f"{run.path}: run diverged: {outcome.error}", RuntimeWarning, stacklevel=3)
    return run


def train(config: ConfigSource, out: str | os.PathLike[str] = "outputs", *,
          overrides: C.Overrides | None = None, progress: bool = True, tensorboard: bool = False) -> Run:
    """Train one config into a new run folder under ``out`` and return its :class:`Run`.

    ``config`` and ``overrides`` are what :func:`load_config` takes; a config object is validated again. Bad input
    raises :class:`InputError` (a :class:`ConfigError` for the config itself) before any folder exists. A failure
    during training is recorded in the run folder and raised again. Ctrl-C (a notebook's interrupt button) stops the
    run at its next step with a checkpoint and raises KeyboardInterrupt; :func:`resume` continues it. torch's thread
    count, its deterministic flags, the random states, the matplotlib backend and the signal handlers are as they
    were when the call returns or raises (:mod:`filterlab.state`). ``progress=False``: no progress bar.
    ``tensorboard=True``: also TensorBoard event files in RUN/tensorboard (the config's ``output.tensorboard``).
    """
    cfg = load_config(config, overrides or {})
    if tensorboard:
        cfg = load_config(cfg, {"output.tensorboard": True})
    preset = Path(config) if isinstance(config, (str, os.PathLike)) else None
    from .state import preserved  # noqa: PLC0415

    check(cfg)
    with preserved():
        outcome = train_outcome(cfg, out, argv=["fl.train", str(preset or "<dict>")], preset=preset,
                                progress=_progress(progress, cfg.name), reraise=True)
    return _result(outcome)


def resume(run: Run | str | os.PathLike[str], *, progress: bool = True) -> Run:
    """Continue an interrupted, killed or failed run from its last checkpoint, in its own folder (the same state
    guarantees as :func:`train`)."""
    path = run.path if isinstance(run, Run) else Path(run)
    from .state import preserved  # noqa: PLC0415

    with preserved():
        outcome = resume_outcome(path, argv=["fl.resume", str(path)], progress=_progress(progress, path.name),
                                 reraise=True)
    return _result(outcome)


# The training calls under :func:`train`, :func:`resume` and ``filterlab train``: one path, so a config is checked
# and a run started, ended and reported the same way from Python and from the command line.


def check(cfg: Any) -> None:
    """The pre-flight checks of a loaded config (geometry, the run's resource budget, TensorBoard when asked for),
    before torch is imported: :class:`InputError` for a config that cannot work."""
    from .preflight import check_config  # noqa: PLC0415

    check_config(cfg)


def train_outcome(cfg: Any, out: str | os.PathLike[str] = "outputs", *, argv: list[str] | None = None,
                  preset: str | os.PathLike[str] | None = None, progress: Any = None, quiet: bool = True,
                  stop: Any = None, figure_helper: bool = False, worker: Any = None, reraise: bool = False) -> Any:
    """Train one loaded config into a new run folder (checked again once its data is loaded); returns the
    lifecycle's Outcome (the folder, the status, the exit status, the summary, the error) instead of a :class:`Run`.
    ``argv``: the command line recorded in meta.json; ``preset``: the config file the config was read from;
    ``stop``: a shared stop flag; ``figure_helper`` and ``worker``: draw the figures in a forked helper
    (:func:`filterlab.lifecycle.train_config` says more); ``reraise``: raise a training failure again after recording
    it."""
    from .lifecycle import train_config  # noqa: PLC0415 - imports torch: only when training

    return train_config(cfg, out_root=Path(out), argv=argv, quiet=quiet, stop=stop, figure_helper=figure_helper,
                        preset=Path(preset) if preset is not None else None, progress=progress,
                        reraise=reraise, worker=worker)


def resume_outcome(path: str | os.PathLike[str], *, argv: list[str] | None = None, progress: Any = None,
                   quiet: bool = True, figure_helper: bool = False, reraise: bool = False) -> Any:
    """Continue an interrupted run in its own folder; the lifecycle's Outcome (see :func:`train_outcome`)."""
    from .lifecycle import resume_run  # noqa: PLC0415 - imports torch: only when training

    return resume_run(Path(path), argv=argv, quiet=quiet, figure_helper=figure_helper, progress=progress,
                      reraise=reraise)


# ---------------------------------------------------------------------------------------------------------------------
# Many runs: the table, a comparison, a sweep


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


@dataclass
class RunTable:
    """The runs under a folder, as ``filterlab runs`` lists them: ``records`` (one dict per run: status, times, key
    metrics, what the config changed) and the printed table (``str()``, ``lines(wide=True)``)."""

    root: Path
    records: list[dict[str, Any]]
    dirs: list[Path]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Any:
        return iter(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.records[i]

    def open(self, i: int) -> Run:
        """The i-th run as a :class:`Run`."""
        return Run(self.dirs[i])

    def lines(self, wide: bool = False, width: int = 100) -> list[str]:
        from .runtable import table_lines, with_preset  # noqa: PLC0415 - the table, only when printed

        if not self.records:
            return [f"no runs under {self.root}"]
        return table_lines([with_preset(r, d) for r, d in zip(self.records, self.dirs)], self.root, wide=wide,
                           width=width)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        return _pre(str(self))

    def frame(self) -> pandas.DataFrame:
        """One row per run with its key metrics as columns (needs pandas)."""
        try:
            import pandas  # noqa: PLC0415 - optional
        except ImportError:
            raise ImportError("RunTable.frame needs pandas (pip install pandas); RunTable.records gives the same "
                              "data") from None
        rows = [{k: v for k, v in r.items() if k != "metrics"} | (r.get("metrics") or {}) for r in self.records]
        return pandas.DataFrame.from_records(rows)


def runs(root: str | os.PathLike[str] = "outputs") -> RunTable:
    """Every run folder at ``root`` or up to two levels below it (OUT/NAME/RUN), sorted by path."""
    from .core.rundir import find_runs  # noqa: PLC0415 - local to keep the module's imports few
    from .runtable import describe_run  # noqa: PLC0415

    path = Path(root)
    if not path.exists():
        raise InputError(f"{path}: no such folder")
    dirs = find_runs(path)
    return RunTable(path, [describe_run(d) for d in dirs], dirs)


@dataclass
class Comparison:
    """``filterlab compare``'s result: the folder it wrote (figures, compare.md/.csv/.json), the table, the rows."""

    path: Path
    table: str
    rows: list[dict[str, Any]]
    varied: list[str]

    @property
    def figures(self) -> list[FigureFile]:
        return [_figure_file(png) for png in sorted(self.path.glob("compare_*.png"))]

    def __str__(self) -> str:
        return self.table

    def _repr_html_(self) -> str:
        return _pre(self.table) + "".join(f._repr_html_() for f in self.figures)


def compare(run_dirs: list[Run | str | os.PathLike[str]], out: str | os.PathLike[str] | None = None) -> Comparison:
    """The same figures from two or more runs of one kind side by side, labelled by what differs, and a table of
    their final metrics. ``out``: the folder to write (default: a new one in a compare/ folder beside the runs)."""
    from .core.rundir import create_run_dir, no_empty_folder_on_error  # noqa: PLC0415 - local, as above
    from .viz.compare import compare as draw  # noqa: PLC0415 - imports torch and matplotlib
    from .viz.compare import load_runs  # noqa: PLC0415

    dirs = [r.path if isinstance(r, Run) else Path(r) for r in run_dirs]
    load_runs(dirs)  # refused before any folder is made
    from .core.artifacts import load_tied  # noqa: PLC0415 - imports torch

    for d in dirs:  # the filters compared come from snapshots.pt: refused when it is another run's
        if (d / SNAPSHOTS_FILE).exists():
            load_tied(d, None, checkpoint=False)
    target = Path(out) if out is not None else create_run_dir(dirs[0].resolve().parent.parent, "compare",
                                                              figures=False)
    with no_empty_folder_on_error(target, fresh=out is None):
        result = draw(dirs, target)
    return Comparison(target, result["table"], list(result["rows"]), list(result["varying"]))


def _yaml_text(value: Any) -> str:
    """A value as the YAML text an override reads back to the same value (the sweep sends texts to its workers)."""
    import yaml  # noqa: PLC0415 - PyYAML is light, but only a sweep needs it here

    return str(yaml.safe_dump(value, default_flow_style=True, width=10**6)).strip().removesuffix("...").strip()


@dataclass
class SweepStatus:
    """Where every run of a cluster sweep stands (:meth:`Sweep.status`): one state per run (``tasks``: status, run
    folder, job id, detail), printed as ``filterlab sweep --status`` prints it."""

    tasks: list[Any]
    varied: list[str]

    def counts(self) -> dict[str, int]:
        """How many runs are in each status."""
        out: dict[str, int] = {}
        for t in self.tasks:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def lines(self) -> list[str]:
        from .sweeps.status import counts, table  # noqa: PLC0415 - the sweep's table, only when printed

        return [*table(self.tasks, self.varied), f"{len(self.tasks)} runs: {counts(self.tasks)}"]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        return _pre(str(self))


@dataclass
class Sweep:
    """A sweep's folder (sweep.json, sweep.csv, the comparison), one record per run, and the runs. A cluster sweep
    returned before its runs ended (``wait=False``) or opened later (:meth:`open`) tells where its runs stand with
    :meth:`status`."""

    path: Path
    summary: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Sweep:
        """The sweep in folder ``path`` (what :func:`sweep` returned, from any later session)."""
        folder = Path(os.path.abspath(path))
        summary = read_json_object(folder / "sweep.json") if (folder / "sweep.json").is_file() else {}
        return cls(folder, summary)

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.summary.get("runs") or [])

    @property
    def runs(self) -> list[Run]:
        """The runs that have a folder, in the sweep's order."""
        return [Run(r["run_dir"]) for r in self.records if r.get("run_dir")]

    def status(self) -> SweepStatus:
        """A cluster sweep's runs as they stand now (asked of the scheduler and read from their folders); the
        summary (sweep.json, sweep.csv) is rewritten from them. A local sweep has ended by the time it returns: its
        records say how."""
        from .sweeps.slurm import finish, status_of  # noqa: PLC0415 - submitit and torch only for a sweep

        states = status_of(self.path)
        self.summary = finish(self.path, states, detached=False, draw=False)
        return SweepStatus(states, list(self.summary.get("varied") or []))

    def __str__(self) -> str:
        return str(self.summary.get("compare") or f"{self.summary.get('completed', 0)} of {len(self.records)} runs "
                                                 f"completed: {self.path}")

    def _repr_html_(self) -> str:
        return _pre(str(self))


LAUNCHERS = ("local", "slurm", "submitit-local")


def check_sweep(grid: Mapping[str, list[str]], seeds: int = 1, jobs: int = 1, launcher: str = "local",
                wait: bool = True, max_runs: int = 10_000) -> None:
    """What a sweep's settings must satisfy, checked before its config is read (``grid`` as texts)."""
    from .sweeps.plan import SweepError, check_size  # noqa: PLC0415 - the sweep's planner: no torch

    if launcher not in LAUNCHERS:
        raise SweepError(f"launcher: {launcher!r} is not one of {', '.join(LAUNCHERS)}")
    if launcher != "local" and jobs != 1:
        raise SweepError(f"jobs is for launcher local; a {launcher} sweep runs launcher.array_parallelism tasks at "
                         "once")
    if launcher == "local" and not wait:
        raise SweepError("wait=False is for cluster sweeps (launcher slurm); a local sweep runs in this process")
    check_size(dict(grid), seeds, max_runs)


def launch_sweep(config: str | os.PathLike[str], grid: Mapping[str, list[str]], *, seeds: int = 1, jobs: int = 1,
                 out: str | os.PathLike[str] = "outputs", base: list[str] | None = None, launcher: str = "local",
                 wait: bool = True, max_runs: int = 10_000, argv: list[str] | None = None, progress: Any = None,
                 note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The sweep under :func:`sweep` and ``filterlab sweep``: a YAML config, the grid and the base overrides as
    texts (``KEY=VALUE``, values read as YAML); returns the summary. ``progress`` is called as each run ends (local:
    with the job and the total; cluster: with the task's state and the total), ``note`` with what a cluster sweep
    says it did."""
    check_sweep(grid, seeds, jobs, launcher, wait, max_runs)
    if launcher == "local":
        from .sweeps import run_sweep  # noqa: PLC0415 - imports torch in the workers' parent

        return run_sweep(Path(config), dict(grid), seeds=seeds, jobs=jobs, out=Path(out), base_sets=list(base or []),
                         argv=argv, progress=progress)
    from .sweeps.slurm import launch  # noqa: PLC0415 - submitit only for a cluster sweep

    return launch(Path(config), dict(grid), seeds, list(base or []), Path(out), launcher, argv=argv,
                  wait_for_end=wait, progress=progress, note=note)


def sweep(config: str | os.PathLike[str] | Mapping[str, Any], grid: Mapping[str, list[Any]], *, seeds: int = 1,
          jobs: int = 1, out: str | os.PathLike[str] = "outputs", overrides: Mapping[str, Any] | None = None,
          launcher: str = "local", wait: bool = True, max_runs: int = 10_000) -> Sweep:
    """Every combination of ``grid`` ({"train.weight_decay": [0, 1e-5]}) times ``seeds`` seeds (seed, seed+1, ...),
    one run folder each; then their comparison. Every run is checked before any starts; a sweep of more than
    ``max_runs`` runs is refused before anything is planned. A dict config is written into OUT/sweeps/configs/ first
    (the workers read a file).

    ``launcher``: ``"local"`` runs ``jobs`` worker processes on this machine; ``"slurm"`` submits one Slurm job array
    through submitit, its resources from the config's ``launcher`` section (the same call again submits only the
    runs that have not completed); ``"submitit-local"`` runs that path as local processes. ``wait=False`` (cluster
    only): return once the runs are submitted; :meth:`Sweep.status` tells where they stand."""
    if not isinstance(grid, Mapping) or not grid:
        raise InputError("grid: expected a mapping of dotted keys to lists of values, e.g. {'train.lr': [0.1, 0.01]}")
    texts: dict[str, list[str]] = {}
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not list(values):
            raise InputError(f"grid {key!r}: expected a non-empty list of values, got {values!r}")
        texts[key] = [_yaml_text(v) for v in values]
    for name, value in (("seeds", seeds), ("jobs", jobs), ("max_runs", max_runs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name}: {value!r}; accepted: an integer >= 1")
    check_sweep(texts, seeds, jobs, launcher, wait, max_runs)
    base = [f"{k}={_yaml_text(v)}" for k, v in (overrides or {}).items()]
    cfg = load_config(config, base)
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
    else:
        folder = Path(out) / "sweeps" / "configs"
        folder.mkdir(parents=True, exist_ok=True)
        import hashlib  # noqa: PLC0415 - only for a dict config's file name

        text = C.dump_yaml(cfg)
        path = folder / f"{cfg.name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"
        path.write_text(text)
        base = []
    summary = launch_sweep(path, texts, seeds=seeds, jobs=jobs, out=out, base=base, launcher=launcher, wait=wait,
                           max_runs=max_runs, argv=["fl.sweep", str(path)])
    return Sweep(Path(summary["sweep_dir"]), summary)


# ---------------------------------------------------------------------------------------------------------------------
# TensorBoard, and a config as YAML


def tensorboard(paths: Run | Sweep | str | os.PathLike[str] | list[Any], *, host: str = "127.0.0.1",
                port: int = 0) -> Any:
    """Start TensorBoard on the runs that have event files among ``paths`` (runs, folders of runs, sweep folders,
    :class:`Run` or :class:`Sweep` objects) and return its handle once it answers: ``.url``, ``.runs``, ``.stop()``
    (the end of this Python process stops it too), ``.wait()``. A sweep's runs are named by the values it varied.
    ``host``: the address it listens on (127.0.0.1: this machine only); ``port``: 0 for a free one. A run trained
    without ``tensorboard=True`` gets its event files from :meth:`Run.export_tensorboard`."""
    from .board import require  # noqa: PLC0415

    require("tensorboard")
    from .board.serve import TensorBoard, collect, split  # noqa: PLC0415

    items = paths if isinstance(paths, (list, tuple)) else [paths]
    folders = [Path(p.path) if isinstance(p, (Run, Sweep)) else Path(p) for p in items]
    if not folders:
        raise InputError("paths: no run, folder of runs or sweep folder given")
    varied: list[str] = []
    with_events, without = split(collect(folders, varied))
    if not with_events:
        raise InputError("none of these runs has TensorBoard events; train with tensorboard=True (the config's "
                         "output.tensorboard), or write them for a finished run with Run.export_tensorboard()")
    return TensorBoard(with_events, host, port, varied)


def dump_config(config: ConfigSource, path: str | os.PathLike[str] | None = None) -> str:
    """A config (anything :func:`load_config` takes, validated) as the YAML text ``filterlab config`` prints: every
    key, defaults included. Written to ``path`` too when given."""
    text = C.dump_yaml(load_config(config))
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
