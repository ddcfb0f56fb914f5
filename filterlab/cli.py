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
    configs: Annotated[list[Path], typer.Argument(help="One or more YAML configs; each becomes one run.",
                                                  show_default=False, metavar="CONFIG...")],
    set_: SetOpt = None,
    out: OutOpt = Path("outputs"),
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda (overrides the config's device).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (overrides the config's seed).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train each CONFIG into a new run directory under OUT and print the run directory as the last line."""
    cfgs = [_load(c, set_, device, seed) for c in configs]  # every config is checked before any run starts
    from .runs import RunDirError
    from .train import InputError, train_config

    worst = 0
    for cfg in cfgs:
        try:
            outcome = train_config(cfg, out_root=out, argv=sys.argv, quiet=quiet, figure_helper=True)
        except (InputError, RunDirError) as e:
            raise fail(str(e)) from None
        if outcome.error:
            typer.echo(f"filterlab: run {outcome.status}: {outcome.error}", err=True)
        typer.echo(str(outcome.run_dir))
        worst = worst or outcome.exit_code
    raise typer.Exit(worst)


@app.command("config")
def show_config(
    config: Annotated[Path, typer.Argument(help="A YAML config.", show_default=False)],
    set_: SetOpt = None,
) -> None:
    """Print the resolved config (defaults, then the file, then --set) without running anything."""
    from . import config as C

    typer.echo(C.dump_yaml(_load(config, set_)), nl=False)


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
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
