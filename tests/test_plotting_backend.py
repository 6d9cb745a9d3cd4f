"""The package picks the headless Agg backend only when nobody chose a backend before.

Commands draw straight to files (Agg); a notebook or script that imported pyplot, or set
``MPLBACKEND``, keeps its backend after a package function saved a figure (this used to switch a
notebook's inline backend to Agg, so its later figures no longer showed).
"""

from __future__ import annotations

import os
import subprocess
import sys

# a package figure of a short simulated session, saved to a file
SAVE = ("from bci_credit import experiment; from bci_credit.config import load_preset; "
        "from bci_credit.plotting.session import plot_session; from bci_credit.outputs import save_figure; "
        "rec = experiment.run(load_preset('paper_2neuron_estimation').with_overrides(**{{'run.duration_s': 2.0}})); "
        "save_figure(plot_session(rec), {path!r}); "
        "import matplotlib; print(matplotlib.get_backend().lower())")


def _run(code: str, env_backend: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if env_backend:
        env["MPLBACKEND"] = env_backend
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_headless_default_is_agg(tmp_path):
    assert _run(SAVE.format(path=str(tmp_path / "a.png"))) == "agg"
    assert (tmp_path / "a.png").stat().st_size > 0


def test_a_chosen_backend_is_kept(tmp_path):
    code = "import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot; " + SAVE.format(path=str(tmp_path / "b.png"))
    assert _run(code) == "svg"
    assert (tmp_path / "b.png").stat().st_size > 0


def test_mplbackend_environment_is_kept(tmp_path):
    assert _run(SAVE.format(path=str(tmp_path / "c.png")), env_backend="pdf") == "pdf"
