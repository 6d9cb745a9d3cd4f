"""The single-unit BCI simulator (bci_credit.tasks.bci): recordings, ground truth, learners, mappings."""

import numpy as np
import pandas as pd
import pytest

from bci_credit.learning import RepoRDDRule, check_learning_rule
from bci_credit.learning.loop import run_online
from bci_credit.learning.oracle import NoLearningRule, OracleRule
from bci_credit.learning.stdp import RewardModulatedSTDPRule
from bci_credit.sim.lif import LIFPopulation
from bci_credit.tasks.bci import (
    BCI_MODEL, Block, CouplingConfig, NoiseConfig, SessionConfig, TuningConfig, default_session_config,
    resolve_rule, run_session,
)
from bci_credit.tasks.costs import TargetRateCost
from bci_credit.tasks.protocols import dual_blocks, pretrain_then_perturb

BLOCKS = (Block("baseline", 20.0, reward=False), Block("conditioning", 100.0))


@pytest.fixture(scope="module")
def session():
    """A 6-unit threshold session with RDD learning and dense ground truth (120 s)."""
    cfg = SessionConfig(n_units=6, seed=11, noise=NoiseConfig(c=0.5), blocks=BLOCKS, rule="rdd",
                        mapping={"name": "threshold", "refractory_s": 0.25},
                        rule_params={"p": 0.2, "eta": 0.05, "epsilon": 20.0, "linear": False},
                        truth={"every_s": 0.5, "units": "all"})
    return run_session(cfg).recordings[0]


def test_session_recording_has_what_the_analysis_layer_needs(session):
    rec = session
    W = len(rec.windows)
    assert W == 2400 and rec.drive.shape == (W, 6) and rec.spiked.shape == (W, 6)
    assert list(rec.windows.columns[:3]) == ["start_s", "stop_s", "reward"]
    # sharp design: H = 1 exactly when Z > theta
    assert np.array_equal(rec.spiked, rec.drive > rec.units["threshold"].iloc[0])
    assert rec.units["is_control"].tolist() == [True] + [False] * 5
    tr = rec.trials
    for col in ("start_s", "stop_s", "block", "success", "reward_time_s"):
        assert col in tr.columns
    assert tr["success"].dtype == bool and tr["reward_time_s"].dtype == float
    assert pd.api.types.is_string_dtype(tr["block"])
    assert set(tr["block"]) == {"baseline", "conditioning"}
    # rewards only in the rewarded block, and the event series matches the trials
    base = rec.windows["block"] == "baseline"
    assert rec.windows.loc[base, "reward"].sum() == 0 and rec.windows.loc[~base, "reward"].sum() > 0
    ev = rec.series["reward"]
    assert ev.kind == "events" and ev.t_s.size == np.isfinite(tr["reward_time_s"]).sum() == rec.windows["reward"].sum()
    dec = rec.series["decoder_output"]
    assert dec.unit == "Hz" and dec.t_s.size == pytest.approx(120 * 60, abs=2)
    d = rec.meta["decoder"]
    assert d["mapping"] == "threshold" and d["control_units"] == [0] and np.isfinite(d["theta_hz"])
    # theta is the 85th percentile of the baseline decoder output (set after the baseline)
    t = dec.t_s < 20.0
    assert d["theta_hz"] == pytest.approx(np.percentile(dec.values[t], 85), rel=1e-9)
    assert rec.weights.values.shape[1] == 6 and all(np.all(np.diff(s) > 0) for s in rec.spike_times)


def test_direct_effect_is_nonzero_only_for_the_control_unit(session):
    u = session.units
    eff, se = u["true_direct_effect"].to_numpy(), u["true_direct_effect_se"].to_numpy()
    assert eff[0] > 3 * se[0]  # the control unit's spikes cause reward
    np.testing.assert_array_less(np.abs(eff[1:]), 3 * se[1:] + 1e-12)  # within 3 SE of 0 (exactly 0 here)
    assert np.all(u["true_total_effect"].to_numpy()[1:] == 0)
    rem = u["true_removal_marginal"].to_numpy()
    assert rem[0] > 0 and np.all(rem[1:] == 0)


