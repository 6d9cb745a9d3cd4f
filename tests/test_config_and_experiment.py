"""Config validation, presets, the experiment loop and the simulate command."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bci_credit import experiment
from bci_credit.config import ConfigError, SimulationConfig, list_presets, load_config, load_preset
from bci_credit.recording import Recording, TimeSeries


def test_presets_load_and_validate():
    names = list_presets()
    assert {"paper_2neuron_estimation", "bci_10neuron", "paper_2neuron_banana"} <= set(names)
    for n in names:
        cfg = load_preset(n)
        assert SimulationConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("override, message", [
    ({"population.c": 1.5}, "must lie in"),
    ({"population.w": [1.0, 2.0, 3.0]}, "3 values for 2 neurons"),
    ({"run.duration_s": -1}, "must be positive"),
    ({"model.window_s": 0.0015}, "whole number"),
    ({"task.cost": "nope"}, "unknown cost"),
    ({"population.n_neurons": 3, "population.w": [10.0]}, "defined for 2 neurons"),
])
def test_bad_config_values_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_preset("paper_2neuron_estimation").with_overrides(**override)


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[population\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[population]\nn_neuron = 3\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="no preset named"):
        load_preset("no_such_preset")


def test_experiment_is_reproducible_and_records_provenance():
    cfg = load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 5.0, "run.seed": 3})
    a, b = experiment.run(cfg), experiment.run(cfg)
    assert a.equals(b)
    c = experiment.run(cfg.with_overrides(**{"run.seed": 4}))
    assert not np.array_equal(a.drive, c.drive)
    assert a.meta["seed"] == 3 and a.meta["config"]["population"]["c"] == cfg.population.c
    assert np.array_equal(a.spiked, a.drive > 1.0)
    assert a.windows["reward"].shape == (250,)


def test_learning_run_has_weight_trace():
    cfg = load_preset("paper_2neuron_banana").with_overrides(**{"run.duration_s": 10.0})
    rec = experiment.run(cfg)
    assert rec.weights is not None and rec.weights.values.shape[1] == 2
    assert np.all((rec.weights.values >= 2.0) & (rec.weights.values <= 20.0))
    assert not np.array_equal(rec.weights.values[0], rec.weights.values[-1])


def test_recording_validation_messages():
    units = pd.DataFrame(index=[0, 1])
    with pytest.raises(ValueError, match="2 units but 1 spike trains"):
        Recording(units=units, spike_times=[np.array([0.1])])
    with pytest.raises(ValueError, match="not sorted"):
        Recording(units=units, spike_times=[np.array([0.2, 0.1]), np.array([])])
    with pytest.raises(ValueError, match="must match"):
        TimeSeries(np.arange(3.0), np.arange(4.0))
    rec = Recording(units=units, spike_times=[np.array([0.1, 0.5]), np.array([0.3])], meta={"duration_s": 1.0})
    np.testing.assert_allclose(rec.rates_hz(), [2.0, 1.0])
    with pytest.raises(KeyError, match="not in this recording"):
        rec.unit_position(7)


def test_simulate_command_writes_the_output_folder(tmp_path):
    out = tmp_path / "sim"
    cmd = [sys.executable, "-m", "bci_credit.cli", "simulate", "paper_2neuron_estimation", "--duration", "3",
           "--set", "population.c=0.9", "--seed", "5", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    for name in ("session.nwb", "run.json", "units.csv", "windows.csv", "overview.png"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 5 and run["config"]["population"]["c"] == 0.9
    bad = subprocess.run([sys.executable, "-m", "bci_credit.cli", "simulate", "nope", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no preset named" in bad.stderr and "Traceback" not in bad.stderr


def test_every_command_has_help_with_an_example():
    from bci_credit.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"simulate", "inspect"} <= set(sub.choices)
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "example" in text.lower(), f"'bci-credit {name} --help' shows no example"
