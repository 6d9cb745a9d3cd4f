"""Learning rules: the shared conformance check, A4 (online beta on synthetic data), learning sanity."""

import numpy as np
import pytest

from bci_credit.learning import (
    NodePerturbationRule, ObservedDependenceRule, RDDRule, ReinforceRule, RepoRDDRule, SpikeInjectionRule,
    WindowContext, WindowData, check_learning_rule, make_rule,
)
from bci_credit.learning.gain import OnlineGain, gain_table, LookupGain

ALL_RULES = [RDDRule(), RepoRDDRule(), ObservedDependenceRule(), NodePerturbationRule(),
             NodePerturbationRule(baseline="paired"), ReinforceRule(), RDDRule(gain="online"), RDDRule(step="rls"),
             SpikeInjectionRule(), SpikeInjectionRule(baseline="none", seed=3)]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: repr(r)[:40])
def test_conformance(rule):
    check_learning_rule(rule, n_windows=200)


def _synthetic_windows(beta, n, rng, p=0.1):
    """R = beta 1{Z > 1} + smooth(Z) + noise; Z uniform on [0.5, 1.5]."""
    z = rng.uniform(0.5, 1.5, size=n)
    d = z - 1.0
    r = beta * (z > 1) + 0.3 * d + 0.5 * d**2 + rng.normal(0, 0.5, size=n)
    return z, r


def _feed(rule, z, r):
    ctx = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.array([10.0]))
    rule.initialize(np.array([[10.0]]), ctx)
    for k in range(z.size):
        rule.update(WindowData(drive=z[k:k + 1, None], spiked=(z[k:k + 1, None] > 1), counts=np.zeros((1, 1)),
                               reward=r[k:k + 1], s_end=np.zeros((1, 1)), index=k))
    return rule


def test_canonical_rule_recovers_beta_within_5_percent():
    """A4: the canonical online rule (decaying step) recovers the jump within 5 %."""
    beta = 2.0
    z, r = _synthetic_windows(beta, 60_000, np.random.default_rng(1))
    rule = _feed(RDDRule(p=0.1, eta=1.0, step="decay", epsilon=0.0, record_every=1000), z, r)
    assert rule.beta_[0, 0] == pytest.approx(beta, rel=0.05)
    # only near-threshold windows cause plasticity
    assert rule.n_updates_[0, 0] == np.sum(np.abs(z - 1) < 0.1)


@pytest.mark.parametrize("linear", [True, False])
def test_rls_step_is_the_batch_rd_regression_at_any_reward_offset(linear):
    """step='rls' equals the batch RD estimate of the in-band windows (local-linear or local-mean),
    and a constant added to every reward leaves it unchanged (the 1/k 'decay' step has neither)."""
    from bci_credit.analysis.spiking import rdd_constant, rdd_linear

    z, r = _synthetic_windows(2.0, 4000, np.random.default_rng(5))
    batch = (rdd_linear if linear else rdd_constant)(z[:, None], r, 0.1)[0]
    for offset in (0.0, 3.0, -10.0):
        rule = _feed(RDDRule(p=0.1, step="rls", linear=linear, epsilon=0.0, record_every=1000), z, r + offset)
        assert rule.beta_[0, 0] == pytest.approx(batch, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("rule", [RDDRule(warmup=0), RDDRule(step="rls", warmup=0), RepoRDDRule()],
                         ids=["constant", "rls", "repo"])
def test_a_window_with_a_nan_reward_or_drive_teaches_nothing(rule):
    """One NaN used to turn beta and the weights into NaN for good (0 * NaN in the masks)."""
    ctx = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.array([10.0]))
    rule.initialize(np.full((1, 2), 10.0), ctx)

    def win(z, reward):
        z = np.asarray([z], float)
        return WindowData(drive=z, spiked=z > 1, counts=(z > 1).astype(float), reward=np.array([reward]),
                          s_end=0 * z, index=0)

    rule.update(win([1.05, 0.95], np.nan))   # both in band, reward missing
    rule.update(win([np.nan, 0.95], 1.0))    # neuron 0's drive missing
    assert np.isfinite(rule.beta_).all() and np.isfinite(rule.weights_).all()
    assert rule.n_updates_[0, 0] == 0
    for k in range(50):
        rule.update(win([0.95 + 0.1 * (k % 2), 1.05 - 0.1 * (k % 2)], 1.0 + (k % 2)))
    assert np.isfinite(rule.beta_).all() and np.isfinite(rule.weights_).all()