def test_coupling_gives_a_total_but_no_direct_effect():
    """A unit that excites the control unit has a total (network) effect on reward, no direct one."""
    J = np.zeros((4, 4))
    J[0, 1] = J[0, 2] = 1.0  # units 1 and 2 excite the control unit 0; unit 3 is not connected
    cfg = SessionConfig(n_units=4, seed=5, noise=NoiseConfig(c=0.0), rule=None, coupling=CouplingConfig(matrix=J),
                        blocks=(Block("baseline", 10.0, reward=False), Block("task", 80.0)),
                        truth={"every_s": 0.25, "units": "all", "horizon_s": 0.5})
    rec = run_session(cfg).recordings[0]
    u = rec.units
    assert np.all(u["true_direct_effect"].to_numpy()[1:] == 0)
    tot, se = u["true_total_effect"].to_numpy(), u["true_total_effect_se"].to_numpy()
    both = tot[1:3].mean()
    assert both > 3 * np.sqrt(np.sum(se[1:3] ** 2)) / 2  # the two presynaptic units, pooled
    assert tot[3] == 0


def test_same_seed_same_session_and_batched_equals_single():
    cfg = SessionConfig(n_units=5, seed=3, blocks=(Block("baseline", 5.0, reward=False), Block("c", 10.0)), rule="reinforce",
                        rule_params={"epsilon": 40.0})
    a = run_session(cfg, truth=False).recordings[0]
    b = run_session(cfg, truth=False).recordings[0]
    assert a.equals(b)
    two = run_session(cfg.replace(n_replicates=2), truth=False).recordings[0]
    np.testing.assert_array_equal(two.drive, a.drive)
    np.testing.assert_array_equal(two.weights.values, a.weights.values)


def test_target_rate_mapping_is_the_papers_online_loop():
    """The session loop on the paper's special-neuron cost equals run_online with the same noise."""
    N, w0, seed = 4, np.array([12.0, 9.0, 14.0, 10.0]), 9
    rule = RepoRDDRule(p=0.2, eta=0.1, epsilon=1e4)
    cfg = SessionConfig(n_units=N, seed=seed, w0=w0, noise=NoiseConfig(c=0.5), mapping={"name": "target_rate"},
                        blocks=(Block("task", 20.0, control="manual"),), truth={"every_s": 0})
    rec = run_session(cfg, rule=rule).recordings[0]
    pop = LIFPopulation(w0[None, :], c=0.5, params=BCI_MODEL, seed=np.random.SeedSequence(seed).spawn(5)[1])
    ref = rule.clone()
    blocks, _ = run_online(pop, ref, TargetRateCost.special_neuron(N), 400)
    np.testing.assert_array_equal(rec.units["w_final"].to_numpy(), ref.weights_[0])
    cost = np.concatenate([TargetRateCost.special_neuron(N)(b.s_end[:, 0, :]) for b in blocks])
    np.testing.assert_allclose(rec.windows["cost"].to_numpy(), cost, rtol=1e-12)


def test_oracle_moves_only_the_control_unit_and_no_learning_moves_nothing():
    cfg = SessionConfig(n_units=5, seed=2, blocks=BLOCKS, truth={"every_s": 0})
    rec = run_session(cfg, rule=OracleRule(epsilon=20.0)).recordings[0]
    w0, w1 = rec.units["w_initial"].to_numpy(), rec.units["w_final"].to_numpy()
    assert w1[0] > w0[0] + 1.0
    np.testing.assert_array_equal(w1[1:], w0[1:])
    rec = run_session(cfg, rule=NoLearningRule()).recordings[0]
    np.testing.assert_array_equal(rec.units["w_final"].to_numpy(), rec.units["w_initial"].to_numpy())


