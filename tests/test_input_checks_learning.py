"""Learning-rule and task settings are checked when a config loads (and before a rule learns).

A bad hyper-parameter choice, a zero ``record_every``, non-finite or inverted weight bounds, an
oracle without its true effect, a cost ``control`` out of range or a setting given twice is one
ConfigError naming the key, not a traceback after (or during) the simulation, or silently wrong
learning. Valid configs load as before.
"""

import math

import numpy as np
import pytest

from bci_credit.cli import main
from bci_credit.config import ConfigError, load_config, load_preset
from bci_credit.learning import (
    RULES, NodePerturbationRule, ObservedDependenceRule, OracleRule, RDDRule, ReinforceRule, RepoRDDRule,
    RewardModulatedSTDPRule, WindowContext, make_gain,
)
from bci_credit.sim import LIFParams
from bci_credit.sweep import make_tasks, normalize_grid
from bci_credit.tasks.costs import BananaCost, QuadraticCost, TargetRateCost

BASE = """\
[population]
n_neurons = 2
w = [12.0, 9.0]
c = 0.5
[task]
cost = "banana"
[run]
duration_s = 1.0
seed = 1
"""
GAINS = r"\['constant', 'finite_difference', 'lookup', 'online'\]"
CTX = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.array([10.0]))


def toml(tmp_path, text: str, base: str = BASE):
    path = tmp_path / "cfg.toml"
    path.write_text(base + text)
    return path


@pytest.fixture(scope="module")
def banana():
    return load_preset("paper_2neuron_banana")


# ------------------------------------------------------------------ 1. rule settings, at load time

@pytest.mark.parametrize("learning, message", [
    ('rule = "rdd"\ngain = "lookp"', rf"learning: RDDRule: gain 'lookp' is not a valid gain; choose one of {GAINS}"),
    ('rule = "rdd"\ngain = true', r"learning: RDDRule: gain True is not a valid gain"),
    ('rule = "rdd"\ngain = inf', r"learning: RDDRule: gain inf is not a valid gain; a constant gain must be a finite"),
    ('rule = "rdd_repo"\ngain = "lokup"', r"learning: RepoRDDRule: gain 'lokup' is not a valid gain"),
    ('rule = "reinforce"\ngain = [1, 2]', r"learning: ReinforceRule: gain \[1, 2\] is not a valid gain"),
    ('rule = "rdd"\nstep = "constnt"', r"learning: RDDRule: step 'constnt' is not a valid step; choose one of "
                                       r"\['constant', 'decay', 'rls'\]"),
    ('rule = "node_perturbation"\nbaseline = "runing"',
     r"learning: NodePerturbationRule: baseline 'runing' is not a valid baseline; choose one of "
     r"\['running', 'paired', 'none'\]"),
    ('rule = "rstdp"\nbaseline = "paired"', r"learning: RewardModulatedSTDPRule: baseline 'paired' is not a valid"),
    ('rule = "rstdp"\ntau_eligibility_s = 0.0', r"RewardModulatedSTDPRule: tau_eligibility_s must be a finite "
                                                r"number > 0, got 0.0"),
    ('rule = "rstdp"\na_plus = nan', r"RewardModulatedSTDPRule: a_plus must be a finite number, got nan"),
    ('rule = "rdd"\nrecord_every = 0', r"learning: RDDRule: record_every must be a whole number >= 1, got 0"),
    ('rule = "no_learning"\nrecord_every = -1', r"NoLearningRule: record_every must be a whole number >= 1"),
    ('rule = "rdd"\nbeta0 = nan', r"learning: RDDRule: beta0 must be a finite number, got nan"),
    ('rule = "od"\nbeta0 = inf', r"learning: ObservedDependenceRule: beta0 must be a finite number, got inf"),
    ('rule = "rdd"\nwarmup = -5', r"learning: RDDRule: warmup must be a whole number >= 0, got -5"),
    ('rule = "rdd"\nw_min = 30.0\nw_max = 20.0', r"learning: RDDRule: w_min=30.0 must be below w_max=20.0"),
    ('rule = "rdd"\nw_min = 20.0\nw_max = 20.0', r"learning: RDDRule: w_min=20.0 must be below w_max=20.0"),
    ('rule = "rdd"\nw_min = inf', r"learning: RDDRule: w_min must be a number below \+inf .*got inf"),
    ('rule = "node_perturbation"\nw_max = nan', r"NodePerturbationRule: w_max must be a number above -inf .*got nan"),
    ('rule = "oracle"', r"learning.rule 'oracle' needs the true effect: give learning.cost .* or learning.beta"),
    ('rule = "oracle"\ncost = "banan"', r"learning: OracleRule: cost: unknown cost 'banan'"),
    ('rule = "oracle"\nbeta = [1.0, nan]', r"learning: OracleRule: beta must be finite numbers"),
    ('rule = "oracle"\ncost = "banana"\ntau_windows = 0.5', r"OracleRule: tau_windows must be a finite number >= 1"),
])
def test_bad_learning_settings_fail_at_load(tmp_path, learning, message):
    with pytest.raises(ConfigError, match=message):
        load_config(toml(tmp_path, f"[learning]\n{learning}\n"))


