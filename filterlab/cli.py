"""The ``filterlab`` command line: thin Typer commands that hand off to the library.

Nothing that imports torch is imported at module level (``filterlab --help``, ``config`` and ``runs`` stay fast); the
commands that train or draw import their library module when they run. One error boundary serves every command: an
:class:`InputError` (a file, key or value the user gave) becomes one ``filterlab: error: ...`` line and exit status 2;
anything else is a bug, shown with its traceback and a request to report it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from . import experiments
from .core import config as C
from .core.errors import EXIT_USAGE, InputError
from .core.geometry import GeometryError, layer_table
from .core.rundir import SNAPSHOTS_FILE, atomic_write_text, create_run_dir, find_runs, is_run_dir
from .runs import describe_run, table_lines, with_preset

app = typer.Typer(
    help="Watch a CNN's random filters turn into meaningful shapes while it trains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                     help="Override a config value, e.g. --set train.lr=0.01 "
                                                          "(repeatable; applied after the YAML file).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder that receives the run directories.")]


F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"filterlab: error: {message}", err=True)
    return typer.Exit(code)


def command(name: str | None = None) -> Callable[[F], F]:
    """``app.command`` with the error boundary: InputError -> one line on stderr, exit 2, never a traceback."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except InputError as e:
                raise fail(str(e)) from None

        app.command(name)(bounded)
        return f

    return decorate


def _load(config: Path, sets: list[str] | None, device: str | None = None, seed: int | None = None) -> Any:
    overrides = list(sets or [])
    if device is not None:
        overrides.append(f"device={device}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    return experiments.load_config(config, overrides)


@command()
def train(
    configs: Annotated[list[Path] | None, typer.Argument(help="One or more YAML configs; each becomes one run.",
                                                            show_default=False, metavar="CONFIG...")] = None,
    set_: SetOpt = None,
    out: OutOpt = Path("outputs"),
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (overrides the config's device).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (overrides the config's seed).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue this interrupted run from its last checkpoint.",
                                                   metavar="RUN_DIR")] = None,
) -> None:
    """Train each CONFIG into a new run directory under OUT and print the run directory as the last line.

    Exit status: 0 completed, 1 failed, 2 bad input (nothing created), 3 diverged, 130/143 interrupted by
    SIGINT/SIGTERM (resumable with --resume).
    """
    from .core.lifecycle import check_config, resume_run, train_config  # noqa: PLC0415 - imports torch: only when training

    if resume is not None:
        if configs or set_ or device or seed is not None:
            raise fail("--resume takes the run's own config; give no CONFIG, --set, --device or --seed with it")
        outcome = resume_run(resume, argv=sys.argv, quiet=quiet, figure_helper=True)
        _report(outcome, quiet)
        raise typer.Exit(outcome.exit_code)
    if not configs:
        raise fail("give one or more CONFIG files, or --resume RUN_DIR")
    cfgs = [_load(c, set_, device, seed) for c in configs]  # every config is checked before any run starts
    for cfg in cfgs:
        check_config(cfg)
    worst = 0
    for path, cfg in zip(configs, cfgs):
        outcome = train_config(cfg, out_root=out, argv=sys.argv, quiet=quiet, figure_helper=True, preset=path)
        _report(outcome, quiet)
        worst = worst or outcome.exit_code
        if outcome.status == "interrupted":
            break  # the user asked to stop: the remaining configs do not start
    raise typer.Exit(worst)


def _report(outcome: Any, quiet: bool) -> None:
    """The result on stderr (unless quiet), then the run folder as the last line of stdout, for shell loops."""
    if outcome.error:
        typer.echo(f"filterlab: run {outcome.status}: {outcome.error}", err=True)
    if not quiet and outcome.summary:
        card = experiments.card(outcome.summary.get("kind") or "")
        for line in card.headline(outcome.summary):
            typer.echo(line, err=True)
        report = outcome.run_dir / "report.html"
        if report.is_file():
            typer.echo(f"report: {report}", err=True)
    typer.echo(str(outcome.run_dir))


@command("config")
def show_config(
    config: Annotated[Path, typer.Argument(help="A YAML config.", show_default=False)],
    set_: SetOpt = None,
) -> None:
    """Print the resolved config (defaults, then the file, then --set) without running anything."""
    typer.echo(C.dump_yaml(_load(config, set_)), nl=False)