@pytest.mark.parametrize("rule", [RewardModulatedSTDPRule(), RewardModulatedSTDPRule(baseline="none"),
                                  OracleRule(cost="banana"), OracleRule(beta=[1e-3, -1e-3]), NoLearningRule()],
                         ids=lambda r: repr(r)[:30])
def test_new_rules_follow_the_contract(rule):
    check_learning_rule(rule, n_windows=200)


def test_every_rule_runs_through_the_session():
    cfg = SessionConfig(n_units=4, seed=1, blocks=(Block("baseline", 3.0, reward=False), Block("c", 4.0)),
                        truth={"every_s": 0})
    from bci_credit.tasks.protocols import RULE_NAMES, default_rule_params

    for name in RULE_NAMES:
        rec = run_session(cfg, rule=name, rule_params=default_rule_params(name, "threshold")).recordings[0]
        assert rec.meta["learning_rule"] == (None if name == "none" else type(resolve_rule(name)).__name__)
    with pytest.raises(ValueError, match="unknown learning rule"):
        resolve_rule("backprop")


def test_cursor_and_dual_mappings_record_cursor_wrist_and_trials():
    cfg = SessionConfig(n_units=6, seed=4, tuning=TuningConfig(depth=0.7), mapping={"name": "dual", "timeout_s": 5.0},
                        blocks=dual_blocks(10.0, 10.0, 10.0, 10.0), rule="rdd", truth={"every_s": 0})
    rec = run_session(cfg).recordings[0]
    assert rec.series["cursor"].values.shape[1] == 2 and rec.series["wrist"].values.shape[1] == 2
    assert set(rec.trials["block"]) == {"MC1", "BC", "DC", "MC2"}
    assert rec.trials.loc[rec.trials.block == "MC1", "success"].mean() > 0.5  # the wrist reaches targets
    bc = rec.trials[rec.trials.block == "BC"]
    assert np.all(bc["target_x"] == 0)  # brain control moves axis 1 only
    cfg1 = SessionConfig(n_units=4, seed=4, mapping={"name": "cursor1d", "targets": [0.3], "timeout_s": 5.0},
                         blocks=(Block("BC", 20.0),), truth={"every_s": 0})
    rec1 = run_session(cfg1).recordings[0]
    assert rec1.series["cursor"].values.ndim == 1 and np.all(np.abs(rec1.series["cursor"].values) <= 0.5)
    assert set(rec1.trials["target_x"]) == {0.3}


def test_ou_latent_noise_gives_the_requested_window_correlation():
    """Window-summed input noise of two units has correlation c (OU latents + private white noise)."""
    from bci_credit.tasks.bci_population import _Exogenous, _noise_layout, build_population

    cfg = SessionConfig(n_units=2, seed=1, noise=NoiseConfig(c=0.6, kind="ou", tau_latent_s=0.1), w0=[10.0, 10.0])
    spec = build_population(cfg)
    ex = _Exogenous(cfg, spec, np.random.SeedSequence(0).spawn(1), keep=1)
    lat = np.concatenate([ex.window(k)[0][:, 0, :] for k in range(4000)])  # (steps, 2)
    _, _, _, _ = _noise_layout(cfg)
    n = BCI_MODEL.window_steps
    rng = np.random.default_rng(2)
    tot = lat + BCI_MODEL.noise_scale * rng.standard_normal(lat.shape)  # + the engine's private noise
    ws = tot.reshape(-1, n, 2).sum(axis=1)
    r = np.corrcoef(ws.T)[0, 1]
    assert r == pytest.approx(0.6, abs=3 * (1 - 0.36) / np.sqrt(ws.shape[0]) + 0.01)


