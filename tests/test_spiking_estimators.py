"""The paper's window estimators and ground truths (quick forms of A3 / A3b)."""

import numpy as np
import pytest

from bci_credit.analysis.spiking import observed_dependence, rdd_constant, rdd_constant_se, rdd_linear
from bci_credit.sim import LIFParams, simulate
from bci_credit.sim.truth import paired_do_effects, spike_perturbation_effects
from bci_credit.tasks.costs import QuadraticCost


def test_estimators_on_a_known_jump():
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 2, size=(200_000, 1))
    r = 3.0 * (z[:, 0] > 1) + 2.0 * (z[:, 0] - 1) + rng.normal(0, 1, 200_000)
    lin = rdd_linear(z, r, 0.2)
    const = rdd_constant(z, r, 0.2)
    se = rdd_constant_se(z, r, 0.2)
    assert abs(lin[0] - 3.0) < 4 * 2 * se[0]  # linear is unbiased (its SE is about twice the constant's)
    # the constant estimator is biased by slope * p = 2 * 0.2 = 0.4
    assert const[0] - 3.0 == pytest.approx(0.4, abs=4 * se[0])
    # one side empty -> NaN, not an error
    assert np.isnan(rdd_constant(np.full((10, 1), 0.2), np.ones(10), 0.1)[0])


@pytest.mark.parametrize("drive", [0.97, 0.95, 1.03, 1.0 + 1 / 3])
def test_linear_rdd_without_a_line_on_one_side_is_nan(drive):
    """All windows of one side at one drive: no line fits there, so the estimate is NaN (rounding gave
    a number of any size or NaN, depending on the drive's value)."""
    rng = np.random.default_rng(1)
    other = rng.uniform(1.0, 1.05, 40) if drive < 1 else rng.uniform(0.95, 1.0, 40)
    z = np.concatenate([np.full(40, drive), other])[:, None]
    r = rng.normal(size=80)
    assert np.isnan(rdd_linear(z, r, 0.1 if drive < 1.1 else 0.5)[0])
    z[0, 0] += 1e-3  # two distinct drives: a line, a finite estimate
    assert np.isfinite(rdd_linear(z, r, 0.1 if drive < 1.1 else 0.5)[0])


def test_linear_rdd_keeps_a_line_through_close_drives():
    """Drives far from threshold relative to their spread still fit a line (as numpy.polyfit does)."""
    z, r = np.array([1.5, 1.50001, 0.7, 0.9])[:, None], np.array([1.0, 1.2, 0.0, 0.1])
    above = np.polyval(np.polyfit([0.5, 0.50001], [1.0, 1.2], 1), 0.0)
    below = np.polyval(np.polyfit([-0.3, -0.1], [0.0, 0.1], 1), 0.0)
    assert rdd_linear(z, r, 1.0)[0] == pytest.approx(above - below, rel=1e-6)


@pytest.fixture(scope="module")
def fig3a_quick():
    """10 x 100-s runs per c of the Fig. 3A setting (the full version is the fig3a recipe)."""
    p = LIFParams(sigma=10.0, window_s=0.02, tau_s=0.02, paper_kernel=True)
    cs = np.repeat([0.01, 0.99], 10)
    w = np.tile([12.0, 9.0], (cs.size, 1))
    block, pop = simulate(w, 100.0, c=cs, params=p, seed=2024, record_spikes=False)
    cost = QuadraticCost()
    r = cost(block.s_end)
    return cs, block, pop, r, cost


def test_rdd_flat_in_c_and_od_confounded(fig3a_quick):
    """A3 (i)-(ii) in quick form: RDD at p = 0.05 barely moves with c, OD falls with c."""
    cs, block, pop, r, cost = fig3a_quick
    rdd = rdd_constant(block.drive, r, 0.0464)[:, 0]
    od = observed_dependence(block.drive, r)
    lo, hi = cs == 0.01, cs == 0.99
    se = np.hypot(rdd[lo].std(ddof=1) / np.sqrt(lo.sum()), rdd[hi].std(ddof=1) / np.sqrt(hi.sum()))
    assert abs(rdd[lo].mean() - rdd[hi].mean()) < max(0.3, 3 * se)
    # OD matches the reference table of rdd_model.md §6 A3 (4.81 at c = 0.01, 3.56 at c = 0.99,
    # sd 0.07 / 0.06 per run -> 4 standard errors of a 10-run mean is about 0.09). Note the table's
    # own ratio is 0.74, above the 0.7 of pass criterion (ii); we check against the table.
    assert od[lo, 0].mean() == pytest.approx(4.81, abs=0.1)
    assert od[hi, 0].mean() == pytest.approx(3.56, abs=0.1)
    # neuron 2: OD flips sign at c = 0.99 (-3.00 -> +0.10), while its truth is -3.26
    assert od[hi, 1].mean() > -0.5 and od[lo, 1].mean() < -2.5


def test_paired_do_truth_and_sp_truth(fig3a_quick):
    cs, block, pop, r, cost = fig3a_quick
    eff = paired_do_effects(block.s_end, block.s_window, cost, window_steps=20, decay=pop.decay, k0=pop.k0, seed=1)
    beta = eff.mean(axis=1).mean(axis=0)
    assert beta[0] == pytest.approx(5.16, abs=0.15)  # rdd_model.md §6 A3: 5.16 (paired do)
    assert beta[1] == pytest.approx(-3.26, abs=0.15)
    sp = spike_perturbation_effects(block.s_end, cost, window_steps=20, decay=pop.decay, k0=pop.k0, seed=2)
    assert sp.mean(axis=0)[0] == pytest.approx(5.47, abs=0.3)  # the repository's SP truth


def test_a_nan_drive_is_left_out_of_both_rdd_estimators():
    from bci_credit.analysis.spiking import rdd_constant, rdd_linear

    rng = np.random.default_rng(0)
    z = rng.uniform(0, 2, (1000, 2))
    r = 2.0 * (z[:, 0] > 1) + 0.5 * (z[:, 0] - 1) + rng.normal(0, 0.3, 1000)
    out_of_band = int(np.argmax(np.abs(z[:, 0] - 1) > 0.5))
    clean_c, clean_l = rdd_constant(z, r, 0.1), rdd_linear(z, r, 0.1)
    z[out_of_band, 0] = np.nan
    np.testing.assert_array_equal(rdd_constant(z, r, 0.1), clean_c)
    np.testing.assert_array_equal(rdd_linear(z, r, 0.1), clean_l)  # was NaN
