"""The ``filterlab`` command line: thin Typer commands that hand off to the library.

Nothing that imports torch is imported at module level (``filterlab --help``, ``config`` and ``runs`` stay fast); the
commands that train or draw import their library module when they run. One error boundary serves every command: an
:class:`InputError` (a file, key or value the user gave) becomes one ``filterlab: error: ...`` line and exit status 2;
anything else is a bug, shown with its traceback and a request to report it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from . import experiments
from .api import check, load_config, train_outcome
from .api import runs as list_all
from .core import config as C
from .core.errors import EXIT_FAILED, EXIT_USAGE, ConfigError, InputError, short_repr
from .core.escape import for_terminal
from .core.geometry import GeometryError
from .core.rundir import create_run_dir, no_empty_folder_on_error

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
INPUT_HELP = ("Input size: CxHxW (3x26x26), HxWxC (26x26x3) or HxW (one channel); shapes are printed in the same "
              "order. A channel count of 1 to 4 at one end only tells the order; otherwise (3x3x3, 64x7x7) it is read "
              "as CxHxW. Prefix chw: or hwc: to choose (hwc:4x4x3).")


F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """One line on stderr, whatever the message holds (a path with a newline or an escape sequence is shown escaped)."""
    typer.echo(f"filterlab: error: {for_terminal(message)}", err=True)
    return typer.Exit(code)


# The library names a bad argument by its parameter (``at 9,9: outside ...``); the command line by its option.
FLAG_WORDS = ("at", "kernel", "image", "pool", "padding", "input", "field", "cmap", "out", "layer", "grid",
              "launcher", "status", "animate", "jobs")
# parameters a library message names anywhere in its text, and the command line's option for each
FLAG_NAMES = {"animation_limit": "--animation-limit", "max_runs": "--max-runs", "out folder": "--out FOLDER",
              "launcher local": "--launcher local", "launcher slurm": "--launcher slurm", "wait=False": "--no-wait"}
_LEADING_WORD = re.compile(r"([a-z]+)(?=[ :])")


def as_flag(message: str) -> str:
    """A library message with its parameters written as options: a first word of FLAG_WORDS (--at 9,9: ...), and
    FLAG_NAMES anywhere."""
    m = _LEADING_WORD.match(message)
    for name, flag in FLAG_NAMES.items():
        message = re.sub(rf"\b{name}\b", flag, message)
    return f"--{message}" if m and m.group(1) in FLAG_WORDS else message


def command(name: str | None = None) -> Callable[[F], F]:
    """``app.command`` with the error boundary: InputError -> one line on stderr, exit 2, never a traceback."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except InputError as e:
                raise fail(as_flag(str(e))) from None
            except OSError as e:  # the machine, not the input: a read-only folder, a full disk, a permission
                if not e.strerror:
                    raise
                raise fail(f"{e.filename or '?'}: {e.strerror}", EXIT_FAILED) from None

        app.command(name)(bounded)
        return f

    return decorate