def test_baseline_rates_are_calibrated():
    cfg = SessionConfig(n_units=8, seed=6, rule=None, control_rate_hz=8.0,
                        blocks=(Block("baseline", 200.0, reward=False),), truth={"every_s": 0})
    rec = run_session(cfg).recordings[0]
    target = rec.units["baseline_rate_hz"].to_numpy()
    assert np.all((target[1:] >= 5) & (target[1:] <= 20)) and target[0] == 8.0
    # rate error of a 200-s estimate: ~sqrt(r / 200 s) (Poisson-like), plus the calibration's own error
    np.testing.assert_array_less(np.abs(rec.rates_hz() - target), 4 * np.sqrt(target / 200.0) + 0.05 * target)


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="control_units"):
        SessionConfig(n_units=3, control_units=(5,))
    with pytest.raises(ValueError, match="unknown mapping"):
        SessionConfig(mapping={"name": "telepathy"})
    with pytest.raises(ValueError, match="theta_hz"):
        run_session(SessionConfig(n_units=3, blocks=(Block("c", 1.0),), truth={"every_s": 0}))
    with pytest.raises(ValueError, match="c must lie"):
        NoiseConfig(c=1.0)


def test_perturbed_phase_starts_from_pretrained_weights():
    """rdd_model.md §7.10: the original notebook restarted the perturbed runs from the initial weights."""
    res = pretrain_then_perturb(RepoRDDRule(p=0.2, eta=0.1, epsilon=1e4), n_neurons=4, n_replicates=2,
                                pretrain_s=10.0, perturb_s=2.0, seed=1, sample_every_s=1.0)
    np.testing.assert_array_equal(res.weights_perturb[0], res.w_pretrained)
    assert not np.allclose(res.w_pretrained, res.w_initial)


def test_default_session_for_the_demo_is_fast_and_learns():
    import time

    t = time.process_time()
    rec = run_session(default_session_config(n_units=10, blocks=(Block("baseline", 30.0, reward=False),
                                                                  Block("conditioning", 60.0)))).recordings[0]
    assert time.process_time() - t < 30
    assert rec.units["w_final"].iloc[0] > rec.units["w_initial"].iloc[0]


def test_spike_injection_probes_the_decoder_and_leaves_the_factual_session():
    """With the weights frozen (epsilon = 0) the session equals the same seed without a rule, spike for spike:
    the injected spikes enter only a probe copy of the decoder. The probe credits the decoder unit: its
    effect estimate (on the cost, so negative) is far from zero, the other units' average near zero."""
    base = dict(seed=3, n_replicates=2, blocks=BLOCKS)
    frozen = run_session(default_session_config(rule="spike_injection", rule_params={"epsilon": 0.0}, **base),
                         truth=False)
    none = run_session(default_session_config(rule=None, **base), truth=False)
    for a, b in zip(frozen.recordings, none.recordings):
        assert all(np.array_equal(x, y) for x, y in zip(a.spike_times, b.spike_times))
        assert np.array_equal(a.windows["reward"], b.windows["reward"])
    assert frozen.rule.n_updates_.min() > 300  # about 1 - (1 - m)^50 = 22 % of the 2000 conditioning windows
    learned = run_session(default_session_config(rule="spike_injection", **base), truth=False)
    beta = np.asarray(learned.rule.history_["beta"])  # (windows, replicates, units)
    late = beta[beta.shape[0] // 2:]
    control, others = late[..., 0].mean(), late[..., 1:].mean()
    assert control < -0.01 and abs(others) < 0.25 * abs(control), (control, others)
    assert (learned.rule.weights_[:, 0] > frozen.rule.weights_[:, 0]).all()  # the control unit's gain grew


def test_default_session_config_takes_the_named_rules_defaults():
    from bci_credit.tasks.protocols import default_rule_params

    assert default_session_config(rule="spike_injection").rule_params == default_rule_params("spike_injection")
    assert default_session_config(rule="reinforce", rule_params={"epsilon": 1.0}).rule_params == {"epsilon": 1.0}
    assert default_session_config(rule=None).rule_params == {}
    assert default_session_config().rule_params == default_rule_params("rdd")
