"""Feedback methods: drop-in layers, convert(), gradients of each method, NP machinery, metrics."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
torch.set_num_threads(1)  # tiny tensors: extra threads only add contention on a shared machine

from bci_credit.deep import METHODS, FeedbackConv2d, FeedbackLinear, convert  # noqa: E402
from bci_credit.deep import metrics as M  # noqa: E402
from bci_credit.deep.models import cifar_cnn, mlp  # noqa: E402


def tiny_mlp(sizes=(6, 5, 4, 3), act="sigmoid", seed=0):
    return mlp(sizes, act, seed=seed).double()


def tiny_cnn(seed=0, dropout=0.5):
    return cifar_cnn(2, 3, 8, channels=(3, 4), hidden=(6,), kernel_size=3, dropout=dropout, seed=seed).double()


def data(n=7, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, k, generator=g, dtype=torch.float64)


def weight_grads(model, x, y, loss="mse"):
    from bci_credit.deep.losses import get_loss

    out = model(x)
    total = get_loss(loss)(out, y).sum()
    layers = model.feedback_layers if hasattr(model, "feedback_layers") else [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return torch.autograd.grad(total, [l.weight for l in layers])


@pytest.mark.parametrize("method", METHODS)
def test_convert_keeps_forward_and_original(method):
    net = tiny_mlp()
    x, _ = data()
    cm = convert(net, method, seed=1)
    np.testing.assert_allclose(cm(x).detach().numpy(), net(x).detach().numpy(), rtol=0, atol=0)
    assert type(net[1]) is nn.Linear  # the original model is untouched
    assert all(isinstance(l, FeedbackLinear) for l in cm.feedback_layers)
    assert [l.fb_site for l in cm.feedback_layers] == [False, True, True]
    assert cm.feedback_layers[-1].is_output


def test_bp_matches_autograd_mlp_and_cnn():
    net = tiny_mlp()
    x, y = data()
    cm = convert(net, "bp", seed=0)
    for a, b in zip(weight_grads(cm, x, y), weight_grads(net, x, y)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
    cnn = tiny_cnn(dropout=0.0)
    xi = torch.randn(5, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    lab = torch.tensor([0, 1, 2, 1, 0])
    ccm = convert(cnn, "bp", seed=0, input_shape=(2, 8, 8))
    ccm.feedback_state.capture = True  # force the custom autograd path
    try:
        ga = weight_grads(ccm, xi, lab, "ce")
    finally:
        ccm.feedback_state.capture = False
    for a, b in zip(ga, weight_grads(cnn, xi, lab, "ce")):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-13)


def test_fa_gradients_follow_the_formula():
    net = tiny_mlp((6, 5, 3))
    x, y = data()
    cm = convert(net, "fa", seed=2)
    W1, W2 = cm.feedback_layers[0].weight, cm.feedback_layers[1].weight
    B2 = cm.feedback_layers[1].feedback
    a1 = x @ W1.T + cm.feedback_layers[0].bias
    h1 = torch.sigmoid(a1)
    e2 = (h1 @ W2.T + cm.feedback_layers[1].bias) - y
    e1 = (e2 @ B2) * h1 * (1 - h1)
    g1, g2 = weight_grads(cm, x, y)
    np.testing.assert_allclose(g2.numpy(), (e2.T @ h1).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g1.numpy(), (e1.T @ x).detach().numpy(), rtol=1e-12)
    assert not torch.allclose(B2, W2)


def test_dfa_gradients_follow_the_formula():
    net = tiny_mlp((6, 5, 4, 3))
    x, y = data()
    cm = convert(net, "dfa", seed=2)
    L = cm.feedback_layers
    h0 = x
    a1 = h0 @ L[0].weight.T + L[0].bias
    h1 = torch.sigmoid(a1)
    a2 = h1 @ L[1].weight.T + L[1].bias
    h2 = torch.sigmoid(a2)
    E = h2 @ L[2].weight.T + L[2].bias - y
    D1, D2 = L[1].feedback, L[2].feedback  # (3, 5), (3, 4): output error to each site
    assert D1.shape == (3, 5) and D2.shape == (3, 4)
    e1 = (E @ D1) * h1 * (1 - h1)
    e2 = (E @ D2) * h2 * (1 - h2)
    g = weight_grads(cm, x, y)
    np.testing.assert_allclose(g[2].numpy(), (E.T @ h2).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g[1].numpy(), (e2.T @ h1).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g[0].numpy(), (e1.T @ h0).detach().numpy(), rtol=1e-12)


def test_sign_symmetry_family():
    net = tiny_mlp()
    for method in ("usf", "frsf", "brsf"):
        cm = convert(net, method, seed=0)
        layer = cm.feedback_layers[1]
        B1, B2 = layer.feedback_weight(), layer.feedback_weight()
        assert torch.equal(torch.sign(B1), torch.sign(layer.weight))
        if method == "usf":
            np.testing.assert_allclose(B1.abs().detach().numpy(), float(layer.weight.detach().pow(2).mean().sqrt()))
        if method == "frsf":
            assert torch.equal(B1, B2)
        if method == "brsf":
            assert not torch.equal(B1, B2)  # redrawn for every batch


def test_conv_feedback_uses_B_for_input_and_exact_weight_gradient():
    conv = nn.Conv2d(3, 4, 3, padding=1).double()
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), conv, nn.Tanh(), nn.Flatten(), nn.Linear(4 * 25, 2)).double()
    cm = convert(net, "fa", seed=0, input_shape=(2, 5, 5))
    layer = cm.feedback_layers[1]
    assert isinstance(layer, FeedbackConv2d)
    h = torch.randn(3, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    out = layer(h)
    gx, gw = torch.autograd.grad(out, [h, layer.weight], g)
    expect_x = torch.nn.functional.conv_transpose2d(g, layer.feedback, padding=1)
    np.testing.assert_allclose(gx.numpy(), expect_x.numpy(), rtol=1e-10, atol=1e-12)
    h2 = h.detach().requires_grad_(True)
    gw_bp = torch.autograd.grad(torch.nn.functional.conv2d(h2, layer.weight, layer.bias, padding=1), layer.weight, g)[0]
    np.testing.assert_allclose(gw.numpy(), gw_bp.numpy(), rtol=1e-10)


def test_weight_mirror_learns_W():
    net = tiny_mlp((6, 8, 5, 3))
    cm = convert(net, "wm", seed=0, mirror_rate=0.05, mirror_batch=64)
    before = [M.angle_deg(l.feedback, l.weight) for l in cm.sites]
    for _ in range(300):
        cm.mirror_step()
    after = [M.angle_deg(l.feedback, l.weight) for l in cm.sites]
    assert min(before) > 60
    # steady state: the EMA of the noise estimate; its angle noise is ~ sqrt(rate/2 * n_in/batch) rad
    assert max(after) < 10, after


def test_kolen_pollack_drives_B_to_W():
    net = tiny_mlp((6, 8, 5, 3))
    x, y = data(64, 6, 3, seed=4)
    cm = convert(net, "kp", seed=0, kp_decay=0.02)
    opt = torch.optim.SGD(cm.parameters(), lr=0.5)
    diff0 = [float((l.feedback - l.weight.detach()).norm()) for l in cm.sites]
    angle0 = [M.angle_deg(l.feedback, l.weight) for l in cm.sites]
    n = 100
    for _ in range(n):
        cm.step(x, y, "mse", opt, reduction="mean")
    # B receives W's update, both decay: B − W shrinks by exactly (1 − 0.02) per step
    for l, d0, a0 in zip(cm.sites, diff0, angle0):
        np.testing.assert_allclose(float((l.feedback - l.weight.detach()).norm()), d0 * 0.98**n, rtol=1e-8)
        assert M.angle_deg(l.feedback, l.weight) < a0


def test_np_noisy_pass_replays_dropout_masks():
    cnn = tiny_cnn(dropout=0.5)
    cm = convert(cnn, "np-direct", seed=0, input_shape=(2, 8, 8), noise_std=1e-7)
    cm.train()
    x = torch.rand(16, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lab = torch.arange(16) % 3
    out = cm.step(x, lab, "ce", None, reduction="mean", update_weights=False)
    # with shared masks the loss difference is O(noise): first order, ~1e-7 × |∂L/∂h| × sqrt(n)
    assert float(out.delta_loss.abs().max()) < 1e-4
    # independent masks (the ssdfa bug) would change each loss by O(1)
    with torch.no_grad():
        free = cm.module(x)
        assert float((free - cm.module(x)).abs().max()) > 1e-2


@pytest.mark.parametrize("pair", [("fa", "np"), ("dfa", "np-direct")])
def test_np_noisy_pass_leaves_the_weight_update_alone(pair):
    """With its feedback frozen (SGD at rate 0), an NP step updates W exactly as FA/DFA with the same B:
    the noisy pass only feeds the feedback regression."""
    from bci_credit.deep import FeedbackConfig

    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 2, 8, 8, dtype=torch.float64, generator=g)
    lab = torch.arange(12) % 3
    params = {}
    for method in pair:
        cfg = FeedbackConfig(b_solver="sgd", b_lr=0.0, noise_std=1e-2) if method.startswith("np") else None
        cm = convert(tiny_cnn(dropout=0.0), method, seed=0, input_shape=(2, 8, 8), config=cfg)
        opt = torch.optim.SGD(cm.parameters(), lr=0.1)
        cm.step(x, lab, "ce", opt, reduction="mean")
        params[method] = [p.detach().clone() for p in cm.parameters()]
    for a, b in zip(*params.values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("method,solver", [("np", "ls"), ("np", "sgd"), ("np-direct", "ls"), ("np-direct", "sgd")])
def test_np_steps_on_cnn_learn_every_site(method, solver):
    cnn = tiny_cnn(dropout=0.5)
    if method == "np" and solver == "ls":
        with pytest.raises(ValueError, match="b_solver='sgd'"):
            convert(cnn, method, seed=0, input_shape=(2, 8, 8), b_solver=solver)
        return
    cm = convert(cnn, method, seed=0, input_shape=(2, 8, 8), b_solver=solver, b_lr=1e-3, noise_std=1e-2)
    before = {i: B.clone() for i, B in cm.feedback_matrices().items()}
    # every site is learned: the inputs of conv2, of the first FC layer (the pooled conv map, the
    # site the ssdfa code had to disable) and of the output layer
    assert sorted(before) == [1, 2, 3]
    opt = torch.optim.Adam(cm.parameters(), lr=1e-3)
    x = torch.rand(8, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lab = torch.arange(8) % 3
    for _ in range(3):
        out = cm.step(x, lab, "ce", opt, reduction="mean")
    assert math.isfinite(float(out.loss))
    for i, B in cm.feedback_matrices().items():
        assert not torch.equal(B, before[i]), f"site {i} was not learned"


def test_np_perturb_cycle_and_site_selection():
    net = tiny_mlp((6, 5, 4, 3))
    x, y = data(16)
    cm = convert(net, "np", seed=0, perturb="cycle")
    b0 = {i: B.clone() for i, B in cm.feedback_matrices().items()}
    cm.update_feedback(x, y)
    changed = [i for i, B in cm.feedback_matrices().items() if not torch.equal(B, b0[i])]
    assert changed == [1]  # one site per step, in turn
    cm.update_feedback(x, y)
    changed = [i for i, B in cm.feedback_matrices().items() if not torch.equal(B, b0[i])]
    assert changed == [1, 2]
    with pytest.raises(ValueError, match="not perturbation sites"):
        convert(net, "np", sites=(0,))


def test_np_direct_learned_feedback_beats_dfa_signal_angle():
    """Check 8 (quick): learning D_k by NP lowers angle(E D_k, ∂L/∂h_k) relative to random DFA."""
    from bci_credit.deep.datasets import synthetic

    ds = synthetic(256, 8, shape=(2, 8, 8), n_classes=3, seed=1)
    x = torch.as_tensor(ds.x_train, dtype=torch.float64)
    lab = torch.as_tensor(ds.y_train)
    cnn = tiny_cnn(dropout=0.0)
    dfa = convert(cnn, "dfa", seed=5, input_shape=(2, 8, 8))
    npd = convert(cnn, "np-direct", seed=5, input_shape=(2, 8, 8), noise_std=1e-3, gamma=1e-3)
    for k in range(300):
        idx = slice((k * 32) % 256, (k * 32) % 256 + 32)
        npd.update_feedback(x[idx], lab[idx], "ce", reduction="mean")
    a_dfa = dfa.alignment(x[:128], lab[:128], "ce", reduction="mean")["layers"]
    a_np = npd.alignment(x[:128], lab[:128], "ce", reduction="mean")["layers"]
    for ld, ln in zip(a_dfa[1:], a_np[1:]):
        assert ln["signal_angle_deg"] < ld["signal_angle_deg"] - 10, (ld, ln)


def test_np_least_squares_statistics_are_float64_for_a_float32_model():
    """V and S sum ~1e5 batches of outer products; float32 rounding makes V indefinite (seen after
    ~7e4 steps of the paper's MLP: B exploded along the least-excited direction), so they are float64."""
    from bci_credit.deep.node_perturbation import ridge_accumulate_, ridge_solve

    for method in ("np", "np-direct"):
        model = convert(mlp((6, 5, 4, 3), seed=0), method, seed=1, b_solver="ls")  # float32 weights
        bufs = {n: b for n, b in model.named_buffers() if n.endswith(("np_S", "np_V"))}
        assert bufs and all(b.dtype == torch.float64 for b in bufs.values()), method
        x = torch.randn(16, 6)
        model.step(x, torch.randn(16, 3), "mse", torch.optim.SGD(model.parameters(), lr=0.01))
        assert all(l.feedback_weight().dtype == torch.float32 for l in model.sites)
    # float32 errors with one barely excited direction into float64 statistics: V stays positive
    # definite and B = V⁻¹S recovers the regression along the excited directions
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    scale = torch.tensor([1e-3, 1, 1, 1, 1, 1], dtype=torch.float64) * 10
    B_true = torch.randn(6, 2, generator=g, dtype=torch.float64)
    V, S = torch.eye(6, dtype=torch.float64) * 0.1, torch.zeros(6, 2, dtype=torch.float64)
    for _ in range(2000):
        e = ((torch.randn(32, 6, generator=g, dtype=torch.float64) * scale) @ U.T).float()
        ridge_accumulate_(V, e, [(S, e @ B_true.float())], gamma=0.1)
    assert float(torch.linalg.eigvalsh(V)[0]) > 0
    P = U[:, 1:] @ U[:, 1:].T
    assert float((P @ (ridge_solve(V, S) - B_true)).norm() / (P @ B_true).norm()) < 1e-5


def test_state_dict_round_trip_resumes_exactly():
    net = tiny_mlp((6, 5, 4, 3))
    x, y = data(32)
    a = convert(net, "np", seed=3, noise_std=1e-2)
    opt_a = torch.optim.SGD(a.parameters(), lr=1e-2)
    for _ in range(3):
        a.step(x, y, "mse", opt_a)
    b = convert(net, "np", seed=99)
    b.load_state_dict(a.state_dict())
    opt_b = torch.optim.SGD(b.parameters(), lr=1e-2)
    opt_b.load_state_dict(opt_a.state_dict())
    assert b.n_steps == 3
    for _ in range(3):
        a.step(x, y, "mse", opt_a)
        b.step(x, y, "mse", opt_b)
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        if isinstance(va, torch.Tensor):
            assert torch.equal(va, vb), k


def test_seeded_runs_are_identical():
    net = tiny_mlp()
    x, y = data(16)
    runs = []
    for _ in range(2):
        cm = convert(net, "np", seed=11)
        opt = torch.optim.SGD(cm.parameters(), lr=1e-2)
        for _ in range(3):
            cm.step(x, y, "mse", opt)
        runs.append(torch.cat([p.detach().reshape(-1) for p in cm.state_dict().values() if isinstance(p, torch.Tensor)]))
    assert torch.equal(runs[0], runs[1])


def test_alignment_metrics_per_layer():
    net = tiny_mlp()
    x, y = data(16)
    bp = convert(net, "bp").alignment(x, y)
    assert all(l["update_angle_deg"] == pytest.approx(0.0, abs=1e-5) for l in bp["layers"])
    fa = convert(net, "fa", seed=0).alignment(x, y)["layers"]
    assert fa[-1]["update_angle_deg"] == pytest.approx(0.0, abs=1e-5)  # output layer: exact gradient
    assert fa[0]["update_angle_deg"] > 1
    assert math.isnan(fa[0]["weight_angle_deg"])  # the first layer has no feedback
    assert 0 <= fa[1]["sign_congruence"] <= 1 and fa[1]["norm_ratio"] > 0


def test_angle_is_not_folded():
    a = torch.tensor([1.0, 2.0, -1.0])
    assert M.angle_deg(a, -a) == pytest.approx(180.0)
    assert M.angle_deg(a, torch.tensor([2.0, -1.0, 0.0])) == pytest.approx(90.0)
    assert math.isnan(M.angle_deg(a, torch.zeros(3)))
    assert M.sign_congruence(a, -a) == 0.0
    assert M.relative_error(a, a) == 0.0 and M.norm_ratio(2 * a, a) == pytest.approx(2.0)


def test_convert_rejects_bad_input():
    net = tiny_mlp()
    with pytest.raises(ValueError, match="unknown method"):
        convert(net, "magic")
    with pytest.raises(ValueError, match="input_shape"):
        convert(tiny_cnn(), "fa")
    cm = convert(net, "fa")
    with pytest.raises(ValueError, match="already converted"):
        convert(cm.module, "fa")
    with pytest.raises(ValueError, match="noise_std"):
        convert(net, "np", noise_std=0.0)


def test_numpy_batches_are_accepted_and_mismatched_ones_rejected():
    net = tiny_mlp()
    x, y = data(16)
    ref = convert(net, "fa", seed=0)
    got = convert(net, "fa", seed=0)
    # float32 / float64 arrays and integer labels work as tensors do, in the model's dtype
    a = ref.alignment(x, y)
    b = got.alignment(x.numpy().astype(np.float32), y.numpy())
    assert b["layers"][0]["update_angle_deg"] == pytest.approx(a["layers"][0]["update_angle_deg"], abs=1e-3)
    e = got.site_errors(x.numpy(), y.numpy())
    assert all(v.dtype == torch.float64 for v in e.values())
    labels = np.arange(16) % 3
    assert got.step(x.numpy(), labels).loss == pytest.approx(ref.step(x, torch.as_tensor(labels)).loss)
    with pytest.raises(ValueError, match="same number of samples"):
        got.alignment(x.numpy(), y.numpy()[:5])