@contextlib.contextmanager
def heavy_imports() -> Iterator[None]:
    """Import torch (and what the run needs) without the garbage collector, then freeze what was imported.

    torch's import makes hundreds of thousands of objects that live as long as the process; the collector's passes
    over them are a fifth of the import's CPU time (~0.4 s here) and find nothing to free. ``gc.freeze`` then keeps
    later passes (training, the end of the run) off them. Only where torch is not loaded yet: a process that
    already holds it (a test's CliRunner) keeps its collector as it is."""
    if "torch" in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _load(config: Path, sets: list[str] | None, device: str | None = None, seed: int | None = None) -> Any:
    """fl.load_config with the command line's overrides; a message names the file and its --set options."""
    texts = list(sets or [])
    overrides: dict[str, Any] = {}
    for text in texts:
        try:
            key, value = C.parse_override(text)
        except ConfigError as e:
            raise e.within(f"--set {text.split('=', 1)[0].strip()}" if "=" in text else f"--set {short_repr(text)}"
                           ) from None
        overrides.pop(key, None)  # a later --set of the same key wins, in its own place
        overrides[key] = value
    if device is not None:
        overrides["device"] = device
        texts.append(f"device={device}")
    if seed is not None:
        overrides["seed"] = seed
        texts.append(f"seed={seed}")
    try:
        return load_config(config, overrides)
    except ConfigError as e:
        if texts and e.source and e.source.startswith(f"{config} with overrides"):
            raise e.within(f"{config} with --set {' '.join(texts)}") from None
        raise


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
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also write TensorBoard event files into "
                                                                    "RUN/tensorboard while training (the same as "
                                                                    "--set output.tensorboard=true); look at "
                                                                    "them with: filterlab tensorboard RUN")] = False,
) -> None:
    """Train each CONFIG into a new run directory under OUT and print the run directory as the last line.

    Exit status: 0 completed, 1 failed, 2 bad input (nothing created), 3 diverged, 130/143 interrupted by
    SIGINT/SIGTERM (resumable with --resume).
    """
    if resume is not None:
        if configs or set_ or device or seed is not None or tensorboard:
            raise fail("--resume takes the run's own config; give no CONFIG, --set, --device, --seed or "
                       "--tensorboard with it")
        with heavy_imports():
            from .api import resume_outcome  # noqa: PLC0415
            from .lifecycle import StopFlag  # noqa: F401, PLC0415 - torch's import, without the collector

        try:
            outcome = resume_outcome(resume, argv=sys.argv, quiet=quiet, figure_helper=True)
        except InputError as e:
            raise fail(f"--resume {e}") from None
        _report(outcome, quiet)
        raise typer.Exit(outcome.exit_code)
    if not configs:
        raise fail("give one or more CONFIG files, or --resume RUN_DIR")
    sets = [*(set_ or []), *(["output.tensorboard=true"] if tensorboard else [])]
    cfgs = [_load(c, sets, device, seed) for c in configs]  # every config is checked before any run starts,
    for cfg in cfgs:  # and before torch is imported: a config that cannot work is refused at once
        check(cfg)
    from .viz.worker import start_figure_worker  # noqa: PLC0415

    # forked before torch is imported: the helper loads matplotlib and the drawing code while this process imports
    # torch and trains (the later runs of several configs draw in-process: torch is loaded by then)
    first_worker = start_figure_worker(cfgs[0])
    try:
        with heavy_imports():
            from .lifecycle import StopFlag  # noqa: PLC0415 - imports torch: only when training
    except BaseException:
        if first_worker:
            first_worker.cancel()
        raise

    worst = 0
    stop = StopFlag()
    with stop.installed():  # a signal after a run's end is decided changes neither its files nor its exit status
        for i, (path, cfg) in enumerate(zip(configs, cfgs)):
            outcome = train_outcome(cfg, out, argv=sys.argv, quiet=quiet, figure_helper=True, preset=path,
                                    worker=first_worker if i == 0 else None, stop=stop)
            _report(outcome, quiet, stop)
            worst = worst or outcome.exit_code
            if outcome.status == "interrupted" or stop():
                break  # the user asked to stop: the remaining configs do not start
    raise typer.Exit(worst)


def _report(outcome: Any, quiet: bool, stop: Any = None) -> None:
    """The result on stderr (unless quiet), then the run folder as the last line of stdout, for shell loops."""
    if outcome.error:
        typer.echo(f"filterlab: run {outcome.status}: {for_terminal(outcome.error)}", err=True)
    if not quiet and outcome.summary:
        card = experiments.card(outcome.summary.get("kind") or "")
        for line in card.headline(outcome.summary):
            typer.echo(line, err=True)
        report = outcome.run_dir / "report.html"
        if report.is_file():
            typer.echo(f"report: {report}", err=True)
    typer.echo(str(outcome.run_dir))
    sys.stdout.flush()
    if stop is not None:
        from .core.hold import Hold  # noqa: PLC0415 - a test hook, inert without FILTERLAB_TEST_HOLD

        hold = Hold.from_env(outcome.run_dir)
        if hold is not None:
            hold.at("printed", stop)


@command("config")
def show_config(
    config: Annotated[Path, typer.Argument(help="A YAML config.", show_default=False)],
    set_: SetOpt = None,
) -> None:
    """Print the resolved config (defaults, then the file, then --set) without running anything."""
    from .api import dump_config  # noqa: PLC0415

    typer.echo(dump_config(_load(config, set_)), nl=False)