@command()
def sweep(
    config: Annotated[Path, typer.Argument(help="The YAML config every run starts from.", show_default=False)],
    grid: Annotated[list[str], typer.Option("--grid", "-g", metavar="KEY=V1,V2,...",
                                            help="Values of one key; repeat for a grid (every combination).")],
    seeds: Annotated[int, typer.Option(min=1, help="Runs per combination, with seeds seed, seed+1, ...")] = 1,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes at once; the cores are "
                                                                  "divided between them.")] = 1,
    set_: SetOpt = None,
    out: OutOpt = Path("outputs"),
) -> None:
    """Run every combination of a grid (times --seeds), one run directory each, in long-lived workers.

    Writes sweep.json, sweep.csv and comparison figures into OUT/sweeps/NAME/...; prints that folder last.
    Exit status: 0 when every run completed, 1 when any did not, 2 for bad input, 130 when interrupted.
    """
    from .sweep import parse_grid, run_sweep  # noqa: PLC0415 - imports torch in the workers' parent: only when sweeping

    def progress(job, total) -> None:
        r = job.result
        typer.echo(f"[{job.index + 1}/{total}] {r['status']}: {r.get('run_dir') or '-'}"
                   f"{'  (' + str(r['error']).splitlines()[0] + ')' if r.get('error') else ''}", err=True)

    _load(config, set_)  # the base config must be valid before anything starts
    summary = run_sweep(config, parse_grid(grid), seeds=seeds, jobs=jobs, out=out, base_sets=list(set_ or []),
                        argv=sys.argv, progress=progress)
    if summary.get("compare"):
        typer.echo(summary["compare"])
    if summary["failed"]:
        typer.echo(f"filterlab: {len(summary['failed'])} run(s) did not complete: {', '.join(summary['failed'])}",
                   err=True)
    typer.echo(summary["sweep_dir"])
    raise typer.Exit(130 if summary["interrupted"] else (1 if summary["failed"] else 0))