def test_repository_rule_converges_to_half_beta():
    """A4: the repository's paired 3-parameter rule converges to V0 = beta/2."""
    beta = 2.0
    z, r = _synthetic_windows(beta, 60_000, np.random.default_rng(2))
    rule = _feed(RepoRDDRule(p=0.1, eta=1.0, decay_step=True, epsilon=0.0, record_every=1000), z, r)
    assert rule.V_[0, 0, 0] == pytest.approx(beta / 2, rel=0.05)
    assert rule.beta_[0, 0] == pytest.approx(beta, rel=0.05)


def test_weights_stay_clipped_and_rule_is_built_from_config_names():
    rule = make_rule("rdd", p=0.2, epsilon=1e9, w_min=3.0, w_max=15.0)
    check_learning_rule(rule, n_windows=100)
    with pytest.raises(ValueError, match="unknown learning rule"):
        make_rule("backprop")
    with pytest.raises(ValueError, match="no parameter"):
        RDDRule().set_params(q=1)


def test_gain_table_matches_the_original_lookup_within_20_percent():
    """A1 (gain): finite-difference dmu/dw matches the original table (rdd_model.md §3.1) within 20 %."""
    original = np.array([0.000416, 0.000509, 0.000684, 0.000852, 0.000951, 0.001077, 0.001242, 0.001316,
                         0.001376, 0.001449, 0.001541])
    w = np.linspace(2, 20, 19)[:11]
    stored = LookupGain()(w)  # data/gain_table_sigma10.json, made by analysis/make_gain_table.py
    np.testing.assert_allclose(stored, original, rtol=0.2)
    _, mu, g = gain_table(np.array([8.0, 10.0, 12.0]), duration_s=300.0, seed=3)
    assert np.all(np.diff(mu) > 0)


def test_online_gain_is_local_and_positive():
    g = OnlineGain(tau_windows=10)
    ctx = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.array([10.0]))
    g.reset(np.array([[10.0, 5.0]]), ctx)
    for _ in range(100):
        g.observe(WindowData(drive=np.zeros((1, 2)), spiked=np.zeros((1, 2), bool), counts=np.array([[1, 0]]),
                             reward=np.zeros(1), s_end=np.zeros((1, 2)), index=0))
    val = g(np.array([[10.0, 5.0]]))
    assert val[0, 0] == pytest.approx(2 * (1 / 50) / 10, rel=0.01) and val[0, 1] < val[0, 0]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: repr(r)[:40])
def test_rules_clone_as_scikit_learn_estimators(rule):
    from sklearn.base import clone

    twin = clone(rule)
    assert type(twin) is type(rule) and twin is not rule
    assert twin.get_params(deep=True) == rule.get_params()


def test_set_params_checks_what_it_sets_and_keeps_the_rule_on_refusal():
    rule = RDDRule()
    with pytest.raises(ValueError, match="eta must be a finite number > 0"):
        rule.set_params(eta=-0.5, p=0.2)
    assert (rule.eta, rule.p) == (0.1, 0.1)
    with pytest.raises(ValueError, match="linear must be True or False"):
        rule.set_params(linear="no")
    with pytest.raises(ValueError, match="sigma_pert must be a finite number > 0"):
        NodePerturbationRule(sigma_pert=0.0).set_params()
    assert rule.set_params(eta=0.2).eta == 0.2


@pytest.mark.parametrize("n, match", [(2.9, "n_windows must be a whole number"), (-3, "n_windows must be >= 0")])
def test_run_online_refuses_a_number_of_windows_it_would_round(n, match):
    from bci_credit.learning.loop import run_online
    from bci_credit.sim import LIFParams, LIFPopulation
    from bci_credit.tasks.costs import BananaCost

    pop = LIFPopulation(np.array([[14.0, 7.0]]), c=0.5, params=LIFParams(window_s=0.05, tau_s=0.2), seed=0)
    with pytest.raises(ValueError, match=match):
        run_online(pop, RDDRule(), BananaCost(), n)


