"""Bad input to the simulator, the spiking estimators, the config and the learning rules.

Each check asserts a ValueError/TypeError/ConfigError whose message names the argument and says
what to pass, instead of a numpy traceback or a silently wrong (NaN / empty) result.
"""

import math

import numpy as np
import pytest

from bci_credit.analysis.spiking import band_counts, observed_dependence, rdd_constant, rdd_constant_se, rdd_linear
from bci_credit.config import ConfigError, load_preset
from bci_credit.learning import (
    NodePerturbationRule, ObservedDependenceRule, OracleRule, RDDRule, ReinforceRule, RepoRDDRule,
    RewardModulatedSTDPRule, WindowContext,
)
from bci_credit.sim import LIFParams, LIFPopulation, simulate

# ------------------------------------------------------------------------------ spiking estimators

RNG = np.random.default_rng(0)
Z = RNG.uniform(0.5, 1.5, size=(400, 2))  # (windows, units)
R = RNG.normal(size=400)  # (windows,)
ESTIMATORS = [rdd_constant, rdd_linear, rdd_constant_se]


@pytest.mark.parametrize("fn", ESTIMATORS, ids=lambda f: f.__name__)
def test_estimators_reject_mismatched_windows(fn):
    with pytest.raises(ValueError, match=r"r \(reward\) must be shaped \(\.\.\., windows\).*\(400, 2\).*\(397,\)"):
        fn(Z, R[:-3], 0.1)


def test_observed_dependence_rejects_mismatched_windows():
    with pytest.raises(ValueError, match=r"observed_dependence: r \(reward\).*pass r with shape \(400,\)"):
        observed_dependence(Z, R[:10])
    with pytest.raises(ValueError, match=r"observed_dependence: r \(reward\)"):
        observed_dependence(Z, R[:10], linear=True)


@pytest.mark.parametrize("fn", ESTIMATORS, ids=lambda f: f.__name__)
def test_estimators_reject_1d_drive(fn):
    with pytest.raises(ValueError, match=r"z \(drive\) must be shaped \(\.\.\., windows, units\).*z\[:, None\]"):
        fn(Z[:, 0], R, 0.1)


def test_reward_column_and_replicate_mismatch():
    with pytest.raises(ValueError, match=r"column of rewards.*r\[\.\.\., 0\]"):
        rdd_constant(Z, R[:, None], 0.1)
    z3 = np.stack([Z, Z, Z])  # (3, 400, 2)
    with pytest.raises(ValueError, match=r"\(3, 400, 2\).*\(2, 400\)"):
        rdd_linear(z3, np.stack([R, R]), 0.1)
    with pytest.raises(ValueError, match="r \\(reward\\)"):
        rdd_constant(Z, 1.0, 0.1)


def test_valid_shapes_still_broadcast_over_replicates():
    z3 = np.stack([Z, Z + 0.01, Z - 0.01])
    r3 = np.stack([R, R, R])
    full = rdd_constant(z3, r3, 0.2)
    shared = rdd_constant(z3, R, 0.2)  # one reward series for every replicate
    assert full.shape == shared.shape == (3, 2)
    np.testing.assert_array_equal(full, shared)
    np.testing.assert_array_equal(full[0], rdd_constant(Z, R, 0.2))


@pytest.mark.parametrize("p", [0, 0.0, -1, -0.1, np.nan, np.inf, float("nan"), np.float64(-1.0), "0.1"])
@pytest.mark.parametrize("fn", ESTIMATORS, ids=lambda f: f.__name__)
def test_estimators_reject_bad_p(fn, p):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: p must be a (finite number > 0|number)"):
        fn(Z, R, p)


def test_observed_dependence_and_band_counts_reject_bad_p_and_theta():
    with pytest.raises(ValueError, match="observed_dependence: p must be a finite number > 0"):
        observed_dependence(Z, R, p=-1.0)
    with pytest.raises(ValueError, match="band_counts: p must be a finite number > 0"):
        band_counts(Z, -1)
    with pytest.raises(ValueError, match="band_counts: p must be a finite number > 0"):
        band_counts(Z, np.nan)
    with pytest.raises(ValueError, match=r"band_counts: z \(drive\) must be shaped"):
        band_counts(Z[:, 0], 0.1)
    with pytest.raises(ValueError, match="rdd_constant: theta must be a finite number"):
        rdd_constant(Z, R, 0.1, np.nan)


