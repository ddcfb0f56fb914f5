"""The ``filterlab`` command line: thin Typer commands that hand off to the library.

Nothing heavy is imported at module level (``filterlab --help`` must not import torch); each command imports what
it needs. Errors in the user's input are printed as one ``filterlab: error: ...`` line on stderr with exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Watch a CNN's random filters turn into meaningful shapes while it trains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                     help="Override a config value, e.g. --set train.lr=0.01 "
                                                          "(repeatable; applied after the YAML file).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder that receives the run directories.")]
INPUT_HELP = ("Input size: CxHxW (3x26x26), HxWxC (26x26x3) or HxW (one channel); shapes are printed in the same "
              "order. A channel count of 1 to 4 at one end only tells the order; otherwise (3x3x3, 64x7x7) it is read "
              "as CxHxW. Prefix chw: or hwc: to choose (hwc:4x4x3).")


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"filterlab: error: {message}", err=True)
    return typer.Exit(code)


def _load(config: Path, sets: list[str] | None, device: str | None = None, seed: int | None = None):
    from . import config as C

    overrides = list(sets or [])
    if device is not None:
        overrides.append(f"device={device}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    try:
        return C.load(config, overrides)
    except C.ConfigError as e:
        raise fail(str(e)) from None


@app.command()
def train(
    configs: Annotated[Optional[list[Path]], typer.Argument(help="One or more YAML configs; each becomes one run.",
                                                            show_default=False, metavar="CONFIG...")] = None,
    set_: SetOpt = None,
    out: OutOpt = Path("outputs"),
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda (overrides the config's device).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (overrides the config's seed).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    resume: Annotated[Optional[Path], typer.Option(help="Continue this interrupted run from its last checkpoint.",
                                                   metavar="RUN_DIR")] = None,
) -> None:
    """Train each CONFIG into a new run directory under OUT and print the run directory as the last line.

    Exit status: 0 completed, 1 failed, 2 bad input (nothing created), 3 diverged, 130/143 interrupted by
    SIGINT/SIGTERM (resumable with --resume).
    """
    from .runs import RunDirError
    from .train import InputError, resume_run, train_config

    if resume is not None:
        if configs or set_ or device or seed is not None:
            raise fail("--resume takes the run's own config; give no CONFIG, --set, --device or --seed with it")
        try:
            outcome = resume_run(resume, argv=sys.argv, quiet=quiet, figure_helper=True)
        except InputError as e:
            raise fail(str(e)) from None
        _report(outcome)
        raise typer.Exit(outcome.exit_code)
    if not configs:
        raise fail("give one or more CONFIG files, or --resume RUN_DIR")
    cfgs = [_load(c, set_, device, seed) for c in configs]  # every config is checked before any run starts
    worst = 0
    for cfg in cfgs:
        try:
            outcome = train_config(cfg, out_root=out, argv=sys.argv, quiet=quiet, figure_helper=True)
        except (InputError, RunDirError) as e:
            raise fail(str(e)) from None
        _report(outcome)
        worst = worst or outcome.exit_code
        if outcome.status == "interrupted":
            break  # the user asked to stop: the remaining configs do not start
    raise typer.Exit(worst)


def _report(outcome) -> None:
    if outcome.error:
        typer.echo(f"filterlab: run {outcome.status}: {outcome.error}", err=True)
    typer.echo(str(outcome.run_dir))


@app.command("config")
def show_config(
    config: Annotated[Path, typer.Argument(help="A YAML config.", show_default=False)],
    set_: SetOpt = None,
) -> None:
    """Print the resolved config (defaults, then the file, then --set) without running anything."""
    from . import config as C

    typer.echo(C.dump_yaml(_load(config, set_)), nl=False)


@app.command()
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
    from .sweep import SweepError, parse_grid, run_sweep

    def progress(job, total) -> None:
        r = job.result
        typer.echo(f"[{job.index + 1}/{total}] {r['status']}: {r.get('run_dir') or '-'}"
                   f"{'  (' + str(r['error']).splitlines()[0] + ')' if r.get('error') else ''}", err=True)

    _load(config, set_)  # the base config must be valid before anything starts
    try:
        summary = run_sweep(config, parse_grid(grid), seeds=seeds, jobs=jobs, out=out, base_sets=list(set_ or []),
                            argv=sys.argv, progress=progress)
    except SweepError as e:
        raise fail(str(e)) from None
    if summary.get("compare"):
        typer.echo(summary["compare"])
    if summary["failed"]:
        typer.echo(f"filterlab: {len(summary['failed'])} run(s) did not complete: {', '.join(summary['failed'])}",
                   err=True)
    typer.echo(summary["sweep_dir"])
    raise typer.Exit(130 if summary["interrupted"] else (1 if summary["failed"] else 0))


def _new_folder(out: Path | None, name: str) -> Path:
    """OUT, or a new folder under outputs/NAME/; made only once the input has been checked."""
    from .runs import RunDirError, create_run_dir

    try:
        target = Path(out) if out is not None else create_run_dir("outputs", name, figures=False)
        target.mkdir(parents=True, exist_ok=True)
    except (RunDirError, OSError) as e:
        raise fail(str(e)) from None
    return target


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


@app.command()
def convolve(
    kernel: Annotated[str | None, typer.Option(help="A built-in kernel (identity, box_blur, gaussian_blur, "
                                                       "sharpen, laplacian, laplacian4, sobel_x, sobel_y, prewitt_x, "
                                                       "prewitt_y, emboss, outline) or a text/YAML file of "
                                                       "numbers.")] = None,
    image: Annotated[str, typer.Option(help="An image spec (seven, four, digit-3, DATASET:SPLIT:INDEX, a PNG), the "
                                            "built-in 6x6 matrix edge6x6, or a small matrix file (.txt, .csv, "
                                            ".yaml).")] = "seven",
    stride: Annotated[int, typer.Option(min=1, help="Stride S.")] = 1,
    padding: Annotated[int, typer.Option(min=0, help="Zero padding P.")] = 0,
    dilation: Annotated[int, typer.Option(min=1, help="Dilation D.")] = 1,
    pool: Annotated[str | None, typer.Option(metavar="max|avg:K", help="Pool the feature map, e.g. max:2.")] = None,
    at: Annotated[str | None, typer.Option(metavar="ROW,COL", help="Output pixel to work out by hand "
                                                                     "(default: the strongest response).")] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Compute the textbook convolution (kernel flipped) instead "
                                                      "of PyTorch's cross-correlation.")] = False,
    animate: Annotated[bool, typer.Option("--animate", help="Also the sliding-window animation (GIF) and a contact "
                                                            "sheet of its frames; with --pool, the pooling's too.")
                       ] = False,
    html: Annotated[bool, typer.Option("--html", help="Also an interactive page (convolve.html, self-contained): "
                                                      "hover an output cell, change stride and padding.")] = False,
    rgb: Annotated[bool, typer.Option("--rgb", help="The colour example: 26x26x3 through six 3x3x3 kernels, and "
                                                    "the whole chain to 3x3x12 -> 108 -> 10.")] = False,
    gallery: Annotated[bool, typer.Option("--gallery", help="Every built-in kernel applied to IMAGE, in one "
                                                            "figure.")] = False,
    data_root: Annotated[str | None, typer.Option(help="Dataset folder for DATASET:SPLIT:INDEX images.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the figures (default: a new one under "
                                                     "outputs/convolve/).")] = None,
    cmap: Annotated[str, typer.Option(help="Diverging map for signed values.")] = "RdBu_r",
) -> None:
    """What one convolution computes: the figure, the output-size arithmetic and one output pixel by hand."""
    from . import config as C
    from .explain import outputs as X
    from .explain.arithmetic import ExplainError
    from .explain.kernels import load_input
    from .explain.walkthrough import build_case, case_lines

    if cmap not in C.DIVERGING_CMAPS:
        raise fail(f"--cmap: {cmap!r} is not one of {', '.join(C.DIVERGING_CMAPS)}")
    if rgb and gallery:
        raise fail("--rgb and --gallery each make their own figure; give one of them")
    if not (rgb or gallery) and kernel is None:
        raise fail("--kernel is required (or --rgb for the colour example, --gallery for every kernel)")
    try:
        if rgb:
            target = _new_folder(out, "convolve")
            lines = X.rgb_lines(target, cmap)
        elif gallery:
            x, desc = load_input(image, data_root)
            target = _new_folder(out, "convolve")
            lines = X.gallery_lines(x, desc, target, cmap)
        else:
            assert kernel is not None
            case = build_case(image, kernel, stride=stride, padding=padding, dilation=dilation, flip=flip, at=at,
                              pool=pool, data_root=data_root)
            target = _new_folder(out, "convolve")
            lines = case_lines(case) + X.draw_case(case, target, cmap, animation=animate, html=html)
    except ExplainError as e:
        raise fail(str(e)) from None
    _echo_lines(lines)
    typer.echo(str(target))


@app.command()
def shapes(
    config: Annotated[Path | None, typer.Argument(help="An experiment config (or give --rgb).",
                                                     show_default=False)] = None,
    set_: SetOpt = None,
    input_: Annotated[str | None, typer.Option("--input", metavar="CxHxW|HxWxC", help=INPUT_HELP)] = None,
    channels: Annotated[int | None, typer.Option(min=1, help="Input channels (1 for MNIST-like data, 3 for RGB); "
                                                                "--input says more.")] = None,
    rgb: Annotated[bool, typer.Option("--rgb", help="The tutorial's colour chain (convolve --rgb's): 26x26x3 -> "
                                                    "... -> 3x3x12 -> 108 -> 10.")] = False,
    field: Annotated[str | None, typer.Option(metavar="LAYER", help="Also the receptive field of one output "
                                                                        "pixel of LAYER (e.g. conv2), drawn on "
                                                                        "IMAGE.")] = None,
    at: Annotated[str | None, typer.Option(metavar="ROW,COL", help="That pixel (default: the centre of LAYER's "
                                                                     "output).")] = None,
    image: Annotated[str, typer.Option(help="The digit the receptive field is drawn on.")] = "seven",
    out: Annotated[Path | None, typer.Option(help="Folder for the receptive-field figure (default: a new one "
                                                     "under outputs/shapes/).")] = None,
) -> None:
    """Each layer's output shape, parameter count and the size flattened into the linear layer, for any input."""
    from .core.geometry import GeometryError
    from .explain.arithmetic import ExplainError
    from .explain.kernels import load_input
    from .explain.receptive import field_text
    from .explain.shapes import RGB_INPUT, RGB_LAYERS, InputShape, layers_for_config, parse_input, shapes_lines

    if (config is None) == (not rgb):
        raise fail("give a CONFIG or --rgb (one of them)")
    if input_ is not None and channels is not None:
        raise fail("--input already gives the channels; leave out --channels")
    try:
        if config is not None:
            layers, chw = layers_for_config(_load(config, set_))
            shape = InputShape(chw, hwc=False)
        else:
            layers, shape = RGB_LAYERS, RGB_INPUT
        if input_ is not None:
            shape = parse_input(input_)
        elif channels is not None:
            shape = InputShape((channels, *shape.chw[1:]), shape.hwc)
        lines = shapes_lines(layers, shape)
        if field is not None:
            field_lines, pixel = field_text(layers, shape.chw, field, at)
            x, desc = load_input(image)
    except GeometryError as e:
        raise fail(f"{config if config is not None else '--rgb'}: {e}") from None
    except ExplainError as e:
        raise fail(str(e)) from None
    _echo_lines(lines)
    if field is not None:
        from .explain.receptive_figure import receptive_figure  # matplotlib: only when there is a figure to draw

        info = receptive_figure(x, desc, layers, shape.chw, field, pixel, _new_folder(out, "shapes"), 110)
        _echo_lines([*field_lines, f"figure: {info.path}", str(info.path.parent)])