def test_spike_injection_recovers_the_causal_effect_that_observed_dependence_gets_wrong():
    """Strongly correlated noise (c = 0.9), reward linear in the outputs: R = 3 s_1 - 2 s_2.

    The true effect of one spike at a uniformly random step is a_i * mean(kick) (exact for a
    linear reward). Spike injection is randomised, so unconfounded; OD is confounded (neuron 2's
    sign comes out wrong). Tolerance: 4 standard errors of the mean over 8 independent replicates.
    """
    from bci_credit.analysis.spiking import observed_dependence
    from bci_credit.learning.loop import run_online
    from bci_credit.sim import LIFParams, LIFPopulation
    from bci_credit.sim.lif import concat_blocks
    from bci_credit.sim.truth import spike_kick

    a = np.array([3.0, -2.0])
    params = LIFParams(window_s=0.05, tau_s=0.2, sigma=10.0, paper_kernel=True)
    pop = LIFPopulation(np.tile([[12.0, 9.0]], (8, 1)), c=0.9, params=params, seed=3)
    rule = SpikeInjectionRule(epsilon=0.0, m=0.01, eta=0.002)
    blocks, _ = run_online(pop, rule, lambda s: s @ a, 6000)
    truth = a * spike_kick(np.arange(params.window_steps), params.window_steps, pop.decay, pop.k0).mean()
    se = rule.beta_.std(axis=0, ddof=1) / np.sqrt(8)
    assert np.all(np.abs(rule.beta_.mean(axis=0) - truth) < 4 * se), (rule.beta_.mean(axis=0), truth, se)
    assert np.all(se < 0.05 * np.abs(truth))  # the check has power: each effect known to 5 %
    b = concat_blocks(blocks)
    od = observed_dependence(b.drive, b.s_end[..., :] @ a).mean(axis=0)
    assert od[1] > 0 > truth[1]  # the confounded estimate has the wrong sign
    assert rule.n_updates_.min() > 1500  # about 1 - (1 - m)^50 = 40 % of the windows are perturbed


def test_spike_injection_checks_and_refusals():
    from bci_credit.tasks.bci import Block, SessionConfig, run_session

    session = SessionConfig(n_units=3, seed=1, blocks=(Block("c", 1.0),), rule="spike_injection",
                            mapping={"name": "target_rate"})
    with pytest.raises(ValueError, match=r"SpikeInjectionRule probes the reward by adding spikes to the decoder's "
                                         r"input; the 'target_rate' mapping reads no decoder"):
        run_session(session, truth=False)
    with pytest.raises(ValueError, match=r"SpikeInjectionRule: m must be a finite number > 0"):
        SpikeInjectionRule(m=0).initialize(np.ones((1, 2)), CTX_INJ)
    with pytest.raises(ValueError, match=r"m \(injection probability per step\) must be below 1"):
        SpikeInjectionRule(m=1.0).initialize(np.ones((1, 2)), CTX_INJ)
    rule = SpikeInjectionRule(gain=1e-3)
    rule.initialize(np.ones((1, 2)), CTX_INJ)
    win = WindowData(drive=np.ones((1, 2)), spiked=np.zeros((1, 2), bool), counts=np.zeros((1, 2)),
                     reward=np.array([0.0]), s_end=np.zeros((1, 2)), index=0)
    with pytest.raises(RuntimeError, match=r"needs perturb_outputs\(\) or draw_injections\(\) on the same window first"):
        rule.update(win)
    s = rule.perturb_outputs(np.zeros((1, 2)))
    assert s.shape == (1, 2) and rule.update(win).shape == (1, 2)


CTX_INJ = WindowContext(threshold=1.0, window_steps=50, dt_s=0.001, decay=0.99, k0=0.01, sigma=np.array([10.0]), seed=0)


def test_spike_injection_stream_follows_the_runs_seed():
    # a per-replicate seed list (the recipes') or an unseeded run fell back to one fixed stream for every run
    import dataclasses

    def first_draw(seed):
        rule = SpikeInjectionRule(gain=1e-3)
        rule.initialize(np.ones((2, 2)), dataclasses.replace(CTX_INJ, seed=seed))
        return rule.rng_.random()

    assert first_draw([3, 4]) == first_draw([3, 4]) != first_draw([3, 5])
    assert first_draw({"entropy": 9, "spawn_key": [0]}) != first_draw({"entropy": 9, "spawn_key": [1]})
    assert first_draw(None) != first_draw(None)  # unseeded: fresh entropy
    assert first_draw(7) == first_draw(7) != first_draw(8)
