"""notebooks/02_rd_analysis_of_a_bci_recording.ipynb runs top to bottom in quick mode."""

from __future__ import annotations

import sys
import time
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_rd_analysis_of_a_bci_recording.ipynb"


def _execute(path: Path, out_dir: Path):
    """Run the notebook with the shared helper of tests/test_notebooks.py (fresh kernel, BCI_CREDIT_QUICK=1)."""
    from test_notebooks import execute_notebook

    return execute_notebook(path, out_dir=out_dir, timeout_s=300, quick=True)


def test_rd_analysis_notebook_runs_quick(tmp_path):
    before = NOTEBOOK.read_bytes()
    t0 = time.perf_counter()
    nb = _execute(NOTEBOOK, tmp_path)
    elapsed = time.perf_counter() - t0
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert NOTEBOOK.read_bytes() == before, "executing the notebook must not modify the file"
    # it wrote and re-read the NWB files, and ran the CLI
    assert (tmp_path / "two_neurons.nwb").exists() and (tmp_path / "bci_session.nwb").exists()
    assert (tmp_path / "cli_rt" / "effects.csv").exists() and (tmp_path / "cli_rt" / "run.json").exists()
    images = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images >= 4  # RD plots, design comparison, proxy-noise figure, reward-threshold figure
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "Causal effects per unit - design: spike" in text and "design: reward-threshold" in text
    print(f"notebook 02 executed in {elapsed:.1f} s", file=sys.stderr)
