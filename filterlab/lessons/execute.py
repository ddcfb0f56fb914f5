"""Run a lesson notebook from a clean kernel, as the tests and ``benchmarks/bench_lessons.py`` do.

Needs nbclient, nbformat and ipykernel (the ``test`` extra). The kernel is started from this interpreter
(``sys.executable``), through a kernel spec written into a temporary folder, so nothing has to be installed for the
user (no ``python -m ipykernel install``), and a ``python3`` kernel spec of another Python on the machine can not be
picked up instead. A cell that raises stops the run with nbclient's ``CellExecutionError``, which names the cell.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KERNEL = "filterlab-lessons"


@dataclass
class Executed:
    """A notebook after its run: the notebook with its outputs, the wall time, the kernel's CPU time and Python."""

    notebook: Any  # nbformat.NotebookNode
    seconds: float
    cpu_seconds: float  # user + system time of the kernel process, all its threads, read inside it at the end
    python: str  # sys.executable inside the kernel, read back from its first output


def execute(path: str | os.PathLike[str], cwd: str | os.PathLike[str], env: Mapping[str, str] | None = None,
            timeout: int = 600) -> Executed:
    """Run every cell of the notebook at ``path`` in a new kernel whose working folder is ``cwd``; ``env`` is added
    to the kernel's environment (``FILTERLAB_DATA``, for instance). ``timeout``: seconds allowed per cell."""
    import nbformat  # noqa: PLC0415 - the test extra: only when a lesson is run
    from jupyter_client.kernelspec import KernelSpecManager  # noqa: PLC0415
    from jupyter_client.manager import KernelManager  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415

    nb = nbformat.read(os.fspath(path), as_version=4)
    probe = nbformat.v4.new_code_cell("import sys; print(sys.executable)")
    nb.cells.insert(0, probe)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import resource as _r; _u = _r.getrusage(_r.RUSAGE_SELF); print(_u.ru_utime + _u.ru_stime)"))
    with tempfile.TemporaryDirectory(prefix="filterlab-kernel-") as tmp:
        spec = Path(tmp, "kernels", KERNEL)
        spec.mkdir(parents=True)
        spec.joinpath("kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python ({sys.executable})", "language": "python", "env": dict(env or {})}))
        specs = KernelSpecManager(kernel_dirs=[str(spec.parent)], ensure_native_kernel=False)
        km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs, transport="ipc",
                           ip=str(Path(tmp, "kernel")))  # local sockets in the temporary folder, no TCP port
        client = NotebookClient(nb, km=km, timeout=timeout, kernel_name=KERNEL,
                                resources={"metadata": {"path": os.fspath(cwd)}})
        t0 = time.perf_counter()
        try:
            client.execute()
        finally:  # nbclient leaves a kernel it did not start itself running: stop it, pass or fail
            if km.has_kernel:
                km.shutdown_kernel(now=True)
        seconds = time.perf_counter() - t0
    def printed(cell: Any) -> str:
        return "".join(o.get("text", "") for o in cell.get("outputs", [])).strip()

    python, cpu = printed(nb.cells[0]), float(printed(nb.cells[-1]))
    del nb.cells[0], nb.cells[-1]
    return Executed(nb, seconds, cpu, python)
