"""Bad configuration input gets a ConfigError naming the field and what to do (config, LIFParams, sweep grids)."""

import math

import numpy as np
import pytest

from bci_credit import sweep
from bci_credit.config import (ConfigError, LearningConfig, PopulationConfig, RunConfig, SimulationConfig, list_presets,
                               load_config, load_preset)
from bci_credit.sim import LIFParams
from bci_credit.sweep import make_tasks, normalize_grid, parse_grid_item

P = "paper_2neuron_estimation"
B = "paper_2neuron_banana"


@pytest.fixture(scope="module")
def est():
    return load_preset(P)


@pytest.fixture(scope="module")
def banana():
    return load_preset(B)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_presets_still_load_and_round_trip():
    names = list_presets()
    assert names
    for name in names:
        cfg = load_preset(name)
        assert SimulationConfig.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------ 1. whole numbers

@pytest.mark.parametrize("override, message", [
    ({"population.n_neurons": 2.9}, r"population.n_neurons must be a whole number, got 2.9"),
    ({"population.n_neurons": 2.5, "population.w": [10.0]}, r"population.n_neurons must be a whole number"),
    ({"population.control_unit": 1.5}, r"population.control_unit must be a whole number, got 1.5"),
    ({"population.n_neurons": "2"}, r"population.n_neurons must be a whole number, got '2' \(text\)"),
])
def test_integer_fields_reject_fractions(est, override, message):
    with pytest.raises(ConfigError, match=message):
        est.with_overrides(**override)


def test_integral_floats_are_accepted_as_ints(est):
    cfg = est.with_overrides(**{"population.control_unit": 1.0, "population.n_neurons": 2.0})
    assert cfg.population.n_neurons == 2 and type(cfg.population.n_neurons) is int
    assert cfg.population.control_unit == 1 and type(cfg.population.control_unit) is int
    assert PopulationConfig(n_neurons=np.int64(3), w=[10.0]).n_neurons == 3


def test_sweep_grid_with_fractional_n_is_rejected(est):
    grid = normalize_grid(est, ["n=2.5"])
    with pytest.raises(ConfigError, match=r"grid point .*population.n_neurons must be a whole number, got 2.5"):
        make_tasks(est, grid, 1, 0)


# ------------------------------------------------------------------ 2. booleans

@pytest.mark.parametrize("value", ["no", "false", "False", 0, 1, None])
def test_bool_field_accepts_only_true_false(est, value):
    with pytest.raises(ConfigError, match=r"LIFParams.paper_kernel must be true or false"):
        est.with_overrides(**{"model.paper_kernel": value})


def test_bool_field_hint_for_text(est):
    with pytest.raises(ConfigError, match=r"write true or false \(no quotes\)"):
        est.with_overrides(**{"model.paper_kernel": "no"})


def test_bool_field_real_bools_work(est):
    assert est.with_overrides(**{"model.paper_kernel": False}).model.paper_kernel is False
    assert LIFParams(paper_kernel=np.bool_(True)).paper_kernel is True


@pytest.mark.parametrize("override, message", [
    ({"population.c": True}, r"population.c \(noise correlation\) must be a number, got True \(a true/false value\)"),
    ({"population.control_unit": True}, r"population.control_unit must be a whole number, got True"),
    ({"population.n_neurons": True}, r"population.n_neurons must be a whole number, got True"),
    ({"run.seed": True}, r"run.seed must be a non-negative integer, got True"),
    ({"run.duration_s": True}, r"run.duration_s must be a number, got True"),
    ({"model.sigma": False}, r"LIFParams.sigma must be a finite number, got False"),
    ({"population.w": [True, 9.0]}, r"population.w must be a number, got True"),
])
def test_numeric_fields_reject_bools(est, override, message):
    with pytest.raises(ConfigError, match=message):
        est.with_overrides(**override)