@command()
def convolve(
    kernel: Annotated[str | None, typer.Option(help="A built-in kernel (identity, box_blur, gaussian_blur, "
                                                       "sharpen, laplacian, laplacian4, sobel_x, sobel_y, prewitt_x, "
                                                       "prewitt_y, emboss) or a text/YAML file of numbers.")] = None,
    image: Annotated[str, typer.Option(help="An image spec (seven, four, digit-3, DATASET:SPLIT:INDEX, a PNG) or a "
                                            "small matrix file (.txt, .csv, .yaml).")] = "seven",
    stride: Annotated[int, typer.Option(min=1, help="Stride S.")] = 1,
    padding: Annotated[int, typer.Option(min=0, help="Zero padding P.")] = 0,
    dilation: Annotated[int, typer.Option(min=1, help="Dilation D.")] = 1,
    pool: Annotated[str | None, typer.Option(metavar="max|avg:K", help="Pool the feature map, e.g. max:2.")] = None,
    at: Annotated[str | None, typer.Option(metavar="ROW,COL", help="Output pixel to work out by hand "
                                                                     "(default: the strongest response).")] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Compute the textbook convolution (kernel flipped) instead "
                                                      "of PyTorch's cross-correlation.")] = False,
    rgb: Annotated[bool, typer.Option("--rgb", help="The colour example: 26x26x3 through six 3x3x3 kernels.")] = False,
    data_root: Annotated[str | None, typer.Option(help="Dataset folder for DATASET:SPLIT:INDEX images.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the figure (default: a new one under "
                                                     "outputs/convolve/).")] = None,
    cmap: Annotated[str, typer.Option(help="Diverging map for signed values.")] = "RdBu_r",
) -> None:
    """What one convolution computes: the figure, the output-size arithmetic and one output pixel by hand."""
    import numpy as np  # noqa: PLC0415 - the explainer's imports stay out of --help

    from . import explain as E  # noqa: PLC0415
    from .viz import explain_figures as figures  # noqa: PLC0415

    if cmap not in C.DIVERGING_CMAPS:
        raise fail(f"--cmap: {cmap!r} is not one of {', '.join(C.DIVERGING_CMAPS)}")
    if not rgb and kernel is None:
        raise fail("--kernel is required (or --rgb for the colour example)")
    target = Path(out) if out is not None else create_run_dir("outputs", "convolve", figures=False)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(f"--out {target}: {e.strerror or e}") from None

    if rgb:
        ex = E.rgb_example()
        typer.echo("input: 26x26x3 (R, G, B = the MNIST test split's first 7, 3 and 1, cropped to 26x26)")
        typer.echo("six 3x3x3 kernels, stride 1, no padding: each output channel sums its three per-channel "
                   "cross-correlations")
        typer.echo("  " + E.size_arithmetic("height", 26, 3, 1, 0, 1))
        typer.echo("  " + E.size_arithmetic("width", 26, 3, 1, 0, 1))
        typer.echo(f"feature maps: {ex['maps'].shape[1]}x{ex['maps'].shape[2]}x{ex['maps'].shape[0]}; "
                   f"2x2 max-pool: {ex['pooled'].shape[1]}x{ex['pooled'].shape[2]}x{ex['pooled'].shape[0]}")
        for i, name in enumerate(ex["names"]):
            typer.echo(f"  kernel {i + 1}: {name}")
        info = figures.rgb_figure(ex, target, cmap, 110)
        typer.echo(f"figure: {info.path}")
        typer.echo(str(target))
        return
    try:
        x, x_desc = E.load_input(image, data_root)
        k, k_desc = E.load_kernel(kernel or "")
        op = E.convolve2d if flip else E.correlate2d
        fmap = op(x, k, stride, padding, dilation)
        if at is None:  # the strongest response: a pixel where something happens
            row, col = (int(v) for v in np.unravel_index(np.abs(fmap).argmax(), fmap.shape))
        else:
            try:
                row, col = (int(v) for v in at.split(","))
            except ValueError:
                raise E.ExplainError(f"--at {at!r}: expected ROW,COL such as 3,4") from None
            if not (0 <= row < fmap.shape[0] and 0 <= col < fmap.shape[1]):
                raise E.ExplainError(f"--at {at}: outside the {fmap.shape[0]}x{fmap.shape[1]} feature map "
                                     f"(rows and columns count from 0)")
        pooled, pool_name = None, None
        if pool is not None:
            kind, _, size = pool.partition(":")
            if kind not in ("max", "avg") or not size.isdigit() or int(size) < 1:
                raise E.ExplainError(f"--pool {pool!r}: expected max:K or avg:K, for example max:2")
            pooled, pool_name = E.pool2d(fmap, kind, int(size)), f"{kind}-pool {size}x{size}"
    except E.ExplainError as e:
        raise fail(str(e)) from None
    name = "convolution (kernel flipped, the textbook definition)" if flip else \
        "cross-correlation (what PyTorch's conv2d computes: the kernel is not flipped)"
    typer.echo(f"input: {x_desc}, {x.shape[0]}x{x.shape[1]}")
    typer.echo(f"kernel: {k_desc}, {k.shape[0]}x{k.shape[1]}")
    typer.echo(f"operation: {name}; stride {stride}, padding {padding}, dilation {dilation}")
    typer.echo("output size:")
    typer.echo("  " + E.size_arithmetic("height", x.shape[0], k.shape[0], stride, padding, dilation))
    typer.echo("  " + E.size_arithmetic("width", x.shape[1], k.shape[1], stride, padding, dilation))
    worked = E.worked_pixel(x, k, row, col, stride, padding, dilation, flip)
    for line in worked.lines():
        typer.echo(line)
    typer.echo(f"feature map at ({row}, {col}): {fmap[row, col]:.6g}")
    other = E.correlate2d if flip else E.convolve2d
    other_map = other(x, k, stride, padding, dilation)
    if np.array_equal(k, k[::-1, ::-1]):
        typer.echo("the kernel is symmetric under flipping, so convolution and cross-correlation agree here")
    else:
        typer.echo(f"{'cross-correlation' if flip else 'convolution (flipped kernel)'} would give "
                   f"{other_map[row, col]:.6g} at ({row}, {col}); the two maps differ by up to "
                   f"{np.abs(other_map - fmap).max():.6g}: for an asymmetric kernel the flip matters")
    if pooled is not None:
        typer.echo(f"{pool_name}: {fmap.shape[0]}x{fmap.shape[1]} -> {pooled.shape[0]}x{pooled.shape[1]}")
    settings = f"stride {stride}, padding {padding}, dilation {dilation}"
    info = figures.convolve_figure(x, k, fmap, pooled, {"input": x_desc, "kernel": k_desc, "settings": settings,
                                                        "op": "convolved" if flip else "cross-correlated with",
                                                        "pool": pool_name or ""}, target, cmap, 110)
    typer.echo(f"figure: {info.path}")
    typer.echo(str(target))


@command()
def shapes(
    config: Annotated[Path, typer.Argument(help="An experiment config.", show_default=False)],
    set_: SetOpt = None,
    channels: Annotated[int, typer.Option(min=1, help="Input channels (1 for MNIST-like data, 3 for RGB).")] = 1,
) -> None:
    """Each layer's output shape (C x H x W), parameter count and the size flattened into the linear layer."""
    cfg = _load(config, set_)
    layers, (c, h, w) = experiments.card(cfg.kind).layers(cfg)
    try:
        rows = layer_table(layers, (channels, h, w))
    except GeometryError as e:
        raise fail(f"{config}: {e}") from None
    typer.echo(f"{'layer':<10}{'output shape':>18}{'parameters':>14}")
    for r in rows:
        typer.echo(f"{r.name:<10}{' x '.join(map(str, r.shape)):>18}{r.params:>14,}")
    flat = next(r for r in rows if r.layer is not None and r.layer.op == "flatten").shape[0]
    typer.echo(f"flattened into the linear layer: {flat}; total parameters: {sum(r.params for r in rows):,}")


