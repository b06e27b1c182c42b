"""Every notebook in notebooks/ runs top to bottom, offline, against FakeStreamServer.

Each notebook runs in a fresh ipykernel that uses *this* interpreter (the venv's). The test
writes its own ``python3`` kernelspec into a temporary directory and uses only that one, so
a ``python3`` kernel installed for the user or system-wide elsewhere cannot take its place,
and nothing has to be installed beforehand (no ``ipykernel install``). The kernel also gets
a temporary ``IPYTHONDIR`` (no user profile or startup scripts) and ``MPLBACKEND=Agg``.

Needs the ``notebooks`` extra (nbclient, nbformat, ipykernel, matplotlib); without it the
tests are skipped, with the reason shown in the ``-ra`` summary.

To look at the figures, set ``NOTEBOOK_FIGURES_DIR`` to a directory: each one is saved
there as ``<notebook>-<n>.png``.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the 'notebooks' extra")
nbclient = pytest.importorskip("nbclient", reason="needs the 'notebooks' extra")
ipykernel_kernelspec = pytest.importorskip(
    "ipykernel.kernelspec", reason="needs the 'notebooks' extra"
)
pytest.importorskip("matplotlib", reason="needs the 'notebooks' extra")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402 - after the skips
from jupyter_client.manager import KernelManager  # noqa: E402

pytestmark = pytest.mark.integration

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))

#: Seconds one cell may take. The slowest cell of any notebook takes about 3 s.
CELL_TIMEOUT = 60
#: Seconds a kernel may take to start (a cold start on a slow CI machine can be several).
STARTUP_TIMEOUT = 60
#: The smallest readable figure, in pixels: 8 x 4 in at 100 dpi, after the white margins are
#: trimmed (the figures were once 480 x 192, with 8-point text).
MIN_FIGURE = (800, 400)
#: A figure stays a modest part of a notebook's page (bytes of PNG).
MAX_FIGURE_BYTES = 200_000


def _kernel_manager(tmp_path: Path) -> KernelManager:
    """A manager for a ``python3`` kernel running ``sys.executable``, known only here."""
    kernels = tmp_path / "kernels"
    ipykernel_kernelspec.write_kernel_spec(kernels / "python3")
    argv = json.loads((kernels / "python3" / "kernel.json").read_text())["argv"]
    assert argv[0] == sys.executable
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    assert specs.get_kernel_spec("python3").argv[0] == sys.executable
    return KernelManager(
        kernel_name="python3",
        kernel_spec_manager=specs,
        connection_file=str(tmp_path / "kernel-connection.json"),
    )


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: clear the outputs before committing"
            assert cell.execution_count is None, f"{path.name}: clear the execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        timeout=CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    env = {
        **os.environ,
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    client.execute(env=env)  # raises CellExecutionError, with the traceback, if a cell fails

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    # Every notebook logs only errors (one explained line in each): no reconnect warnings.
    logged = [out.text for out in outputs if out.output_type == "stream" and out.name == "stderr"]
    assert not logged, logged

    figures = os.environ.get("NOTEBOOK_FIGURES_DIR")
    for cell in nb.cells:
        images = [out for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
        if images:  # a figure says what it shows, and what its colours mean
            assert "set_title(" in cell.source and "legend(" in cell.source, cell.source[:200]
        for image in images:
            png = base64.b64decode(image["data"]["image/png"])
            assert len(png) < MAX_FIGURE_BYTES
            if figures:
                number = len(list(Path(figures).glob(f"{path.stem}-*.png"))) + 1
                (Path(figures) / f"{path.stem}-{number}.png").write_bytes(png)
            width, height = _png_size(png)
            assert width >= MIN_FIGURE[0] and height >= MIN_FIGURE[1], (width, height)


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height