@pytest.mark.parametrize("fn", [rdd_constant, rdd_linear, rdd_constant_se, band_counts], ids=lambda f: f.__name__)
def test_estimators_take_one_p_per_unit(fn):
    # a list of half-widths was a TypeError from deep inside numpy ("bad operand type for unary -")
    both = fn(Z, R, [0.1, 0.3]) if fn is not band_counts else fn(Z, [0.1, 0.3])
    one = [fn(Z, R, p) if fn is not band_counts else fn(Z, p) for p in (0.1, 0.3)]
    np.testing.assert_array_equal(np.asarray(both)[..., 0], np.asarray(one[0])[..., 0])
    np.testing.assert_array_equal(np.asarray(both)[..., 1], np.asarray(one[1])[..., 1])
    with pytest.raises(ValueError, match=rf"{fn.__name__}: p must be one number or one per unit \(2 units\), got shape \(3,\)"):
        fn(Z, R, [0.1, 0.2, 0.3]) if fn is not band_counts else fn(Z, [0.1, 0.2, 0.3])


def test_truths_refuse_impossible_spike_steps_and_injection_probabilities():
    from bci_credit.sim.truth import paired_do_effects, spike_perturbation_effects
    from bci_credit.tasks.costs import BananaCost

    s = RNG.random((1, 50, 2))
    kw = dict(window_steps=20, decay=0.99, k0=0.01)
    for steps in (np.full((1, 50, 2), 20), np.full((1, 50, 2), -1), np.full((1, 50, 2), 2.5)):
        with pytest.raises(ValueError, match=r"paired_do_effects: steps must be whole step numbers within the window, 0\.\.19"):
            paired_do_effects(s, 0.1 * s, BananaCost(), steps=steps, **kw)
    with pytest.raises(ValueError, match=r"s_window must have the shape of s_end"):
        paired_do_effects(s, s[:, :10], BananaCost(), **kw)
    with pytest.raises(ValueError, match=r"s_end must be shaped \(replicates, windows, neurons\), got shape \(50, 2\)"):
        paired_do_effects(s[0], s[0], BananaCost(), **kw)
    for p_inject in (0.0, 1.0, 1.5):  # one group empty: every effect NaN, silently
        with pytest.raises(ValueError, match="p_inject must lie strictly between 0 and 1"):
            spike_perturbation_effects(s, BananaCost(), p_inject=p_inject, **kw)
    assert np.isfinite(spike_perturbation_effects(s, BananaCost(), p_inject=0.3, seed=0, **kw)).all()


def test_documented_nan_behaviour():
    """NaN drive windows are left out; a NaN reward propagates to NaN (documented, not dropped)."""
    z = Z.copy()
    z[::7, 0] = np.nan
    keep = ~np.isnan(z[:, 0])
    assert rdd_constant(z, R, 0.2)[0] == pytest.approx(rdd_constant(Z[keep], R[keep], 0.2)[0])
    r = R.copy()
    r[3] = np.nan
    assert np.isnan(rdd_constant(Z, r, 0.2)).all()
    ok = np.isfinite(r)
    assert np.isfinite(rdd_constant(Z[ok], r[ok], 0.2)).all()


# ------------------------------------------------------------------------------ LIF simulator

W = np.array([[12.0, 9.0]])


@pytest.mark.parametrize("duration", [np.nan, np.inf, -np.inf, -1.0, 0.0, 0])
def test_simulate_rejects_non_positive_or_non_finite_duration(duration):
    with pytest.raises(ValueError, match="duration_s must be a finite number of seconds > 0"):
        simulate(W, duration, seed=1)


def test_simulate_rejects_duration_shorter_than_a_window_and_non_numbers():
    with pytest.raises(ValueError, match=r"shorter than one window.*pass duration_s >= window_s"):
        simulate(W, 0.01, params=LIFParams(window_s=0.02), seed=1)
    with pytest.raises(ValueError, match="duration_s must be a number of seconds"):
        simulate(W, "ten", seed=1)
    block, _ = simulate(W, 0.02, params=LIFParams(window_s=0.02), seed=1)  # exactly one window is fine
    assert block.n_windows == 1