@command()
def match(
    run_dir: Annotated[Path, typer.Argument(help="A classifier run directory.", show_default=False)],
) -> None:
    """Each learned conv1 filter's nearest hand-made kernel by cosine (after matching the size): table and figure."""
    from . import explain as E  # noqa: PLC0415
    from .core.artifacts import Snapshots  # noqa: PLC0415 - imports torch
    from .viz import explain_figures as figures  # noqa: PLC0415

    if not is_run_dir(run_dir) or not (run_dir / SNAPSHOTS_FILE).is_file():
        raise fail(f"{run_dir}: not a run directory with snapshots.pt")
    snaps = Snapshots.load(run_dir)
    filters = snaps.weights[snaps.first_layer][-1].sum(1).numpy()  # (N, k, k): summed over input channels
    rows = E.nearest_kernels(filters)
    typer.echo(f"{'filter':>6}  {'nearest kernel':<14}{'cosine':>8}")
    for r in rows:
        typer.echo(f"{r['filter']:>6}  {r['nearest']:<14}{r['cosine']:>8.3f}")
    out = run_dir / "figures"
    info = figures.match_figure(filters, rows, out, "RdBu_r", 110)
    atomic_write_text(out / "nearest_kernels.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    typer.echo(f"figure: {info.path}")


@command()
def visualize(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.", show_default=False)],
    image: Annotated[str | None, typer.Option(help="Input for the feature maps: SPLIT:INDEX, SPLIT:first-LABEL "
                                                      "(e.g. test:first-7), a shipped sample, or a PNG path.")] = None,
    layer: Annotated[str | None, typer.Option(help="Only this layer's feature maps (conv1 or conv2).")] = None,
    cmap: Annotated[str | None, typer.Option(help="Diverging map for signed weights (colour-blind-safe ones "
                                                     "only).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the figures here instead of RUN_DIR/figures.")] = None,
) -> None:
    """Draw every figure of a run again from its checkpoint, snapshots and metrics, without retraining."""
    from .viz.visualize import visualize as draw  # noqa: PLC0415 - imports torch

    paths = draw(run_dir, image=image, layer=layer, cmap=cmap, out=out)
    for p in paths:
        typer.echo(str(p))


@command("runs")
def list_runs(
    root: Annotated[Path, typer.Argument(help="Folder of runs (or one run).")] = Path("outputs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column in full (kind, start time, metric names), "
                                                      "however wide; by default the table fits 100 columns.")] = False,
) -> None:
    """List runs: status, key results, and what each changed from its preset file and the preset from the defaults."""
    if not root.exists():
        raise fail(f"{root}: no such folder")
    dirs = find_runs(root)
    records = [describe_run(d) for d in dirs]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    if not records:
        typer.echo(f"no runs under {root}")
        return
    records = [with_preset(r, d) for r, d in zip(records, dirs)]
    for line in table_lines(records, root, wide=wide):
        typer.echo(line)


@command("compare")
def compare_runs(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories of one kind.",
                                                   show_default=False, metavar="RUN_DIR...")],
    out: Annotated[Path | None, typer.Option(help="Folder for the comparison (default: a new one in a compare/ "
                                                     "folder beside the runs).")] = None,
) -> None:
    """The same figures from several runs side by side, labelled by what differs, and a table of final metrics."""
    from .viz.compare import compare  # noqa: PLC0415 - imports torch

    # beside the runs compared: OUT/compare/... where the first run is OUT/NAME/RUN
    target = out if out is not None else create_run_dir(run_dirs[0].resolve().parent.parent, "compare",
                                                        figures=False)
    result = compare(run_dirs, Path(target))
    typer.echo(result["table"])
    typer.echo(str(target))


def main() -> None:  # pragma: no cover - the console-script entry point
    """Run the app; once torch is loaded, leave without the interpreter's teardown.

    Tearing down an interpreter that imported torch takes ~0.5 s here, a sixth of a short run. By the time a command
    returns, every file it wrote is closed and fsync'ed, so only the standard streams need flushing.
    """
    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code  # type: ignore[assignment]
    except Exception:  # noqa: BLE001 - the error boundary: anything not an InputError is a bug
        traceback.print_exc()
        print("filterlab: internal error: this is a bug in filterlab, not in your input; please report it with the "
              "command line and the traceback above", file=sys.stderr)
        code = 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    code = int(code or 0)
    if "torch" in sys.modules:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (BrokenPipeError, ValueError):  # a reader that went away (| head) must not change the status
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