@app.command()
def match(
    run_dir: Annotated[Path, typer.Argument(help="A classifier run directory.", show_default=False)],
) -> None:
    """Each learned conv1 filter's nearest hand-made kernel by cosine (after matching the size): table and figure."""
    from .explain.match import MatchError, match_run

    try:
        _echo_lines(match_run(run_dir, "RdBu_r"))
    except MatchError as e:
        raise fail(str(e)) from None


@app.command()
def visualize(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.", show_default=False)],
    image: Annotated[Optional[str], typer.Option(help="Input for the feature maps: SPLIT:INDEX, SPLIT:first-LABEL "
                                                      "(e.g. test:first-7), a shipped sample, or a PNG path.")] = None,
    layer: Annotated[Optional[str], typer.Option(help="Only this layer's feature maps (conv1 or conv2).")] = None,
    cmap: Annotated[Optional[str], typer.Option(help="Diverging map for signed weights (colour-blind-safe ones "
                                                     "only).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the figures here instead of RUN_DIR/figures.")] = None,
) -> None:
    """Draw every figure of a run again from its checkpoint, snapshots and metrics, without retraining."""
    from .visualize import VisualizeError, visualize as draw

    try:
        paths = draw(run_dir, image=image, layer=layer, cmap=cmap, out=out)
    except VisualizeError as e:
        raise fail(str(e)) from None
    for p in paths:
        typer.echo(str(p))