def test_grid_true_false_parse_as_bools_and_are_rejected_for_numbers(est):
    assert parse_grid_item("c=true,false") == ("c", [True, False])
    assert parse_grid_item("paper_kernel=true,false") == ("paper_kernel", [True, False])
    grid = normalize_grid(est, ["c=true,false"])
    with pytest.raises(ConfigError, match=r"population.c \(noise correlation\) must be a number, got True"):
        make_tasks(est, grid, 1, 0)
    ok = normalize_grid(est, ["paper_kernel=true,false"])
    assert len(make_tasks(est, ok, 1, 0)) == 2


def test_lifparams_rejects_bool_numbers():
    with pytest.raises(ValueError, match=r"LIFParams.threshold must be a finite number, got True"):
        LIFParams(threshold=True)


# ------------------------------------------------------------------ 3. numbers given as text

@pytest.mark.parametrize("override, message", [
    ({"population.c": "0.5"}, r"population.c \(noise correlation\) must be a number, got '0.5' \(text\); give a plain "
                               r"number, without quotes"),
    ({"population.x": "0"}, r"population.x \(stimulus\) must be a finite number, got '0' \(text\)"),
    ({"population.w": "12"}, r"population.w must be a number, got '12' \(text\)"),
    ({"population.w": ["12", 9.0]}, r"population.w must be a number, got '12' \(text\)"),
    ({"run.duration_s": "1"}, r"run.duration_s must be a number, got '1' \(text\)"),
    ({"run.record_weights_every_s": "1"}, r"run.record_weights_every_s must be a number, got '1' \(text\)"),
    ({"run.seed": "3"}, r"run.seed must be a non-negative integer, got '3'"),
    ({"task.cost": {"name": "quadratic", "a1": "-30"}}, r"task.cost.a1 must be a finite number, got '-30' \(text\)"),
    ({"task.cost": {"name": "quadratic", "foo": 1}}, r"task.cost: cost 'quadratic' has no parameter 'foo'"),
    ({"task.cost": {"name": 3}}, r"task.cost.name must be a cost name in quotes, got 3"),
    ({"model.sigma": "10"}, r"LIFParams.sigma must be a finite number, got '10' \(text\)"),
])
def test_numeric_fields_reject_text(est, override, message):
    with pytest.raises(ConfigError, match=message):
        est.with_overrides(**override)


def test_text_number_in_toml_is_rejected(tmp_path):
    path = tmp_path / "dstr.toml"
    path.write_text('[run]\nduration_s = "0.2"\n')
    with pytest.raises(ConfigError, match=r"run.duration_s must be a number, got '0.2' \(text\)"):
        load_config(path)


def test_dataclasses_check_types_directly():
    with pytest.raises(ConfigError, match=r"population.c \(noise correlation\) must be a number"):
        PopulationConfig(c="0.5")
    with pytest.raises(ConfigError, match=r"run.duration_s must be a number"):
        RunConfig(duration_s="1")


def test_existing_non_finite_messages_unchanged(est):
    with pytest.raises(ConfigError, match="run.duration_s must be positive"):
        est.with_overrides(**{"run.duration_s": math.nan})
    with pytest.raises(ConfigError, match="population.w must be finite"):
        est.with_overrides(**{"population.w": [math.nan, 9.0]})
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        est.with_overrides(**{"population.c": math.nan})


# ------------------------------------------------------------------ 4. tables given as scalars

@pytest.mark.parametrize("text, message", [
    ("population = 3\n", r"\[population\] must be a table of settings"),
    ("run = 1.5\n", r"\[run\] must be a table of settings"),
    ('[learning]\nrule = "rdd"\nparams = 5\n', r"learning.params must be a table of hyper-parameters"),
])
def test_table_given_as_scalar(tmp_path, text, message):
    _assert_toml_refused(tmp_path, text, message)


