"""The notebooks in notebooks/ run top to bottom on small data, in a throwaway directory.

Each notebook is executed with papermill (nbclient underneath) on the ``python3`` kernel, which
jupyter_client starts with this very interpreter, so the venv's package is what runs. Parameters
point ``work_dir`` at the test's temporary directory: the simulated data, the SQLite MLflow store
and its artifacts all go there, and the kernel's working directory is that directory too, so a
stray ``./mlruns`` shows up as a failure instead of litter in the checkout. Any cell error fails
the test (papermill raises ``PapermillExecutionError`` naming the cell).

``make test`` runs the suite with ``--dist loadfile``, so the notebook runs stay on one worker, one
after another (each also has its own directory and store, so running two at once would only cost CPU).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = (
    "01-explore-the-data.ipynb",
    "02-train-and-compare.ipynb",
    "03-weekly-scoring.ipynb",
    "04-cdnow-benchmark.ipynb",
)
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.ipynb"))
# small data for every notebook that takes the parameter (the defaults are already small)
SMALL = {"n_customers": 2000, "trials": 1}


def _parameters_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_the_numbered_notebooks_are_all_there() -> None:
    assert tuple(p.name for p in NOTEBOOKS) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path: Path) -> None:
    """Outputs stripped, one papermill parameters cell, the generic python3 kernel."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    assert len(_parameters_cells(nb)) == 1, "exactly one cell tagged 'parameters'"
    assert "work_dir" in _parameters_cells(nb)[0].source
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill

    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    # the python3 kernelspec of this environment (the venv's) wins over a user-level one
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    for variable in ("MLFLOW_TRACKING_URI", "CUSTOMER_VALUE_HOME", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(variable, raising=False)

    accepted = set(papermill.inspect_notebook(str(path)))
    parameters = {"work_dir": str(tmp_path / "work"), **{k: v for k, v in SMALL.items() if k in accepted}}
    executed_path = tmp_path / path.name
    papermill.execute_notebook(
        str(path), str(executed_path), parameters=parameters, kernel_name="python3", cwd=str(tmp_path),
        progress_bar=False, execution_timeout=600,
    )

    executed = nbformat.read(executed_path, as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    # the kernel was this interpreter (jupyter_client starts the python3 kernel with sys.executable)
    assert f"python: {sys.executable}\n" in text, text[:500]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no inline plot was shown"
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # everything stayed in the work dir: no file store or artifacts beside the kernel's cwd
    assert not (tmp_path / "mlruns").exists(), "MLflow wrote ./mlruns in the working directory"
    assert not (tmp_path / "mlflow").exists()
    metadata = executed.metadata.get("papermill", {})
    print(f"{path.name}: {metadata.get('duration', float('nan')):.1f} s", json.dumps(parameters))