@pytest.mark.parametrize("learning, message", [
    ('rule = "rdd"\nbeta0 = [0.0, 1.0, 2.0]', r"learning.beta0 has 3 values for 2 neurons; give one value or one per"),
    ('rule = "rdd"\nw_min = [1.0, 2.0, 3.0]', r"learning.w_min has 3 values for 2 neurons"),
    ('rule = "oracle"\nbeta = [1.0, 2.0, 3.0]', r"learning.beta has 3 values for 2 neurons"),
    ('rule = "oracle"\ncost = {name = "target_rate", target = [0.02, 0.02, 0.02]}',
     r"learning.cost is defined for 3 neurons but population.n_neurons = 2"),
])
def test_per_neuron_learning_settings_match_the_population(tmp_path, learning, message):
    with pytest.raises(ConfigError, match=message):
        load_config(toml(tmp_path, f"[learning]\n{learning}\n"))


def test_valid_learning_settings_still_load(tmp_path):
    ok = [
        'rule = "rdd"\ngain = "online"\nstep = "decay"\nwarmup = 0\nrecord_every = 5\nbeta0 = [0.0, 1.0]',
        'rule = "rdd"\ngain = 0.001\nw_min = -inf\nw_max = inf',
        'rule = "rdd"\nw_min = [2.0, 3.0]\nw_max = 20.0',
        'rule = "node_perturbation"\nbaseline = "paired"',
        'rule = "rstdp"\nbaseline = "none"\na_plus = 1.0\na_minus = 0.5',
        'rule = "oracle"\nbeta = [1.0, -1.0]',
        'rule = "oracle"\ncost = {name = "quadratic", a2q = 0.0}',
    ]
    for learning in ok:
        load_config(toml(tmp_path, f"[learning]\n{learning}\n"))
    with pytest.raises(ConfigError, match=r"learning: RDDRule: gain 'x' is not a valid gain"):
        load_config(toml(tmp_path, '[learning]\nrule = "rdd"\ngain = "x"\n'))


def test_bad_learning_setting_in_a_sweep_grid_fails_up_front(banana):
    grid = normalize_grid(banana, ["learning.gain=lookup,lookp"])
    with pytest.raises(ConfigError, match=r"grid point .*learning: RDDRule: gain 'lookp' is not a valid gain"):
        make_tasks(banana, grid, 1, 0)


