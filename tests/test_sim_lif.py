"""The batched LIF engine: model checks A1/A2 of rdd_model.md §6, seeding, batching, conventions."""

import numpy as np
import pytest
from scipy import stats

from bci_credit.sim import LIFParams, LIFPopulation, simulate
from bci_credit.sim._rng import ZIG_F, ZIG_K, ZIG_W, fill_normals, new_states
from bci_credit.sim.filters import delta_s_theory, output_filter

from tsettings import CORR_ATOL, CORR_STEPS, RATE_RTOL, RATE_TABLE_HZ


def test_gaussian_stream_is_standard_normal():
    st = new_states(np.random.SeedSequence(3).spawn(1))
    z = np.empty(400_000)
    fill_normals(st, 0, z, ZIG_K, ZIG_W, ZIG_F)
    n = z.size
    # moments within 4 standard errors
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.kurtosis(z)) < 4 * np.sqrt(24 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # the tail beyond the ziggurat's base strip is sampled
    assert np.mean(np.abs(z) > 3.442619855899) == pytest.approx(2 * stats.norm.sf(3.442619855899), rel=0.3)


def test_rates_match_table_and_design_is_sharp():
    """A1: rates for sigma = 10, x = 0 within 10 % of the table; H = 1 exactly when Z > theta."""
    w = np.array(sorted(RATE_TABLE_HZ))[:, None]
    params = LIFParams(sigma=10.0, window_s=0.05)
    block, pop = simulate(w, 400.0, c=0.0, params=params, seed=11)
    rates = block.counts.sum(axis=(1, 2)) / 400.0
    np.testing.assert_allclose(rates, [RATE_TABLE_HZ[k] for k in sorted(RATE_TABLE_HZ)], rtol=RATE_RTOL)
    # >= 1e5 windows in total across both checks of sharpness
    block2, _ = simulate(np.full((25, 2), 12.0), 200.0, c=0.5, params=params, seed=12)
    for b in (block, block2):
        assert np.array_equal(b.spiked, b.drive > params.threshold)
    assert block.drive.size + block2.drive.size >= 100_000


@pytest.mark.parametrize("c", [0.0, 0.5, 0.99])
def test_noise_correlation_equals_c(c):
    """A2: total noise inputs of two neurons correlate with coefficient c (+-0.01 over 1e5 steps).

    With the threshold and reset moved out of reach the membrane is a pure leaky integrator, so
    each step's input is recovered exactly from the voltage trace.
    """
    params = LIFParams(threshold=1e9, v_reset=-1e9, window_s=0.001, tau_m_s=1.0)
    pop = LIFPopulation([1.0, 1.0], c=c, params=params, seed=5, v0=0.0)
    block = pop.run(CORR_STEPS, record_traces=True)
    v = block.v_trace[0]
    prev = np.vstack([np.zeros((1, 2)), v[:-1]])
    inp = (v - prev * (1 - params.dt_s / params.tau_m_s)) / params.dt_s
    r = np.corrcoef(inp.T)[0, 1]
    assert abs(r - c) < CORR_ATOL
    np.testing.assert_allclose(inp.std(axis=0), params.sigma, rtol=0.02)


def test_same_seed_same_output_different_seed_different():
    w = np.array([[12.0, 9.0]])
    a, _ = simulate(w, 5.0, c=0.5, seed=1)
    b, _ = simulate(w, 5.0, c=0.5, seed=1)
    c, _ = simulate(w, 5.0, c=0.5, seed=2)
    for name in ("drive", "spiked", "s_end", "spike_step"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.drive, c.drive)


def test_batched_replicates_equal_one_by_one():
    seeds = [101, 202, 303]
    w = np.array([[12.0, 9.0], [5.0, 15.0], [20.0, 2.0]])
    cs = np.array([0.0, 0.5, 0.99])
    batch, _ = simulate(w, 4.0, c=cs, seed=seeds)
    for r, sd in enumerate(seeds):
        one, _ = simulate(w[r:r + 1], 4.0, c=cs[r], seed=[sd])
        assert np.array_equal(batch.drive[r], one.drive[0])
        assert np.array_equal(batch.s_end[r], one.s_end[0])
        sel = batch.spike_rep == r
        assert np.array_equal(batch.spike_step[sel], one.spike_step)


def test_result_independent_of_how_the_run_is_split():
    pop1 = LIFPopulation([12.0, 9.0], c=0.5, seed=9)
    whole = pop1.run(300)
    pop2 = LIFPopulation([12.0, 9.0], c=0.5, seed=9)
    parts = [pop2.run(k) for k in (1, 99, 200)]
    assert np.array_equal(whole.drive, np.concatenate([p.drive for p in parts], axis=1))
    assert np.array_equal(whole.spike_step, np.concatenate([p.spike_step for p in parts]))


def test_taken_copies_continue_their_source_replicates():
    pop = LIFPopulation([[12.0, 9.0], [5.0, 15.0]], c=[0.2, 0.9], x=[[0.1, 0.0], [0.0, 0.3]], seed=4)
    pop.run(20)
    snap = pop.snapshot()
    later = pop.run(30)  # the source goes on
    copies = pop.take([1, 1, 0], snap)  # copies of the state before those 30 windows
    again = copies.run(30)
    for j, r in enumerate([1, 1, 0]):
        assert np.array_equal(again.drive[j], later.drive[r]) and np.array_equal(again.s_end[j], later.s_end[r])
    assert copies.n_replicates == 3 and pop.n_replicates == 2 and pop.step == snap["step"] + 30 * pop.params.window_steps


def test_sde_convention_equals_per_step_with_rescaled_sigma():
    dt = 0.001
    a, _ = simulate([[12.0, 9.0]], 3.0, c=0.5, seed=4, params=LIFParams(sigma=10.0, noise="per_step"))
    b, _ = simulate([[12.0, 9.0]], 3.0, c=0.5, seed=4, params=LIFParams(sigma=10.0 * np.sqrt(dt), noise="sde"))
    np.testing.assert_allclose(a.drive, b.drive, rtol=1e-12, atol=1e-12)
    assert np.array_equal(a.spiked, b.spiked)


def test_refractory_period_and_floor():
    params = LIFParams(window_s=0.001, sigma=10.0)
    pop = LIFPopulation([20.0], params=params, seed=3)
    block = pop.run(50_000, record_traces=True)
    steps = block.spike_step
    assert np.diff(steps).min() >= params.refractory_steps  # at most one spike per 3 steps
    # after each step v is floored at v_reset: the pre-reset trace dips at most one step below it
    step_sd = params.dt_s * 20.0 * params.sigma
    assert block.v_trace.min() > params.v_reset - 6 * step_sd
    assert (pop.v >= params.v_reset).all()


def test_output_filter_conventions():
    decay, k0 = output_filter(0.02, 0.001)
    assert k0 == pytest.approx(1 - np.exp(-0.05))
    # the original code's kernel: jump 0.0247 (tau_s = 0.02) and 0.00252 (tau_s = 0.2), rdd_model.md §1.3
    assert output_filter(0.02, paper_kernel=True)[1] == pytest.approx(0.0247, abs=5e-5)
    assert output_filter(0.2, paper_kernel=True)[1] == pytest.approx(0.00252, abs=5e-6)
    # mean of s equals spikes per step
    block, pop = simulate([[15.0]], 200.0, c=0.0, seed=8, params=LIFParams(tau_s=0.02, window_s=0.02))
    assert block.s_end.mean() == pytest.approx(block.counts.sum() / (200.0 / 0.001), rel=0.05)
    assert 0 < delta_s_theory(50, 0.2) < output_filter(0.2)[1]


def test_bad_input_messages():
    with pytest.raises(ValueError, match="c must lie in"):
        LIFPopulation([1.0, 2.0], c=1.5)
    with pytest.raises(ValueError, match="broadcast"):
        LIFPopulation(np.ones((2, 3)), x=np.ones(5))
    with pytest.raises(ValueError, match="whole number"):
        LIFParams(window_s=0.0015)
    with pytest.raises(ValueError, match="one per replicate"):
        LIFPopulation(np.ones((3, 2)), seed=[1, 2])


def test_node_perturbation_current_leaves_network_noise_unchanged():
    a = LIFPopulation([12.0, 9.0], c=0.5, seed=2, sigma_pert=0.0).run(50, record_traces=True)
    b = LIFPopulation([12.0, 9.0], c=0.5, seed=2, sigma_pert=20.0).run(50, record_traces=True)
    assert b.eligibility is not None and a.eligibility is None
    assert not np.array_equal(a.v_trace, b.v_trace)
    assert np.abs(b.eligibility).sum() > 0
