"""``filterlab tensorboard``: TensorBoard on one or more runs, folders of runs or sweep folders, bound to 127.0.0.1.

A sweep folder (it holds sweep.json) stands for its runs, each named by the values the sweep varied; any other
folder for the runs under it (as ``filterlab runs`` finds them). TensorBoard runs as a child process
(:class:`TensorBoard`); the command prints its address once it answers and stops it on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import html
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.rundir import find_runs, is_run_dir
from . import check_events, events_dir, has_events

START_TIMEOUT = 120.0  # seconds for TensorBoard to answer; its first start imports a good deal


def _label(point: dict[str, Any], varied: list[str]) -> str:
    return " ".join(f"{k}={point.get(k)}" for k in varied).replace(",", ";").replace(":", "-")


SWEEP_RUN = "_sweep"  # the event folder that holds a sweep's HParams experiment: its varied keys first


def collect(paths: list[Path], varied_keys: list[str] | None = None) -> list[tuple[str, Path]]:
    """(name, run folder) of every run the paths stand for, in order, each once; InputError for a path that is no
    run, folder of runs or sweep. ``varied_keys`` receives the keys any sweep among the paths varied."""
    found: list[tuple[str, Path]] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        sweep = path / "sweep.json"
        if sweep.is_file():
            try:
                data = json.loads(sweep.read_text(encoding="utf-8"))
                rows, varied = data["runs"], list(data.get("varied") or [])
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{sweep}: not a filterlab sweep summary") from None
            if varied_keys is not None:
                varied_keys += [k for k in varied if k not in varied_keys]
            found += [(_label(r, varied) or Path(r["run_dir"]).name, Path(r["run_dir"])) for r in rows
                      if r.get("run_dir") and is_run_dir(r["run_dir"])]
            continue
        runs = find_runs(path)
        if not runs:
            raise InputError(f"{path}: holds no filterlab run (nor a sweep's sweep.json)")
        found += [(str(r.relative_to(path)) if r != path else r.name, r) for r in runs]
    out: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    names: set[str] = set()
    for name, run in found:
        run = run.resolve()
        if run in seen:
            continue
        seen.add(run)
        name = name.replace(",", ";").replace(":", "-") or run.name
        while name in names:
            name += "+"
        names.add(name)
        out.append((name, run))
    return out


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def command(runs: list[tuple[str, Path]], host: str, port: int) -> list[str]:
    spec = ",".join(f"{name}:{run / SWEEP_RUN if name == SWEEP_RUN else events_dir(run)}" for name, run in runs)
    # --load_fast=false: the Python reader, which drops what an interrupted run wrote past the checkpoint it
    # resumed from (purge_step); every image and histogram kept, not TensorBoard's sample of 10
    return [sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec, "--host", host, "--port", str(port),
            "--load_fast=false", "--reload_interval", "2", "--samples_per_plugin",
            "scalars=100000,images=100000,histograms=100000,text=1000"]


def sweep_experiment(folder: Path, runs: list[tuple[str, Path]], varied: list[str]) -> Path:
    """An event folder holding one HParams experiment for the runs: the keys the sweep varied first (marked as
    differing, with the values they took), then the others; the final metrics. TensorBoard's HParams view takes the
    first experiment it finds and shows its first hparams; without this one it would show the first five config
    keys by name (data.*), not the swept ones."""
    from tensorboard.plugins.hparams import metadata  # noqa: PLC0415
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: PLC0415
    from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - TensorBoard only when asked for
    from torch.utils.tensorboard.summary import hparams  # noqa: PLC0415

    from .. import experiments  # noqa: PLC0415
    from .writer import hparam_values  # noqa: PLC0415

    values = [hparam_values(experiments.load_config(run / "config.yaml")) for _, run in runs]
    first = dict(values[0])
    domains = {k: sorted({v[k] for v in values if k in v}) for k in varied if k in first}
    card = experiments.card(experiments.load_config(runs[0][1] / "config.yaml").kind)
    exp, _, _ = hparams(first, {f"final/{m.key}": 0.0 for m in card.metrics}, domains)
    content = metadata.parse_experiment_plugin_data(exp.value[0].metadata.plugin_data.content)
    infos = sorted(content.hparam_infos, key=lambda h: (h.name not in domains, h.name))
    for h in infos:
        h.differs = h.name in domains
    content.ClearField("hparam_infos")
    content.hparam_infos.extend(infos)
    data = HParamsPluginData(experiment=content, version=metadata.PLUGIN_DATA_VERSION)
    exp.value[0].metadata.plugin_data.content = data.SerializeToString()
    target = folder / SWEEP_RUN
    with SummaryWriter(str(target)) as w:
        w._get_file_writer().add_summary(exp)
    return target


class TensorBoard:
    """TensorBoard running as a child process on ``runs`` ((name, run folder) pairs) at :attr:`url`, from the moment
    it answers; :meth:`stop` ends it (so does the end of this Python process), :meth:`wait` blocks until it ends or
    Ctrl-C/SIGTERM stops it. ``varied``: the keys a sweep varied, shown first in its HParams view."""

    def __init__(self, runs: list[tuple[str, Path]], host: str = "127.0.0.1", port: int = 0,
                 varied: list[str] | None = None):
        self.runs, self.host = list(runs), host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}/"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open while TensorBoard runs; closed by stop()
        self._tmp = tempfile.TemporaryDirectory(prefix="filterlab-tb-")
        spec = self.runs
        if varied:
            sweep_experiment(Path(self._tmp.name), self.runs, varied)
            spec = [(SWEEP_RUN, Path(self._tmp.name)), *self.runs]
        self._child = subprocess.Popen(command(spec, host, self.port), stdout=self._log, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # Ctrl-C reaches this process only: it stops the child
        self._end = weakref.finalize(self, _end, self._child, self._log, self._tmp)
        try:
            self._until_it_answers()
        except BaseException:
            self.stop()
            raise

    def _until_it_answers(self) -> None:
        end = time.monotonic() + START_TIMEOUT
        while not _answers(self.host, self.port):
            if self._child.poll() is not None or time.monotonic() > end:
                self._log.seek(0)
                tail = self._log.read().decode(errors="replace").strip().splitlines()[-3:]
                raise InputError(f"TensorBoard did not start on {self.host}:{self.port}: "
                                 f"{' / '.join(tail) or 'no output'}")
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self._child.poll() is None

    def stop(self) -> None:
        """Stop TensorBoard (SIGTERM, then SIGKILL after 10 s) and remove its temporary files."""
        self._end()

    def wait(self) -> int:
        """Block until TensorBoard exits (its exit status) or Ctrl-C or SIGTERM stops it (0); it is stopped either
        way."""

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGTERM, stop) if main else None
        try:
            return self._child.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
            self.stop()

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"TensorBoard({self.url!r}, runs={len(self.runs)}, {'running' if self.running else 'stopped'})"

    def _repr_html_(self) -> str:
        state = "running" if self.running else "stopped"
        return (f'<p>TensorBoard on {len(self.runs)} run(s), {state}: <a href="{html.escape(self.url)}" '
                f'target="_blank">{html.escape(self.url)}</a></p>')


def _end(child: subprocess.Popen, log: Any, tmp: tempfile.TemporaryDirectory) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    log.close()
    tmp.cleanup()


def split(runs: list[tuple[str, Path]]) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(runs with event files, runs without); InputError for a run whose event folder holds anything but regular
    files or too much (:func:`check_events`)."""
    with_events = [r for r in runs if has_events(r[1])]
    for _, run in with_events:
        check_events(run)
    return with_events, [r for r in runs if not has_events(r[1])]
