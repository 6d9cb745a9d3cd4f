"""notebooks/02_rd_analysis_of_a_bci_recording.ipynb runs top to bottom in quick mode."""

from __future__ import annotations


def test_rd_analysis_notebook_runs_quick(tmp_path):
    """Fresh kernel, BCI_CREDIT_QUICK=1, through the shared helper of tests/test_notebooks.py."""
    from test_notebooks import _run_quick

    nb, images, text = _run_quick("02_rd_analysis_of_a_bci_recording.ipynb", tmp_path)
    # it wrote and re-read the NWB files, and ran the CLI
    assert (tmp_path / "two_neurons.nwb").exists() and (tmp_path / "bci_session.nwb").exists()
    assert (tmp_path / "cli_rt" / "effects.csv").exists() and (tmp_path / "cli_rt" / "run.json").exists()
    assert images >= 4  # RD plots, design comparison, proxy-noise figure, reward-threshold figure
    assert "Causal effects per unit - design: spike" in text and "design: reward-threshold" in text