def test_simulate_reports_a_bad_rule_setting_in_one_line(tmp_path, capsys):
    path = toml(tmp_path, '[learning]\nrule = "rdd"\nrecord_every = 0\n')
    assert main(["simulate", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bci-credit simulate: error: learning: RDDRule: record_every must be a whole number >= 1")
    assert "\n" not in err


# ------------------------------------------------------------------ 1. the same checks from Python

@pytest.mark.parametrize("rule, message", [
    (RDDRule(gain="lookp"), rf"RDDRule: gain 'lookp' is not a valid gain; choose one of {GAINS}"),
    (RDDRule(step="constnt"), r"RDDRule: step 'constnt' is not a valid step"),
    (RDDRule(record_every=0), r"RDDRule: record_every must be a whole number >= 1, got 0"),
    (RDDRule(record_every=2.5), r"RDDRule: record_every must be a whole number, got 2.5"),
    (RDDRule(warmup=-5), r"RDDRule: warmup must be a whole number >= 0, got -5"),
    (RDDRule(beta0=np.nan), r"RDDRule: beta0 must be a finite number, got nan"),
    (RDDRule(w_min=30.0, w_max=20.0), r"RDDRule: w_min=30.0 must be below w_max=20.0"),
    (RDDRule(w_min=math.inf, w_max=None), r"RDDRule: w_min must be a number below \+inf"),
    (RDDRule(w_min=[2.0, 30.0], w_max=20.0), r"RDDRule: w_min=\[2.0, 30.0\] must be below w_max=20.0"),
    (RDDRule(w_min=[2.0, 3.0], w_max=[20.0, 20.0, 20.0]),
     r"RDDRule: w_min has 2 values and w_max 3; give one number or one per neuron for each"),
    (ObservedDependenceRule(gain=np.nan), r"ObservedDependenceRule: gain nan is not a valid gain"),
    (RepoRDDRule(record_every=0), r"RepoRDDRule: record_every must be a whole number >= 1"),
    (NodePerturbationRule(baseline="runing"), r"NodePerturbationRule: baseline 'runing' is not a valid baseline"),
    (ReinforceRule(w_max=-math.inf), r"ReinforceRule: w_max must be a number above -inf"),
    (RewardModulatedSTDPRule(tau_eligibility_s=-1.0), r"RewardModulatedSTDPRule: tau_eligibility_s must be a finite"),
    (RewardModulatedSTDPRule(tau_baseline=math.inf), r"RewardModulatedSTDPRule: tau_baseline must be a finite number "
                                                     r">= 1"),
    (OracleRule(beta=[1.0, math.nan]), r"OracleRule: beta must be finite numbers"),
    (OracleRule(cost="banan"), r"OracleRule: cost: unknown cost 'banan'"),
    (OracleRule(tau_windows=math.inf, beta=1.0), r"OracleRule: tau_windows must be a finite number >= 1"),
], ids=lambda x: repr(x)[:50] if not isinstance(x, str) else "")
def test_rules_check_their_settings_in_one_place(rule, message):
    with pytest.raises(ValueError, match=message):
        rule._check_params()  # what a config load runs
    with pytest.raises(ValueError, match=message):
        rule.clone().initialize(np.array([[10.0, 8.0]]), CTX)  # and what learning runs first


def test_default_rules_and_open_weight_bounds_pass_the_checks():
    for cls in RULES.values():
        cls()._check_params()
    RDDRule(w_min=None, w_max=None, gain=make_gain("online"), beta0=[0.0, 1.0])._check_params()
    RDDRule(w_min=-math.inf, w_max=math.inf, gain=np.float32(1e-3))._check_params()
    RDDRule(w_min=5.0, w_max=None)._check_params()
    assert make_gain(np.float32(1e-3)).value == pytest.approx(1e-3)
    with pytest.raises(ValueError, match=r"RDDRule: w_max must be a number above -inf \(or None: no upper bound\)"):
        RDDRule(w_min=None, w_max=-math.inf)._check_params()


# ------------------------------------------------------------------ 2. target_rate control

@pytest.mark.parametrize("control, message", [
    (5, r"TargetRateCost.control=5 is not a neuron index \(0..1\)"),
    (-1, r"TargetRateCost.control=-1 is not a neuron index \(0..1\)"),
    (0.5, r"TargetRateCost.control must be a whole number, got 0.5"),
    (True, r"TargetRateCost.control must be a whole number, got True"),
])
def test_target_rate_control_is_a_neuron_index(control, message):
    with pytest.raises(ValueError, match=message):
        TargetRateCost(target=(0.02, 0.02), control=control)


def test_target_rate_control_is_checked_at_load(tmp_path):
    path = toml(tmp_path, "", base=BASE.replace('cost = "banana"', 'cost = { name = "target_rate", '
                                                                    'target = [0.02, 0.02], control = 5 }'))
    with pytest.raises(ConfigError, match=r"task.cost: TargetRateCost.control=5 is not a neuron index \(0..1\)"):
        load_config(path)
    cost = TargetRateCost(target=(0.02, 0.0), control=1.0, mode="brain")
    assert cost.control == 1 and type(cost.control) is int
    assert TargetRateCost.special_neuron(4, special=3).control == 3


# ------------------------------------------------------------------ 3. inconsistent settings

def test_a_setting_given_directly_and_in_params_is_refused(tmp_path, banana):
    path = toml(tmp_path, '[learning]\nrule = "rdd"\neta = 0.1\nparams = {eta = 0.5}\n')
    with pytest.raises(ConfigError, match=r"learning.eta is given twice, directly in \[learning\] and in "
                                          r"learning.params; give it once"):
        load_config(path)
    both = toml(tmp_path, '[learning]\nrule = "rdd"\neta = 0.2\nparams = {p = 0.05}\n')
    assert load_config(both).learning.params == {"p": 0.05, "eta": 0.2}
    # overrides (--set, sweep grids) still replace a preset's hyper-parameter
    assert banana.with_overrides(**{"learning.eta": 0.3}).learning.params["eta"] == 0.3


def test_control_unit_must_match_the_costs_control_unit():
    bci = load_preset("bci_10neuron")
    with pytest.raises(ConfigError, match=r"population.control_unit = 3 but task.cost.control = 0"):
        bci.with_overrides(**{"population.control_unit": 3})
    cost = dict(bci.task.cost, control=3)
    assert bci.with_overrides(**{"population.control_unit": 3, "task.cost": cost}).population.control_unit == 3
    assert bci.with_overrides(**{"population.control_unit": None}).population.control_unit is None
    est = load_preset("paper_2neuron_estimation")  # a cost without a control unit: any unit may be marked
    assert est.with_overrides(**{"population.control_unit": 1}).population.control_unit == 1


@pytest.mark.parametrize("cost_cls", [QuadraticCost, BananaCost])
def test_fixed_two_neuron_costs_take_no_n_neurons(cost_cls):
    est = load_preset("paper_2neuron_estimation")
    name = cost_cls().name
    over = {"task.cost": {"name": name, "n_neurons": 3}, "population.n_neurons": 3, "population.w": [10.0]}
    with pytest.raises(ConfigError, match=rf"cost '{name}' has n_neurons = 2 fixed; got 3"):
        est.with_overrides(**over)
    with pytest.raises(ConfigError, match=r"valid parameters: \['a1', 'a2', 'a2q', 'x'\]"):
        est.with_overrides(**{"task.cost": {"name": "quadratic", "a11": 1.0}})
    with pytest.raises(TypeError):
        cost_cls(n_neurons=3)
    assert cost_cls().n_neurons == 2 and cost_cls().describe()["n_neurons"] == 2


# ------------------------------------------------------------------ 4. messages

def test_config_path_that_is_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .* is a folder; give a TOML file"):
        load_config(tmp_path)


@pytest.mark.parametrize("override, message", [
    ({"model.sigma": -1.0}, r"^model.sigma: LIFParams.sigma must be non-negative, got -1.0$"),
    ({"model.refractory_s": -0.001}, r"^model.refractory_s: LIFParams.refractory_s must be non-negative, got -0.001$"),
    ({"model.threshold": -1.0}, r"^model.threshold: LIFParams.threshold must be above v_reset, got threshold=-1.0 "
                                r"<= v_reset=0.0$"),
    ({"model.window_s": 0.0125}, r"^model.window_s: LIFParams.window_s=0.0125 is not a whole number of dt_s=0.001"),
    ({"model.tau_s": 0.0}, r"^model.tau_s: LIFParams.tau_s must be positive, got 0.0$"),
])
def test_model_errors_name_the_toml_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_preset("paper_2neuron_estimation").with_overrides(**override)


def test_lifparams_names_the_negative_field():
    with pytest.raises(ValueError, match=r"^LIFParams.sigma must be non-negative, got -1$"):
        LIFParams(sigma=-1)
    with pytest.raises(ValueError, match=r"^LIFParams.refractory_s must be non-negative, got -1$"):
        LIFParams(refractory_s=-1, sigma=-1)


def test_every_cost_rebuilds_from_its_description():
    # describe() writes the fixed n_neurons of the 2-neuron costs; make_cost must take it back
    from bci_credit.tasks.costs import COSTS, LinearReadoutCost, make_cost

    for name in COSTS:
        cost = LinearReadoutCost.random(3, seed=0) if name == "linear_readout" else make_cost(name)
        assert make_cost(cost.describe()) == cost, name
    with pytest.raises(ValueError, match="n_neurons = 2 fixed; got 3"):
        make_cost({"name": "quadratic", "n_neurons": 3})


def test_a_rate_cost_that_does_not_name_its_control_unit_takes_any_control_unit():
    # in mode "rate" the cost never reads `control`; its default (0) must not veto population.control_unit
    bci = load_preset("bci_10neuron")
    target = [0.02] * 10
    target[3] = 0.0
    cfg = bci.with_overrides(**{"population.control_unit": 3,
                                "task.cost": {"name": "target_rate", "target": target, "mode": "rate"}})
    assert cfg.population.control_unit == 3
    with pytest.raises(ConfigError, match="control_unit = 3 but task.cost.control = 0"):
        bci.with_overrides(**{"population.control_unit": 3,
                              "task.cost": {"name": "target_rate", "target": target, "mode": "brain"}})


def test_a_cost_table_written_by_describe_loads():
    from bci_credit.tasks.costs import QuadraticCost

    base = load_preset("paper_2neuron_estimation")
    assert base.with_overrides(**{"task.cost": QuadraticCost().describe()}).task.build() == QuadraticCost()
    with pytest.raises(ConfigError, match="n_neurons = 2 fixed; got 3"):
        base.with_overrides(**{"task.cost": {**QuadraticCost().describe(), "n_neurons": 3}})


# -- the online interface used directly (a user's own loop) ---------------------------------------

def _window(**kw):
    from bci_credit.learning import WindowData

    z = np.array([[1.05, 0.9]])
    args = dict(drive=z, spiked=z > 1, counts=(z > 1).astype(float), reward=np.array([0.5]), s_end=z, index=0)
    return WindowData(**{**args, **kw})


@pytest.mark.parametrize("changes, message", [
    (dict(reward=0.5), r"reward must hold one number per replicate, shape \(1,\), got shape \(\)"),
    (dict(reward=np.array([0.5, 0.2])), r"reward must hold one number per replicate"),
    (dict(drive=np.array([1.05, 0.9])), r"drive must be shaped \(replicates, neurons\), got shape \(2,\)"),
    (dict(spiked=np.array([[True]])), r"spiked must have the shape of drive \(1, 2\), got shape \(1, 1\)"),
    (dict(s_end=np.zeros((3, 2))), r"s_end must have one row per replicate \(1\)"),
])
def test_window_data_refuses_wrong_shapes(changes, message):
    with pytest.raises(ValueError, match=message):
        _window(**changes)


def test_update_refuses_a_window_of_another_shape_or_before_initialize():
    rule = RDDRule(gain=1e-3)
    with pytest.raises(RuntimeError, match=r"initialize\(w0, context\) first"):
        rule.update(_window())
    rule.initialize(np.array([[10.0, 10.0, 10.0]]), CTX)
    with pytest.raises(ValueError, match=r"window has shape \(1, 2\) .* but the weights \(1, 3\)"):
        rule.update(_window())
    rule.initialize(np.array([[10.0, 10.0]]), CTX)
    assert rule.update(_window()).shape == (1, 2)


def test_run_online_refuses_a_cost_that_does_not_give_one_reward_per_replicate():
    from bci_credit.learning.loop import run_online
    from bci_credit.sim import LIFPopulation

    pop = LIFPopulation(np.array([[12.0, 9.0], [10.0, 10.0]]), c=0.5, params=LIFParams(window_s=0.05), seed=0)
    with pytest.raises(ValueError, match=r"returned shape \(\) .* one reward per replicate, shape \(2,\)"):
        run_online(pop, RDDRule(gain=1e-3), lambda s: float(s.sum()), 3)


def test_a_gain_object_given_to_a_rule_is_not_changed_by_learning():
    from bci_credit.learning.loop import run_online
    from bci_credit.learning.gain import OnlineGain
    from bci_credit.sim import LIFPopulation

    gain = OnlineGain()
    rule = RDDRule(gain=gain)
    pop = LIFPopulation(np.array([[12.0, 9.0]]), c=0.5, params=LIFParams(window_s=0.05), seed=0)
    run_online(pop, rule, BananaCost(), 50)
    assert rule.gain is gain and not hasattr(gain, "mu_")  # the rule learns with its own copy
    assert rule.gain_ is not gain and rule.gain_.mu_.shape == (1, 2)