def test_a_duration_that_is_not_whole_windows_is_said_not_silently_rounded(tmp_path, capsys):
    from bci_credit.cli import main
    from bci_credit.experiment import run

    cfg = load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 1.025})
    with pytest.warns(UserWarning, match=r"run.duration_s=1.025 s is not a whole number of 0.02-s windows: "
                                         r"simulating 51 windows \(1.02 s\)"):
        rec = run(cfg)
    assert rec.meta["duration_s"] == pytest.approx(1.02)
    assert main(["simulate", "paper_2neuron_estimation", "--duration", "1.025", "--no-nwb", "--out",
                 str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert err.strip() == ("bci-credit simulate: warning: run.duration_s=1.025 s is not a whole number of 0.02-s "
                           "windows: simulating 51 windows (1.02 s)")
    assert main(["simulate", "paper_2neuron_estimation", "--duration", "1", "--no-nwb", "--out",
                 str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("w", [[[np.nan, 0.5]], [[np.inf, 0.5]], [12.0, -np.inf]])
def test_non_finite_weights_are_rejected(w):
    with pytest.raises(ValueError, match=r"w \(input gains\) must be finite.*pass finite numbers"):
        simulate(w, 1.0, seed=1)


def test_non_finite_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"x \(stimulus\) must be finite"):
        simulate(W, 1.0, x=np.nan, seed=1)
    with pytest.raises(ValueError, match=r"x \(stimulus\) must be finite, got inf at index \(1,\)"):
        LIFPopulation(W, x=[0.0, np.inf])
    with pytest.raises(ValueError, match="v0 must be finite"):
        LIFPopulation(W, v0=np.nan)
    with pytest.raises(ValueError, match=r"sigma \(noise scale\) must be finite"):
        LIFPopulation(W, sigma=np.nan)
    with pytest.raises(ValueError, match="sigma_pert must be finite"):
        LIFPopulation(W, sigma_pert=np.inf)
    pop = LIFPopulation(W, seed=1)
    with pytest.raises(ValueError, match=r"w \(input gains\) must be finite"):
        pop.run(1, w=[[np.nan, 1.0]])
    with pytest.raises(ValueError, match=r"x_t \(time-varying input\) must be finite"):
        pop.run(1, x_t=np.full((pop.params.window_steps, 2), np.nan))
    with pytest.raises(ValueError, match="n_windows must be a whole number"):
        pop.run(np.nan)


@pytest.mark.parametrize("field", ["threshold", "v_reset", "dt_s", "tau_m_s", "refractory_s", "sigma", "tau_s",
                                   "window_s"])
@pytest.mark.parametrize("value", [np.nan, np.inf, "1"])
def test_lifparams_fields_must_be_finite_numbers(field, value):
    with pytest.raises(ValueError, match=rf"LIFParams\.{field} must be a finite number"):
        LIFParams(**{field: value})


def test_valid_simulation_unchanged():
    a, _ = simulate(W, 1.0, c=0.5, seed=3)
    b, _ = simulate(W, 1.0, c=0.5, seed=3)
    assert a.n_windows == 50 and np.isfinite(a.drive).all()
    np.testing.assert_array_equal(a.drive, b.drive)


# ------------------------------------------------------------------------------ config

@pytest.mark.parametrize("override, message", [
    ({"run.duration_s": math.inf}, "run.duration_s must be a finite number of seconds"),
    ({"run.duration_s": math.nan}, "run.duration_s must be positive"),
    ({"run.duration_s": 0.001}, r"run.duration_s=0.001 s is shorter than one window"),
    ({"run.record_weights_every_s": math.inf}, "run.record_weights_every_s must be a finite number"),
    ({"run.record_weights_every_s": -1.0}, "run.record_weights_every_s must be a finite number"),
    ({"population.w": [math.nan, 9.0]}, "population.w must be finite"),
    ({"population.x": math.inf}, r"population.x \(stimulus\) must be a finite number"),
    ({"model.threshold": math.nan}, "LIFParams.threshold must be a finite number"),
])
def test_config_rejects_non_finite_values(override, message):
    with pytest.raises(ConfigError, match=message):
        load_preset("paper_2neuron_estimation").with_overrides(**override)


# ------------------------------------------------------------------------------ learning rules

CTX = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.array([10.0]))


@pytest.mark.parametrize("rule, message", [
    (RDDRule(eta=np.nan), r"RDDRule: eta must be a finite number > 0, got nan"),
    (RDDRule(eta=0.0), r"RDDRule: eta must be a finite number > 0"),
    (RDDRule(eta=-0.1), r"RDDRule: eta must be a finite number > 0"),
    (RDDRule(epsilon=-1), r"RDDRule: epsilon must be a finite number >= 0, got -1"),
    (RDDRule(epsilon=np.inf), r"RDDRule: epsilon must be a finite number >= 0"),
    (RDDRule(epsilon="1e5"), r"RDDRule: epsilon must be a finite number >= 0"),
    (ObservedDependenceRule(eta=np.nan), r"ObservedDependenceRule: eta must be a finite number > 0"),
    (RepoRDDRule(eta=np.inf), r"RepoRDDRule: eta must be a finite number > 0"),
    (RepoRDDRule(epsilon=-2e5), r"RepoRDDRule: epsilon must be a finite number >= 0"),
    (RepoRDDRule(p=0.0), r"p must be positive"),
    (NodePerturbationRule(epsilon=np.nan), r"NodePerturbationRule: epsilon must be a finite number >= 0"),
    (NodePerturbationRule(tau_baseline=0.0), r"NodePerturbationRule: tau_baseline must be a finite number >= 1"),
    (ReinforceRule(epsilon=-1.0), r"ReinforceRule: epsilon must be a finite number >= 0"),
    (ReinforceRule(tau_baseline=np.nan), r"ReinforceRule: tau_baseline must be a finite number >= 1"),
    (RewardModulatedSTDPRule(epsilon=np.nan), r"RewardModulatedSTDPRule: epsilon must be a finite number >= 0"),
    (OracleRule(epsilon=-1.0), r"OracleRule: epsilon must be a finite number >= 0"),
], ids=lambda x: repr(x)[:45] if not isinstance(x, str) else "")
def test_rules_check_step_sizes_before_learning(rule, message):
    with pytest.raises(ValueError, match=message):
        rule.initialize(np.array([[10.0, 8.0]]), CTX)


def test_zero_weight_rate_is_still_allowed():
    rule = RDDRule(epsilon=0.0)
    rule.initialize(np.array([[10.0, 8.0]]), CTX)
    assert rule.weights_.shape == (1, 2)


@pytest.fixture
def short_banana(tmp_path):
    """The paper_2neuron_banana preset as a TOML file with a 1-s run."""
    from bci_credit.config import preset_dir

    text = (preset_dir() / "paper_2neuron_banana.toml").read_text().replace("duration_s = 100.0", "duration_s = 1.0")
    path = tmp_path / "short_banana.toml"
    path.write_text(text)
    return path


def test_fit_loads_a_preset_name_or_path(short_banana):
    rule = RDDRule(p=0.1, epsilon=1e5).fit(str(short_banana))
    assert rule.weights_.shape == (1, 2) and rule.recording_.drive.shape[0] == 20
    same = RDDRule(p=0.1, epsilon=1e5).fit(load_preset(str(short_banana)))
    np.testing.assert_array_equal(rule.weights_, same.weights_)
    assert RDDRule(p=0.1, epsilon=1e5).fit(short_banana).weights_.shape == (1, 2)  # a Path works too


def test_fit_rejects_unknown_presets_and_non_configs(short_banana):
    with pytest.raises(ConfigError, match="no preset named 'nosuch_preset'"):
        RDDRule().fit("nosuch_preset")
    with pytest.raises(TypeError, match=r"needs a SimulationConfig or a preset name, got dict"):
        RDDRule().fit({"run": {"duration_s": 1.0}})
    with pytest.raises(ValueError, match="RDDRule: eta must be a finite number > 0, got nan"):
        RDDRule(eta=np.nan).fit(str(short_banana))