@command()
def sweep(
    config: Annotated[Path | None, typer.Argument(help="The YAML config every run starts from.",
                                                     show_default=False)] = None,
    grid: Annotated[list[str] | None, typer.Option("--grid", "-g", metavar="KEY=V1,V2,...",
                                                      help="Values of one key; repeat for a grid (every "
                                                           "combination).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Runs per combination, with seeds seed, seed+1, ...")] = 1,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="local: worker processes at once; the cores are "
                                                                  "divided between them.")] = 1,
    launcher: Annotated[str, typer.Option(help="local: worker processes on this machine; slurm: one Slurm job "
                                               "array through submitit, resources from the config's launcher "
                                               "section; submitit-local: the slurm path run as local processes.")
                        ] = "local",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="slurm: wait for the runs and summarise them, or "
                                                                "return once they are submitted.")] = True,
    status: Annotated[Path | None, typer.Option(metavar="SWEEP_DIR", help="Show where every run of a slurm "
                                                                             "sweep stands, and update its "
                                                                             "summary.")] = None,
    set_: SetOpt = None,
    out: OutOpt = Path("outputs"),
    max_runs: Annotated[int, typer.Option(min=1, help="Refuse a sweep of more runs than this (grid combinations "
                                                      "times --seeds), counted before anything is planned.")
                        ] = 10_000,
) -> None:
    """Run every combination of a grid (times --seeds), one run directory each, in long-lived workers or as a
    Slurm job array.

    Writes sweep.json, sweep.csv and comparison figures into OUT/sweeps/NAME/...; prints that folder last.
    With --launcher slurm, the same command again submits only the runs that have not completed.
    Exit status: 0 when every run completed, 1 when any did not, 2 for bad input, 130 when interrupted (slurm:
    detached, the jobs go on).
    """
    from .api import check_sweep, launch_sweep  # noqa: PLC0415
    from .sweeps import parse_grid  # noqa: PLC0415 - imports torch in the workers' parent: only when sweeping

    if status is not None:
        from .api import Sweep  # noqa: PLC0415

        _echo_lines(Sweep.open(status).status().lines())
        raise typer.Exit(0)
    if config is None or not grid:
        raise fail("give a CONFIG and at least one --grid KEY=V1,V2,... (or --status SWEEP_DIR)")
    texts = parse_grid(grid)
    check_sweep(texts, seeds, jobs, launcher, wait, max_runs)  # counted before the config is read or anything planned
    _load(config, set_)  # the base config must be valid before anything starts
    summary = launch_sweep(config, texts, seeds=seeds, jobs=jobs, out=out, base=list(set_ or []), launcher=launcher,
                           wait=wait, max_runs=max_runs, argv=sys.argv,
                           progress=_sweep_progress if launcher == "local" else _task_progress,
                           note=lambda t: typer.echo(t, err=True))
    if summary.get("compare"):
        _echo_lines(summary["compare"].splitlines())
    if summary["failed"]:
        typer.echo(f"filterlab: {len(summary['failed'])} run(s) did not complete: {', '.join(summary['failed'])}",
                   err=True)
    typer.echo(summary["sweep_dir"])
    raise typer.Exit(130 if summary["interrupted"] else (1 if summary["failed"] else 0))


def _new_folder(out: Path | None, name: str) -> Path:
    """OUT, or a new folder under outputs/NAME/; made only once the input has been checked."""
    target = Path(out) if out is not None else create_run_dir("outputs", name, figures=False)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(f"--out {target}: {e.strerror or e}") from None
    return target


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(for_terminal(line))


def _sweep_progress(job: Any, total: int) -> None:
    r = job.result
    typer.echo(f"[{job.index + 1}/{total}] {r['status']}: {r.get('run_dir') or '-'}"
               f"{'  (' + str(r['error']).splitlines()[0] + ')' if r.get('error') else ''}", err=True)


def _task_progress(st: Any, total: int) -> None:
    why = st.detail or (st.error.splitlines()[0] if st.error else "")
    typer.echo(f"[{st.index + 1}/{total}] {st.status}: {st.run_dir or '-'}{'  (' + why + ')' if why else ''}",
               err=True)
    if st.status == "failed" and st.log_tail:
        typer.echo("\n".join("    | " + line for line in st.log_tail.splitlines()), err=True)


