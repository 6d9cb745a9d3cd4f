"""Notebooks in ``notebooks/`` run top to bottom in quick mode.

:func:`execute_notebook` is the reusable helper: ``from test_notebooks import execute_notebook``
(the tests folder is on ``sys.path`` under pytest) and call it with a notebook path. It runs the
notebook in a fresh Jupyter kernel of this interpreter with ``BCI_CREDIT_QUICK=1`` (notebooks read
it to shrink their simulations), fails with the cell and the error when a cell raises, and
leaves the notebook file unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def execute_notebook(path, *, env: dict | None = None, timeout_s: int = 300, quick: bool = True,
                     out_dir=None):
    """Execute the notebook at ``path`` and return the executed notebook object.

    Parameters
    ----------
    path : str or Path
        The ``.ipynb`` file (not modified).
    env : dict, optional
        Extra environment variables for the kernel.
    timeout_s : int
        Per-cell timeout.
    quick : bool
        Set ``BCI_CREDIT_QUICK=1`` for the kernel.
    out_dir : path, optional
        Set ``BCI_CREDIT_NOTEBOOK_OUT`` (where notebooks write recipe outputs).

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        A cell raised; the message shows the cell source and the traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    # the inline backend (as in Jupyter): figures shown with plt.show() become image outputs
    extra = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    if quick:
        extra["BCI_CREDIT_QUICK"] = "1"
    if out_dir is not None:
        extra["BCI_CREDIT_NOTEBOOK_OUT"] = str(out_dir)
    extra.update(env or {})
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update({k: str(v) for k, v in extra.items()})  # the kernel inherits this environment
    try:
        client = NotebookClient(nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def _errors(nb) -> list[str]:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out.append(f"{o.get('ename')}: {o.get('evalue')}")
    return out


def _run_quick(name: str, out_dir) -> tuple:
    """Execute ``notebooks/name`` in quick mode; check it ran without error and left the file alone.

    Returns the executed notebook, the number of inline images and the stream text of all cells.
    """
    path = NOTEBOOKS / name
    before = path.read_bytes()
    t0 = time.perf_counter()
    nb = execute_notebook(path, out_dir=out_dir)
    elapsed = time.perf_counter() - t0
    assert not _errors(nb)
    assert path.read_bytes() == before, "executing the notebook must not modify the file"
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    images = sum(1 for o in outputs if "image/png" in o.get("data", {}))
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    print(f"{name} executed in {elapsed:.1f} s", file=sys.stderr)
    return nb, images, text


def test_estimation_and_learning_notebook_runs_quick(tmp_path):
    """notebooks/01_estimation_and_learning.ipynb, quick mode (target < 60 s)."""
    nb, images, _ = _run_quick("01_estimation_and_learning.ipynb", tmp_path)
    # the recipes it runs wrote their outputs
    for name in ("fig3a", "learning_compare"):
        assert (tmp_path / f"{name}.json").exists() and (tmp_path / f"{name}.png").exists()
    assert images >= 4  # the figure cells produced images


@pytest.mark.parametrize("bad", ["missing.ipynb"])
def test_helper_reports_a_missing_notebook(bad, tmp_path):
    with pytest.raises(FileNotFoundError):
        execute_notebook(tmp_path / bad)


def test_learning_without_weight_transport_notebook_runs_quick(tmp_path):
    """notebooks/03_learning_without_weight_transport.ipynb (the deep extra), quick mode."""
    pytest.importorskip("torch")
    nb, images, text = _run_quick("03_learning_without_weight_transport.ipynb", tmp_path)
    for method in ("bp", "fa", "np"):  # the training runs wrote their folders
        assert all((tmp_path / method / f).exists() for f in ("run.json", "metrics.csv", "epochs.csv"))
    # the figure cells show their figures inline, also after train() saved its own training.png
    assert images >= 3
    assert "IProgress" not in text  # no notebook-widget warning from a disabled progress bar
    angles = {m: float(re.search(rf"{m}: signal angle L1 \S+ deg, L2 (\S+) deg", text).group(1)) for m in ("FA", "NP")}
    assert angles["NP"] < 0.5 * angles["FA"], angles  # NP's learned top-layer feedback points nearer BP's signal


def test_experimental_predictions_notebook_runs_quick(tmp_path):
    """notebooks/04_experimental_predictions.ipynb: the quick form of every prediction (target about a minute)."""
    import json

    from bci_credit.predict import PREDICTIONS

    nb, images, text = _run_quick("04_experimental_predictions.ipynb", tmp_path)
    assert "plasticity (quick form, seed 0)" in text
    for name in PREDICTIONS:  # every prediction wrote its folder as `bci-credit predict NAME --out` does
        assert (tmp_path / name / "prediction.json").exists() and (tmp_path / name / f"{name}.png").exists(), name
    assert (tmp_path / "conditioning" / "session_rdd_session.png").exists()
    assert (tmp_path / "conditioning" / "rdd_session.nwb").exists()
    # one figure per prediction, the plasticity-per-neuron figure and the conditioning session
    assert images == len(PREDICTIONS) + 2
    # the plasticity test: at a matched rate the drift regime (more near-threshold windows) shows more RDD plasticity,
    # in proportion to its near-threshold fraction, while REINFORCE shows less (seeds 0, 2-7 of the quick form:
    # RDD |dw|/s ratio CI lower end 1.08-1.21, RDD/near-threshold ratio 0.98-1.05, REINFORCE ratio 0.27-0.28)
    per = json.loads((tmp_path / "plasticity" / "prediction.json").read_text())["numbers"]["per_rule"]
    rdd = per["rdd_event"]["ratio_drift_over_fluctuation"]
    assert rdd["dw_per_s"]["ci"][0] > 1.0, rdd
    assert abs(rdd["dw_per_s"]["ratio"] / rdd["near_fraction"]["ratio"] - 1.0) < 0.1, rdd
    assert per["reinforce"]["ratio_drift_over_fluctuation"]["dw_per_s"]["ratio"] < 0.5
