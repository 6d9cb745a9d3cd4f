"""Shared fixtures built from the package's own simulators."""

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def seed(request):
    """A per-test seed; BCI_CREDIT_TEST_SEED pins it. The seed is printed on failure."""
    value = int(os.environ.get("BCI_CREDIT_TEST_SEED", "12345"))
    request.node.user_properties.append(("seed", value))
    return value


@pytest.fixture(scope="session")
def small_recording():
    """A 20-s, 2-neuron simulated Recording (paper estimation setting)."""
    from bci_credit import experiment
    from bci_credit.config import load_preset

    cfg = load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 20.0, "run.seed": 7})
    return experiment.run(cfg)


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def analysis_script():
    """``analysis_script(name)`` imports the study script ``analysis/<name>.py`` (scripts, not a package)."""
    import importlib.util
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "analysis"

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