@command()
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
    animation_limit: Annotated[float, typer.Option(metavar="MEGAPIXELS", min=0.001,
                                                   help="With --animate: refuse an animation of more frames x "
                                                        "pixels than this many million, estimated before drawing.")
                               ] = 100.0,
) -> None:
    """What one convolution computes: the figure, the output-size arithmetic and one output pixel by hand."""
    from .explain.results import convolve as explain  # noqa: PLC0415 - NumPy, Pillow, matplotlib: loaded for the explainer only
    from .explain.results import kernel_gallery, rgb_example  # noqa: PLC0415

    if cmap not in C.DIVERGING_CMAPS:
        raise fail(f"--cmap: {cmap!r} is not one of {', '.join(C.DIVERGING_CMAPS)}")
    if rgb and gallery:
        raise fail("--rgb and --gallery each make their own figure; give one of them")
    if not (rgb or gallery) and kernel is None:
        raise fail("--kernel is required (or --rgb for the colour example, --gallery for every kernel)")
    try:
        if rgb or gallery:
            shown = rgb_example() if rgb else kernel_gallery(image, data_root=data_root)
            target = _new_folder(out, "convolve")
            lines = shown.lines() + [f"figure: {f}" for f in shown.save(target, cmap)]
        else:
            assert kernel is not None
            result = explain(image, kernel, stride=stride, padding=padding, dilation=dilation, flip=flip, at=at,
                             pool=pool, data_root=data_root)
            if animate:  # its cost estimated before any folder is made
                from .explain.animation import check_cost  # noqa: PLC0415

                check_cost(result.case, animation_limit)
            target = _new_folder(out, "convolve")
            with no_empty_folder_on_error(target, fresh=out is None):
                files = result.save(target, cmap, animate=animate, html=html, animation_limit=animation_limit)
            lines = result.lines() + [f"{'page' if f.suffix == '.html' else 'figure'}: {f}" for f in files]
    except InputError as e:  # before anything is printed: the error is the only line
        raise fail(as_flag(str(e))) from None
    _echo_lines(lines)
    typer.echo(str(target))


MAX_FIELD_PIXELS = 4096 * 4096


@command()
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
    from .explain.kernels import load_input  # noqa: PLC0415 - NumPy, Pillow, matplotlib: loaded for the explainer only
    from .explain.results import shapes as trace  # noqa: PLC0415 - NumPy, Pillow, matplotlib: loaded for the explainer only

    if (config is None) == (not rgb):
        raise fail("give a CONFIG or --rgb (one of them)")
    if input_ is not None and channels is not None:
        raise fail("--input already gives the channels; leave out --channels")
    try:
        result = trace(_load(config, set_) if config is not None else None, input=input_, channels=channels,
                       rgb=rgb)
        lines = result.lines()
        if field is not None:
            if result.input.chw[1] * result.input.chw[2] > MAX_FIELD_PIXELS:  # the figure draws every input pixel
                raise fail(f"--field: the receptive-field figure draws the {result.input.chw[1]}x"
                           f"{result.input.chw[2]} input, {result.input.chw[1] * result.input.chw[2]:,} pixels; "
                           f"accepted: at most {MAX_FIELD_PIXELS:,} pixels (4096x4096); give a smaller --input for "
                           "the figure")
            field_lines = result.receptive_field(field, at).lines
            load_input(image)  # a bad image is refused before any folder is made
    except GeometryError as e:
        raise fail(f"{config if config is not None else '--rgb'}: {e}") from None
    _echo_lines(lines)
    if field is not None:
        path = result.save_field(_new_folder(out, "shapes"), field, at, image)
        _echo_lines([*field_lines, f"figure: {path}", str(path.parent)])


@command()
def match(
    run_dir: Annotated[Path, typer.Argument(help="A classifier run directory.", show_default=False)],
) -> None:
    """Each learned conv1 filter's nearest hand-made kernel by cosine (after matching the size): table and figure."""
    from .api import open_run  # noqa: PLC0415

    _echo_lines(open_run(run_dir).nearest_kernels(save=True).lines)


@command()
def visualize(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.", show_default=False)],
    image: Annotated[str | None, typer.Option(help="Input for the feature maps and, for a classifier, the saliency "
                                                   "figure: SPLIT:INDEX, SPLIT:first-LABEL (e.g. test:first-7), a "
                                                   "shipped sample, or a PNG path.")] = None,
    layer: Annotated[str | None, typer.Option(help="Only this layer's feature maps (conv1 or conv2).")] = None,
    cmap: Annotated[str | None, typer.Option(help="Diverging map for signed weights (colour-blind-safe ones "
                                                  "only).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the figures here instead of RUN_DIR/figures.")] = None,
    insight: Annotated[bool, typer.Option("--insight", help="Also what each filter detects (seconds): top test "
                                                            "patches and feature visualisation for a classifier, "
                                                            "each filter's output per digit class for a single "
                                                            "image run.")] = False,
) -> None:
    """Draw every figure of a run again from its checkpoint, snapshots and metrics, without retraining.

    With --image, a classifier run also gets saliency.png for that image and prints its predicted class."""
    from .viz.visualize import visualize as draw  # noqa: PLC0415 - imports torch

    paths, lines = draw(run_dir, image=image, layer=layer, cmap=cmap, out=out, insight=insight)
    for p in paths:
        typer.echo(str(p))
    for line in lines:
        typer.echo(line, err=True)