def _assert_toml_refused(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_learning_params_override_must_be_a_table(est):
    with pytest.raises(ConfigError, match=r"learning.params must be a table of hyper-parameters .* got 5"):
        est.with_overrides(**{"learning.params": 5})
    with pytest.raises(ConfigError, match=r"a config is a table of tables"):
        SimulationConfig.from_dict(5)


# ------------------------------------------------------------------ 5. learning settings

@pytest.mark.parametrize("text, message", [
    ('[learning]\nrule = "bogus"\n', r"learning.rule 'bogus' is not a learning rule; choose 'none' or one of .*'rdd'"),
    ('[learning]\nrule = 3\n', r"learning.rule must be a rule name in quotes, got 3"),
    ('[learning]\nrule = "rdd"\np = "x"\n', r"learning.p must be a number, got 'x' \(text\)"),
    ('[learning]\nrule = "rdd"\nbogus_param = 3\n', r"learning rule 'rdd' has no hyper-parameter\(s\) \['bogus_param'\]"),
    ('[learning]\nrule = "rdd"\nlinear = "no"\n', r"learning.linear must be true or false, got 'no'"),
    ('[learning]\nrule = "rdd"\nwarmup = 2.5\n', r"learning.warmup must be a whole number, got 2.5"),
    ('[learning]\nrule = "rdd"\neta = -1.0\n', r"learning: RDDRule: eta must be a finite number > 0, got -1.0"),
    ('[learning]\nrule = "rdd"\np = 0.0\n', r"learning.p \(RD window half-width\) must be > 0, got 0.0"),
    ('[learning]\np = 0.1\netta = 0.1\n', r"learning.params \['etta'\] are not hyper-parameters of any learning rule"),
])
def test_learning_settings_checked_at_load(tmp_path, text, message):
    _assert_toml_refused(tmp_path, text, message)


def test_valid_learning_settings_still_load(banana, est):
    assert est.with_overrides(**{"learning.p": 0.1}).learning.params == {"p": 0.1}  # RD window of the sweep metrics
    cfg = banana.with_overrides(**{"learning.w_min": None, "learning.gain": 0.001, "learning.warmup": 3.0,
                                   "learning.epsilon": [1e5, 2e5], "learning.linear": False})
    assert cfg.learning.params["warmup"] == 3 and type(cfg.learning.params["warmup"]) is int
    assert cfg.learning.params["w_min"] is None
    assert LearningConfig(rule="node_perturbation", params={"sigma_pert": 10.0}).params == {"sigma_pert": 10.0}


def test_rule_none_keeps_the_settings_of_a_rule_switched_on_later(banana):
    off = banana.with_overrides(**{"learning.rule": "none"})  # e.g. a grid over learning.rule
    assert off.learning.params == banana.learning.params
    with pytest.raises(ConfigError, match=r"learning.params \['etta'\] are not hyper-parameters of any learning rule"):
        banana.with_overrides(**{"learning.rule": "none", "learning.etta": 0.1})


def test_switching_to_another_rule_starts_it_from_its_defaults(banana):
    # od kept the preset's RDD p = 0.1, i.e. it ran as an RDD rule; reinforce refused rdd's p and eta
    with pytest.warns(UserWarning, match=r"learning.rule 'od' replaces 'rdd': starting it from its own defaults, "
                                         r"without the settings of 'rdd': \['epsilon', 'eta', 'p', 'w_max', 'w_min'\]"):
        od = banana.with_overrides(**{"learning.rule": "od"})
    assert od.learning.params == {}
    with pytest.warns(UserWarning, match=r"without the settings of 'rdd': \['eta', 'p', 'w_max', 'w_min'\]"):
        nr = banana.with_overrides(**{"learning.rule": "reinforce", "learning.epsilon": 10.0})
    assert nr.learning.params == {"epsilon": 10.0}
    assert banana.with_overrides(**{"learning.rule": "rdd"}).learning.params == banana.learning.params


def test_one_cost_parameter_can_be_overridden(banana):
    # --set task.cost.z=2 was "[task] has unknown key(s) ['cost.z']": a cost parameter needed a whole table
    assert banana.with_overrides(**{"task.cost.z": 2.0}).task.cost == {"name": "banana", "z": 2.0}
    assert banana.with_overrides(**{"task.cost.name": "quadratic"}).task.cost == {"name": "quadratic"}
    with pytest.raises(ConfigError, match=r"task.cost: cost 'banana' has no parameter 'a'; valid parameters: "):
        banana.with_overrides(**{"task.cost.a": 2.0})
    from bci_credit.sweep import resolve_key

    assert resolve_key("task.cost.z", banana) == "task.cost.z"


def test_unknown_learning_grid_key_fails_before_running(est):
    grid = normalize_grid(est, ["learning.foo=1,2"])
    with pytest.raises(ConfigError, match=r"grid point .*learning.params \['foo'\] are not hyper-parameters of any learning rule"):
        make_tasks(est, grid, 1, 0)


# ------------------------------------------------------------------ 6. sweep grids

@pytest.mark.parametrize("items, message", [
    (["c=0.5,0.5"], r"grid key 'c' \(population.c\) lists the value 0.5 twice; give each value once"),
    (["c=0,0.0"], r"lists the value 0.0 twice \(as 0 and 0.0\)"),
    (["w=[12,9],[12.0,9]"], r"grid key 'w' \(population.w\) lists the value .* twice"),
])
def test_duplicate_grid_values(est, items, message):
    with pytest.raises(ConfigError, match=message):
        normalize_grid(est, items)
    with pytest.raises(ConfigError, match="twice"):
        normalize_grid(est, {"c": [0.1, 0.2, 0.1]})


def test_range_num_is_capped():
    assert len(parse_grid_item(f"c=0:1:{sweep.MAX_RANGE_VALUES}")[1]) == sweep.MAX_RANGE_VALUES
    with pytest.raises(ConfigError, match=r"a range gives at most 10,000 values, got NUM = 100,000,000"):
        parse_grid_item("c=0:1:100000000")


def test_total_tasks_are_capped(est, monkeypatch):
    with pytest.raises(ConfigError, match=r"the sweep has 1,000,000 tasks \(1000 x 1000 grid values\), more than the "
                                          r"limit of 100,000.*bci_credit.sweep.MAX_TASKS"):
        normalize_grid(est, ["c=0:1:1000", "sigma=1:20:1000"])
    grid = normalize_grid(est, ["c=0:1:1000"])
    with pytest.raises(ConfigError, match=r"200,000 tasks \(1000 grid values x 200 replicates\)"):
        make_tasks(est, grid, 200, 0)
    with pytest.raises(ConfigError, match=r"200,000 tasks"):
        sweep.run_sweep(est, ["c=0:1:1000"], replicates=200)
    monkeypatch.setattr(sweep, "MAX_TASKS", 5)
    with pytest.raises(ConfigError, match=r"the sweep has 6 tasks \(3 grid values x 2 replicates\), more than the limit "
                                          r"of 5"):
        make_tasks(est, normalize_grid(est, ["c=0,0.5,1"]), 2, 0)
    assert len(make_tasks(est, normalize_grid(est, ["c=0,0.5,1"]), 1, 0)) == 3


@pytest.mark.parametrize("replicates, message", [(2.5, "replicates must be a whole number, got 2.5"),
                                                 (True, "replicates must be a whole number, got True"),
                                                 (0, "replicates must be >= 1, got 0")])
def test_replicates_must_be_a_count(est, replicates, message):
    with pytest.raises(ConfigError, match=message):
        make_tasks(est, normalize_grid(est, ["c=0,0.5"]), replicates, 0)


def test_valid_grid_unchanged(est):
    grid = normalize_grid(est, ["c=0:1:3", "p=0.05,0.2", "paper_kernel=true,false"])
    assert grid == {"population.c": [0.0, 0.5, 1.0], "learning.p": [0.05, 0.2], "model.paper_kernel": [True, False]}
    tasks = make_tasks(est, grid, 2, 7)
    assert len(tasks) == 24 and tasks[0].params == (("population.c", 0.0), ("learning.p", 0.05),
                                                    ("model.paper_kernel", True))