@app.command("runs")
def list_runs(
    root: Annotated[Path, typer.Argument(help="Folder of runs (or one run).")] = Path("outputs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List runs with kind, status, start time, key metrics and what their configs change from the defaults."""
    import json

    from .runs import describe_run, find_runs

    if not root.exists():
        raise fail(f"{root}: no such folder")
    records = [describe_run(d) for d in find_runs(root)]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    if not records:
        typer.echo(f"no runs under {root}")
        return
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
    rows = [[r["run"], r.get("kind") or "?", r["status"], (r.get("start_time") or "")[:19],
             " ".join(f"{k}={fmt(v)}" for k, v in (r.get("metrics") or {}).items()),
             " ".join(f"{k}={v}" for k, v in (r.get("changes") or {}).items() if k != "name")] for r in records]
    head = ["run", "kind", "status", "started", "metrics", "config changes"]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    for row in [head, *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


@app.command("compare")
def compare_runs(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories of one kind.",
                                                   show_default=False, metavar="RUN_DIR...")],
    out: Annotated[Optional[Path], typer.Option(help="Folder for the comparison (default: a new one under "
                                                     "outputs/compare/).")] = None,
) -> None:
    """The same figures from several runs side by side, labelled by what differs, and a table of final metrics."""
    from .compare import CompareError, compare
    from .runs import RunDirError, create_run_dir

    try:
        target = out if out is not None else create_run_dir("outputs", "compare", figures=False)
        result = compare(run_dirs, Path(target))
    except (CompareError, RunDirError) as e:
        raise fail(str(e)) from None
    typer.echo(result["table"])
    typer.echo(str(target))


def main() -> None:  # pragma: no cover - the console-script entry point
    """Run the app; once torch is loaded, leave without the interpreter's teardown.

    Tearing down an interpreter that imported torch takes ~0.5 s here, a sixth of a short run. By the time a command
    returns, every file it wrote is closed and fsync'ed, so only the standard streams need flushing.
    """
    import os

    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code
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