@command("runs")
def list_runs(
    root: Annotated[Path, typer.Argument(help="Folder of runs (or one run).")] = Path("outputs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column in full (kind, start time, metric names), "
                                                      "however wide; by default the table fits 100 columns.")] = False,
) -> None:
    """List runs: status, key results, and what each changed from its preset file and the preset from the defaults."""
    table = list_all(root)
    if as_json:
        typer.echo(json.dumps(table.records, indent=2))
        return
    _echo_lines(table.lines(wide=wide))


@command("compare")
def compare_runs(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories of one kind.",
                                                   show_default=False, metavar="RUN_DIR...")],
    out: Annotated[Path | None, typer.Option(help="Folder for the comparison (default: a new one in a compare/ "
                                                     "folder beside the runs).")] = None,
) -> None:
    """The same figures from several runs side by side, labelled by what differs, and a table of final metrics."""
    from .api import compare  # noqa: PLC0415 - the API module is light; compare imports torch when it runs

    result = compare(list(run_dirs), out)
    _echo_lines([*result.table.splitlines(), str(result.path)])


@command("tensorboard")
def tensorboard_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Runs, folders of runs, or sweep folders.", show_default=False,
                                                metavar="RUN_OR_SWEEP...")],
    host: Annotated[str, typer.Option(help="Address TensorBoard listens on; 127.0.0.1: this machine only.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one).")] = 0,
    export: Annotated[bool, typer.Option("--export", help="Instead: write event files for finished runs trained "
                                                          "without them, from their snapshots and metrics, and "
                                                          "print each folder written.")] = False,
) -> None:
    """Start TensorBoard on runs trained with --tensorboard (or exported with --export) and print its address."""
    from .board import require  # noqa: PLC0415

    require("filterlab tensorboard")
    from .api import open_run  # noqa: PLC0415
    from .api import tensorboard as start  # noqa: PLC0415
    from .board.serve import collect, split  # noqa: PLC0415

    with_events, without = split(collect(paths))
    if export:
        given = {p.resolve() for p in paths}
        for _, run in with_events:
            if run in given:
                raise fail(f"{run}: already has TensorBoard events in {run / 'tensorboard'}; open it with: "
                           f"filterlab tensorboard {run}")
            typer.echo(f"{run}: already has events; left as it is", err=True)
        for _, run in without:
            typer.echo(str(open_run(run).export_tensorboard()))
        return
    for _, run in without:
        typer.echo(f"note: {run} has no TensorBoard events (write them with: filterlab tensorboard --export {run})",
                   err=True)
    if not with_events:
        raise fail("none of these runs has TensorBoard events; train with --tensorboard, or write them for a "
                   "finished run with: filterlab tensorboard --export RUN")

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, stop)  # SIGTERM while it starts stops it, as Ctrl-C does
    try:
        board = start(list(paths), host=host, port=port)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        signal.signal(signal.SIGTERM, old)
    typer.echo(f"TensorBoard on {len(board.runs)} run(s): {board.url} (Ctrl-C stops it)")
    raise typer.Exit(board.wait())


@command("lessons")
def write_lessons(
    folder: Annotated[Path, typer.Argument(help="Folder for the notebooks (made when missing).", show_default=False,
                                           metavar="DIR")],
    force: Annotated[bool, typer.Option("--force", help="Replace lesson notebooks already in DIR.")] = False,
) -> None:
    """Write the four lessons as Jupyter notebooks into DIR and print their paths: convolution by hand, the
    single-image experiment, the classifier's filters, saliency on your own digit.

    They read their data where the configs do (FILTERLAB_DATA). Lesson files already in DIR are left alone unless
    --force is given."""
    from .lessons import LessonsError  # noqa: PLC0415 - the lessons' files: only for this command
    from .lessons import write_lessons as write  # noqa: PLC0415

    try:
        paths = write(folder, force=force)
    except LessonsError as e:
        raise fail(str(e).replace("force=True", "--force")) from None
    for p in paths:
        typer.echo(str(p))


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
