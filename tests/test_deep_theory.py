"""NP theory: λ̂ unbiased, Theorem 1 (readout B → W), the O(c_h) bias, Theorem 2 (linear network).

Thresholds are the acceptance checks of deep_np.md §7.2 (calibrated in §7.1); the statistical
ones compare with the sampling noise the estimator itself reports.
"""

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: extra threads only add contention on a shared machine

from bci_credit.deep import theory  # noqa: E402


def test_lambda_hat_unbiased_within_5_degrees():
    """Check 1: mean λ̂ over 20k draws is within 5° of ∂L/∂h (c_h = 1e-3), at sampling-noise level."""
    r = theory.lambda_hat_bias(noise_std=1e-3, n_draws=20000, seed=0)
    for site, angle in r["angle_deg"].items():
        assert angle < 5.0, r
        # an unbiased mean misses by about its standard error; a bias would add to it
        assert angle < 2.5 * r["se_angle_deg"][site], r


@pytest.mark.parametrize("noise_std", [1e-2, 1.0])
def test_readout_least_squares_converges(noise_std):
    """Check 2 / Theorem 1: exact LS B → W for a linear readout, for small and large noise alike."""
    r = theory.readout_consistency(noise_std, n_batches=3000, batch_size=32, b_solver="ls", gamma=1e-3,
                                   checkpoints=(1000, 3000), seed=0)["errors"]
    e32, e96 = r[32000], r[96000]
    assert e96["rel_error"] < 0.10 and e96["angle_deg"] < 5.0, r
    assert e96["rel_error"] < 0.7 * e32["rel_error"], r  # ~T^(-1/2): sqrt(1/3) = 0.58


def test_readout_sgd_converges():
    """Check 2, SGD form: a tuned η_B reaches the looser bound < 0.2."""
    r = theory.readout_consistency(1e-2, n_batches=3000, b_solver="sgd", b_lr=1e-4, checkpoints=(3000,), seed=0)
    assert r["errors"][96000]["rel_error"] < 0.2, r


def test_noise_upstream_of_a_sigmoid_is_biased():
    """Check 3: at equal T the error is larger at c_h = 1 than at c_h = 0.01 (an O(c_h) bias).

    A bias, unlike sampling noise, does not shrink with T: tripling T leaves the c_h = 1 error on
    its floor (pure variance would fall to sqrt(1/3) = 0.58 of it).
    """
    small = theory.upstream_bias(0.01, n_batches=1000, seed=0)
    large = theory.upstream_bias(1.0, n_batches=1000, seed=0)
    large_3t = theory.upstream_bias(1.0, n_batches=3000, seed=0)
    assert large["rel_error"] > small["rel_error"] + 0.1, (small, large)
    assert large["angle_deg"] > small["angle_deg"] + 3, (small, large)
    assert large_3t["rel_error"] > 0.8 * large["rel_error"], (large, large_3t)


def test_linear_network_all_layers_converge():
    """Theorem 2: every layer's B → W in a linear network, lower layers regressed on ẽ (learned B).

    Identifiability needs a full-rank error covariance at every layer; in a linear network each
    error is a linear image of the output error, so the hidden layers must not be wider than the
    output (sizes 12-6-4-8).
    """
    r = theory.linear_network_consistency(1e-2, n_batches=3000, sizes=(12, 6, 4, 8), perturb="cycle",
                                          checkpoints=(300, 3000), seed=0)["errors"]
    early, late = r[9600], r[96000]
    assert set(late) == {1, 2}
    for layer in late:
        assert late[layer][0] < 0.5 * early[layer][0], r
        assert late[layer][0] < 0.2 and late[layer][1] < 10, r


def _fashion_or_skip():
    from bci_credit.deep.datasets import load_dataset

    try:
        return load_dataset("fashion-mnist")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


@pytest.mark.slow
def test_fixed_w_convergence_on_fashion_mnist():
    """Check 4: B of the paper's MLP learned with W frozen (σ = 1e-2, exact LS, γ = 0.1).

    The block errors fall like T^(-1/2) (10× the samples: × 0.32) and the W update is within 45°
    of BP's; the top layer's B reaches 0.1 only after ~7e5 samples (see analysis/deep_np_checks.py).
    """
    ds = _fashion_or_skip()
    r = theory.fixed_w_convergence(ds.x_train.reshape(len(ds.x_train), -1), ds.y_train, n_samples=100_000,
                                   noise_std=1e-2, gamma=0.1, seed=0)
    b = r["blocks"]
    top = [row["rel_error_2"] for row in b]
    assert top[-1] < 0.5 * top[0], top
    assert sum(d < 0 for d in (top[i + 1] - top[i] for i in range(len(top) - 1))) >= len(top) - 2  # ~monotone
    assert b[-1]["rel_error_1"] < b[0]["rel_error_1"]
    assert b[-1]["update_angle_deg_0"] < 45 and b[-1]["update_angle_deg_1"] < 45, b[-1]
    # why the top B is slow: most of its error lies along the one direction of e = ŷ − y that
    # barely varies (the sum over classes); the feedback signal it delivers is already within 10 %
    assert b[-1]["least_excited_share_of_error_2"] > 0.5, b[-1]
    assert b[-1]["least_excited_eigenvalue_ratio_2"] < 0.1, b[-1]
    assert b[-1]["rel_error_signal_weighted_2"] < 0.1, b[-1]


def test_error_structure_separates_weak_directions():
    """B wrong only along the least-excited direction of its regressor: excited part exact."""
    import numpy as np

    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    cov = U @ np.diag([1e-4, 0.5, 1.0, 2.0]) @ U.T
    W = rng.standard_normal((4, 6))
    B = W + np.outer(U[:, 0], rng.standard_normal(6))
    r = theory.error_structure(B, W, cov, 1)
    assert r["rel_error_excited"] < 1e-12 and r["sign_congruence_excited"] == 1.0
    assert abs(r["weak_share_of_error"] - 1.0) < 1e-12
    assert r["rel_error_signal_weighted"] < 0.02  # weighted by a variance of 1e-4


def test_lower_feedback_is_determined_only_where_the_error_varies():
    """A linear 12-8-6-3 network, W frozen, exact LS: the lower B regresses on a 6-dim error that
    the 3-dim output error drives, so at most 3 directions are excited; there B converges, while
    the rest stays at the ridge prior (0) and carries nearly all of ‖B − W‖."""
    from bci_credit.deep import convert
    from bci_credit.deep.models import mlp

    g = torch.Generator().manual_seed(0)
    model = convert(mlp((12, 8, 6, 3), "linear", seed=1).double(), "np", seed=2, noise_std=1e-2, gamma=1e-3)
    teacher = torch.randn(12, 3, generator=g, dtype=torch.float64)
    x_ev = torch.randn(4000, 12, generator=g, dtype=torch.float64)
    seen = []
    for n_batches in (300, 900):  # 300, then 1200 batches in all
        for _ in range(n_batches):
            x = torch.randn(64, 12, generator=g, dtype=torch.float64)
            model.update_feedback(x, x @ teacher, "mse")
        seen.append(theory.feedback_identifiability(model, x_ev, x_ev @ teacher))
    lower0, lower, top = seen[0][0], seen[1][0], seen[1][1]
    assert lower["n_directions"] == 6 and lower["n_weak"] == 3, lower
    # the excited part converges (~T^(-1/2): x0.5 for 4x the samples), the whole does not
    assert lower["rel_error_excited"] < 0.8 * lower0["rel_error_excited"], (lower0, lower)
    assert lower["rel_error"] > 0.5 and lower["weak_share_of_error"] > 0.95, lower
    assert top["n_weak"] == 0 and top["rel_error"] < 0.1, top  # real-valued targets excite every direction


@pytest.mark.slow
def test_np_aligns_better_than_fa_during_training():
    """Check 5 (shortened to 1e4 steps): NP's updates are within half FA's angle to BP's."""
    from bci_credit.deep.train import TrainConfig, train

    ds = _fashion_or_skip()
    tails = {}
    for method in ("np", "fa"):
        res = train(TrainConfig(model="mlp", method=method, epochs=6, lr=4e-3, log_every=250, checkpoint_every=0,
                                seed=0), dataset=ds)
        m = res.metrics
        tails[method] = m[m["step"] > m["step"].max() - 2500].mean(numeric_only=True)
    for col in ("update_angle_deg_L0", "update_angle_deg_L1"):
        assert tails["np"][col] < 0.5 * tails["fa"][col], (col, tails["np"][col], tails["fa"][col])
    assert tails["np"]["sign_congruence_L2"] > 0.8
