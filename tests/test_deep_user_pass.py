"""Defects found by a user's pass over ``bci-credit train`` and the ``bci_credit.deep`` API.

Each test fails on the code before the fix (the reason is given in its docstring).
"""

import json
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: extra threads only add contention on a shared machine

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bci_credit.cli import main  # noqa: E402
from bci_credit.deep import convert  # noqa: E402
from bci_credit.deep import datasets as D  # noqa: E402
from bci_credit.deep.datasets import load_dataset  # noqa: E402
from bci_credit.deep.train import TrainConfig, evaluate, load_run, train  # noqa: E402


def digits_cfg(**kw):
    base = dict(model="mlp", method="bp", dataset="digits", n_train=64, n_test=32, epochs=1, batch_size=16,
                lr=0.004, log_every=2, checkpoint_every=0, seed=0, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def mlp(seed=0, act=nn.Tanh, inplace=False):
    torch.manual_seed(seed)
    first = act(inplace=True) if inplace else act()
    return nn.Sequential(nn.Linear(10, 8), first, nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))


X = torch.randn(32, 10, generator=torch.Generator().manual_seed(1))
Y = torch.arange(32) % 3


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- 1. a diverged run is an error ---------------------------------------------------------------------
def test_diverged_run_is_refused(tmp_path, capsys):
    """Old: no logged row in the 4 steps, evaluate() NaN/inf never checked -> exit 0 with a test error."""
    with pytest.raises(FloatingPointError, match="loss became (nan|inf).* lower the learning rate"):
        train(digits_cfg(lr=1e30, log_every=500))
    for bad in (math.inf, math.nan, 0.0, -1.0):
        with pytest.raises(ValueError, match="lr must be a positive finite number"):
            digits_cfg(lr=bad).resolved()
    argv = ["train", "--device", "cpu", "--dataset", "digits", "--epochs", "1", "--no-progress", "--n-train", "64"]
    assert main(argv + ["--lr", "1e30", "--log-every", "500", "--out", str(tmp_path / "a")]) == 2
    assert "lower the learning rate" in capsys.readouterr().err
    assert main(argv + ["--lr", "inf", "--out", str(tmp_path / "b")]) == 2
    assert "lr must be a positive finite number" in capsys.readouterr().err


# -- 2. in-place activation after the first layer ------------------------------------------------------
@pytest.mark.parametrize("method", ["np", "np-direct"])
def test_inplace_activation_after_first_layer(method):
    """Old: the first layer's cached clean output shared storage with the clean pass (ReLU(inplace=True)
    -> RuntimeError in backward; LeakyReLU(inplace=True) -> estimates off by orders of magnitude)."""
    m = convert(mlp(act=nn.ReLU, inplace=True), method, seed=0)
    m.step(X, Y, "ce", None)
    est = {}
    for inplace in (False, True):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(10, 8), nn.LeakyReLU(0.1, inplace=inplace), nn.Linear(8, 6), nn.Tanh(),
                            nn.Linear(6, 3))
        est[inplace] = convert(net, method, seed=0).perturbation_estimates(X, Y, "ce")
    for k in est[False]:
        # the same arithmetic on the same numbers: identical up to float32 rounding of identical ops
        torch.testing.assert_close(est[True][k], est[False][k], rtol=0, atol=0)


# -- 3. every torch dropout layer is replayed ----------------------------------------------------------
class MyDropout(nn.Dropout):
    """A subclass that keeps nn.Dropout's forward: replayable."""


class OwnForwardDropout(nn.Dropout):
    def forward(self, x):
        return F.dropout(x, self.p, self.training)


DROPOUTS = [nn.Dropout(0.5), MyDropout(0.5), nn.Dropout1d(0.5), nn.Dropout2d(0.5), nn.Dropout3d(0.5),
            nn.AlphaDropout(0.5), nn.FeatureAlphaDropout(0.5)]


def cnn_with(drop):
    torch.manual_seed(0)
    if isinstance(drop, nn.Dropout1d):  # (N, C, L)
        mid = [nn.Flatten(2), drop, nn.Flatten()]
    elif isinstance(drop, nn.Dropout3d):  # (N, C, D, H, W)
        mid = [nn.Unflatten(1, (2, 2)), drop, nn.Flatten()]
    else:
        mid = [drop, nn.Flatten()]
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(), *mid,
                         nn.Linear(4 * 36, 6), nn.Tanh(), nn.Linear(6, 3))


XI = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(2))
YI = torch.arange(16) % 3


@pytest.mark.parametrize("drop", DROPOUTS, ids=lambda d: type(d).__name__)
def test_all_dropout_layers_are_replayed(drop):
    """Old: only type(child) is nn.Dropout was replaced -> BP-vs-BP angles of 42-69 degrees, NP's |dL| 0.5-0.9."""
    bp = convert(cnn_with(drop), "bp", input_shape=(1, 6, 6), seed=0)
    for layer in bp.alignment(XI, YI, "ce")["layers"]:
        assert layer["update_angle_deg"] < 1e-2  # same masks: the same gradients up to float32 rounding
    npm = convert(cnn_with(drop), "np-direct", input_shape=(1, 6, 6), seed=0, noise_std=1e-4, b_solver="sgd")
    d = npm.step(XI, YI, "ce", None).delta_loss
    # noise 1e-4 on O(1) activities moves each per-sample loss by O(1e-4); dropout noise would be O(0.1-1)
    assert float(d.abs().max()) < 1e-2


@pytest.mark.parametrize("drop", DROPOUTS[2:], ids=lambda d: type(d).__name__)
def test_replayed_dropout_keeps_torch_semantics(drop):
    """Channel-wise masks for Dropout1d/2d/3d/FeatureAlpha, alpha dropout's affine map, same moments as torch."""
    m = convert(cnn_with(drop), "bp", input_shape=(1, 6, 6), seed=0)
    shared = [mod for mod in m.modules() if type(mod).__name__ == "SharedDropout"][0]
    shape = {nn.Dropout1d: (200, 8, 30), nn.Dropout3d: (200, 8, 3, 4, 5)}.get(type(drop), (200, 8, 5, 6))
    x = torch.rand(shape) + 0.5
    ours, theirs = shared(x), drop.train()(x)
    p, alpha = drop.p, 1.7580993408473766
    a = 1.0 / math.sqrt((alpha ** 2 * p + 1) * (1 - p))
    if isinstance(drop, (nn.AlphaDropout, nn.FeatureAlphaDropout)):
        kept = torch.isclose(ours, x * a + alpha * a * p)
        dropped = torch.isclose(ours, torch.full_like(x, alpha * a * (p - 1)))
    else:
        kept, dropped = torch.isclose(ours, x / (1 - p)), ours == 0
    assert bool((kept | dropped).all())
    if not isinstance(drop, nn.AlphaDropout):  # one decision per sample and channel
        flat = kept.reshape(shape[0], shape[1], -1).float()
        assert bool(((flat == 0) | (flat == 1)).all()) and torch.equal(flat.amin(-1), flat.amax(-1))
    # the kept fraction is 1 - p (>= 1600 independent draws: SE <= 0.0125; 0.07 is 5.6 SE)
    assert abs(float(kept.float().mean()) - (1 - p)) < 0.07
    # and the mean output is torch's (both estimate E[x]: x in [0.5, 1.5]; the difference's SE is
    # about 0.03 for 1600 channel draws, 0.1 * mean(x) = 0.1 is > 3 SE)
    assert abs(float(theirs.mean()) - float(ours.mean())) < 0.1 * float(x.mean())


def test_dropout_with_its_own_forward_is_refused_or_warned():
    net = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), OwnForwardDropout(0.5), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="OwnForwardDropout.*cannot be replayed"):
        convert(net, "np")
    with pytest.warns(UserWarning, match="alignment"):
        convert(net, "fa")


# -- 4. update_feedback leaves .grad alone -------------------------------------------------------------
@pytest.mark.parametrize("method", ["np", "wm", "np-direct"])
def test_update_feedback_leaves_grads(method):
    """Old: update_feedback ran a backward into .grad, doubling the gradients of an ordinary loop."""
    m = convert(mlp(), method, seed=0)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    opt.zero_grad()
    F.cross_entropy(m(X), Y, reduction="sum").backward()
    before = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.update_feedback(X, Y, "ce")
    for n, p in m.named_parameters():
        assert torch.equal(p.grad, before[n]), n


def test_kp_update_feedback_warns():
    m = convert(mlp(), "kp", seed=0)
    with pytest.warns(UserWarning, match="does nothing for 'kp'"):
        m.update_feedback(X, Y, "ce")


# -- 5. np-direct, exact LS, perturb='cycle' -----------------------------------------------------------
def test_np_direct_cycle_keeps_one_V_per_site():
    """Old: one V summed E'E every step while each S grew every other step -> B shrunk by 1/2 (2 sites).

    With W frozen and the same batch, E is the same every step, so after 4 steps each of the two sites
    (perturbed on 2 of them) must hold V = gamma*I + 2 E'E exactly (float64 sums of identical terms).
    """
    gamma = 0.1
    m = convert(mlp(), "np-direct", seed=0, perturb="cycle", gamma=gamma)
    for _ in range(4):
        m.update_feedback(X, Y, "ce")
    with torch.enable_grad():
        out = m(X).detach().requires_grad_(True)
        E, = torch.autograd.grad(F.cross_entropy(out, Y, reduction="sum"), out)
    E = E.double()
    want = torch.eye(3, dtype=torch.float64) * gamma + 2 * E.t() @ E
    for l in m.sites:
        torch.testing.assert_close(l.np_V, want, rtol=1e-6, atol=1e-9)  # float32 E, float64 sums
    # and the learned D is as large as with perturb='all' (ratio 1 within the estimation noise)
    norms = {}
    for perturb in ("all", "cycle"):
        mm = convert(mlp(), "np-direct", seed=0, perturb=perturb, noise_std=1e-3)
        for i in range(400):
            mm.update_feedback(X[(i % 4) * 8:(i % 4) * 8 + 8], Y[(i % 4) * 8:(i % 4) * 8 + 8], "ce")
        norms[perturb] = [float(l.feedback.norm()) for l in mm.sites]
    for a, c in zip(norms["all"], norms["cycle"]):
        assert 0.8 < c / a < 1.25  # old: about 0.5


# -- 6. metrics do not change training -----------------------------------------------------------------
def run_steps(model, n, align_every=None, xs=X, ys=Y):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for i in range(n):
        model.step(xs, ys, "ce", opt)
        if align_every and i % align_every == 0:
            model.alignment(xs, ys, "ce")
    return weights(model)


def bn_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 6),
                         nn.Tanh(), nn.Linear(6, 3))


@pytest.mark.parametrize("method", ["brsf", "np", "fa", "np-direct"])
def test_alignment_does_not_change_the_run(method):
    """Old: alignment() drew brSF magnitudes and dropout masks from the model's stream and moved BatchNorm."""
    a = run_steps(convert(bn_net(), method, seed=0), 6)
    b = run_steps(convert(bn_net(), method, seed=0), 6, align_every=2)
    assert_same(a, b)
    state = torch.get_rng_state()
    convert(bn_net(), method, seed=0).alignment(X, Y, "ce")
    assert torch.equal(state, torch.get_rng_state())


def test_noisy_pass_does_not_move_batchnorm():
    """Old: NP's noisy pass counted as a second training batch (num_batches_tracked 2 per step)."""
    m = convert(bn_net(), "np", seed=0)
    m.step(X, Y, "ce", None)
    bn = m.module[1]
    assert int(bn.num_batches_tracked) == 1
    ref = nn.BatchNorm1d(8)
    with torch.no_grad():
        ref(m.module[0](X))
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=0, atol=0)


def test_log_every_does_not_change_a_run():
    """Old: brsf with log_every 2 and 1000 ended with different weights and test errors."""
    runs = [train(digits_cfg(method="brsf", epochs=2, log_every=k)) for k in (2, 1000)]
    assert_same(weights(runs[0].model), weights(runs[1].model))
    assert list(runs[0].epochs["test_loss"]) == list(runs[1].epochs["test_loss"])


# -- 7. warm-up only where feedback learns ------------------------------------------------------------
def test_warmup_applies_to_feedback_learning_methods_only(tmp_path, capsys):
    """Old: fa with warmup_steps froze W; negative values and a warm-up covering the run passed silently."""
    with pytest.warns(UserWarning, match="warmup_steps=3 is ignored for 'fa'"):
        r = train(digits_cfg(method="fa", warmup_steps=3))
    assert not r.metrics["feedback_learning_only"].any()
    assert_same(weights(r.model), weights(train(digits_cfg(method="fa", warmup_steps=0)).model))
    with pytest.raises(ValueError, match="warmup_steps must be a whole number >= 0"):
        digits_cfg(warmup_steps=-5).resolved()
    with pytest.warns(UserWarning, match="covers all 4 training steps"):
        train(digits_cfg(method="np", warmup_steps=4))
    assert main(["train", "--dataset", "digits", "--n-train", "64", "--n-test", "32", "--epochs", "1", "--method",
                 "np", "--no-progress", "--out", str(tmp_path / "w")]) == 0
    assert "bci-credit train: warning: the warm-up of 1000 feedback-only steps covers all 2 training steps" \
        in capsys.readouterr().err


# -- 8. a trainable module before the first converted layer ----------------------------------------------
@pytest.mark.parametrize("first", [nn.BatchNorm1d(10), nn.Unflatten(1, (1, 10))])
def test_trainable_module_before_first_layer(first):
    """Old: accepted; step() then failed ('layer 0 has no feedback matrix', TypeError) or fed BatchNorm wrongly."""
    if isinstance(first, nn.Unflatten):
        net = nn.Sequential(first, nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))
        name = "'1' (Conv1d)"
    else:
        net = nn.Sequential(first, nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3))
        name = "'0' (BatchNorm1d)"
    for method in ("fa", "np", "dfa", "usf"):
        with pytest.raises(ValueError, match=re.escape(name) + " run before the first"):
            convert(net, method, input_shape=(10,))
    convert(net, "bp", input_shape=(10,)).step(X, Y, "ce", None)  # backprop trains them exactly


@pytest.mark.parametrize("method", ["fa", "dfa", "np", "usf"])
def test_trainable_module_before_the_only_layer_trains_like_backprop(method):
    """One converted layer: no feedback site, so the method is backprop (a warning says so) and the module
    before it gets the exact gradient. Old: fa/np 'layer 0 has no feedback matrix', dfa a TypeError."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.BatchNorm1d(10), nn.Linear(10, 3))
    with pytest.warns(UserWarning, match="exactly like backprop"):
        m = convert(net, method, seed=0)
    ref = convert(net, "bp", seed=0)
    m.step(X, Y, "ce", None)
    ref.step(X, Y, "ce", None)
    for (n, p), q in zip(m.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0, msg=n)


# -- 9. a GPU checkpoint loads on a CPU-only machine ---------------------------------------------------
def test_generator_state_of_missing_device_is_skipped():
    """Old: set_generator_states made a generator for 'cuda:0' -> RuntimeError without CUDA."""
    m = convert(mlp(), "np", seed=0)
    m.step(X, Y, "ce", None)
    sd = m.state_dict()
    gens = sd["_extra_state"]["generators"]
    gens["cuda:7"] = gens["cpu"].clone()
    m2 = convert(mlp(), "np", seed=0)
    with pytest.warns(UserWarning, match="'cuda:7' is skipped"):
        m2.load_state_dict(sd)
    assert torch.equal(m2.feedback_state.generator(torch.device("cpu")).get_state(), gens["cpu"])


# -- 10. weight mirror on padded convolutions -----------------------------------------------------------
def test_weight_mirror_conv_is_unbiased_at_the_border():
    """Old: every tap divided by H_out*W_out -> corner taps 0.56, edges 0.75 of W (3x3, padding 1, 4x4 maps).

    Rate 1, 4000 noise samples: B is one estimate of W. Per tap position the regression slope of B on W
    over 16x16 channel pairs has SE about 1/sqrt(9*4000*...) < 0.01; 0.05 is > 5 SE and far below the bias.
    """
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Tanh(), nn.Conv2d(16, 16, 3, padding=1), nn.Flatten(),
                        nn.Linear(256, 3))
    m = convert(net, "wm", input_shape=(1, 4, 4), seed=0, mirror_rate=1.0, mirror_batch=4000)
    m.mirror_step()
    conv = m.sites[0]
    W, B = conv.weight.detach(), conv.feedback
    slope = (B * W).sum((0, 1)) / (W * W).sum((0, 1))
    torch.testing.assert_close(slope, torch.ones(3, 3), rtol=0, atol=0.05)


# -- 11, 12, 13, 17. what a run writes ----------------------------------------------------------------
def test_run_outputs_units_rows_and_provenance(tmp_path, monkeypatch):
    """Old: no per-sample train loss; no metric row with log_every > steps; run.json without the feedback
    config; relative data paths, so load_run failed from another folder."""
    import shutil

    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for stem, n in (("train", 96), ("t10k", 32)):
        D.write_idx(tmp_path / "data" / f"{stem}-images-idx3-ubyte", rng.integers(0, 255, (n, 8, 8), dtype=np.uint8))
        D.write_idx(tmp_path / "data" / f"{stem}-labels-idx1-ubyte", (np.arange(n) % 4).astype(np.uint8))
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(model="mlp", method="np", dataset="idx", data_dir="data", epochs=2, batch_size=16,
                      lr=0.01, warmup_steps=0, log_every=100, checkpoint_every=0, seed=3, threads=1)
    res = train(cfg, "run")
    # a row at each epoch's end (96 samples, batch 16: 6 steps per epoch), per-sample loss = batch sum / 16
    assert list(res.metrics["step"]) == [6, 12]
    np.testing.assert_allclose(res.metrics["train_loss_per_sample"], res.metrics["train_loss"] / 16, rtol=1e-12)
    assert res.epochs["train_loss"].notna().all() and res.epochs["train_loss_per_sample"].notna().all()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    fb = run["feedback_config"]
    assert fb["b_lr"] == 5e-4 and fb["mirror_rate"] == 0.01 and fb["perturb"] == "all" and "init_scale" in fb
    assert run["config"]["data_dir"] == str((tmp_path / "data").resolve())
    assert run["dataset_source"].startswith(str((tmp_path / "data").resolve()))
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.move(str(tmp_path / "run"), other / "run")
    monkeypatch.chdir(other)
    model, loaded, _ = load_run("run")
    assert loaded.data_dir == str((tmp_path / "data").resolve())


# -- 14. digits: one split for every seed ----------------------------------------------------------------
def test_digits_split_does_not_depend_on_the_seed():
    """Old: load_dataset('digits', seed=cfg.seed): another seed, another test set."""
    ref = load_dataset("digits", seed=0)
    res = train(digits_cfg(seed=7, n_test=None))
    ev = evaluate(res.model, torch.as_tensor(ref.x_test), torch.as_tensor(ref.y_test), "mse")
    assert ev["loss"] == res.epochs["test_loss"].iloc[-1]


# -- 15. no B-vs-W comparison for the direct methods ----------------------------------------------------
@pytest.mark.parametrize("method", ["dfa", "np-direct"])
def test_direct_methods_have_no_weight_angle(method):
    """Old: a 20-10-10-10 net gave 81 degrees and 0.57 sign congruence for a D that is not W's counterpart."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 10), nn.Tanh(), nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 10))
    m = convert(net, method, seed=0)
    xs = torch.randn(8, 20)
    for layer in m.alignment(xs, torch.arange(8) % 10, "ce")["layers"]:
        for k in ("weight_angle_deg", "sign_congruence", "norm_ratio", "rel_error"):
            assert math.isnan(layer[k]), (layer["layer"], k)


# -- 16. option errors name the option ----------------------------------------------------------------
@pytest.mark.parametrize("field,value", [("batch_size", 0), ("log_every", 0), ("epochs", -1),
                                         ("checkpoint_every", -1), ("warmup_steps", 2.5)])
def test_option_errors_name_the_option(field, value, tmp_path, capsys):
    with pytest.raises(ValueError, match=f"^{field} must be a whole number >= .*got {value!r}"):
        digits_cfg(**{field: value}).resolved()
    if isinstance(value, int):
        assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "o"), f"--{field.replace('_', '-')}",
                     str(value)]) == 2
        assert f"{field} must be a whole number" in capsys.readouterr().err


def test_zero_epochs_warns_once(tmp_path):
    """Old: train() logged a warning and the CLI printed its own: twice in a terminal (a subprocess, because
    pytest's log capture hides the logging one)."""
    import subprocess
    import sys

    code = ("import sys; from bci_credit.cli import main; "
            f"sys.exit(main(['train', '--dataset', 'digits', '--out', {str(tmp_path / 'e')!r}, '--epochs', '0', "
            "'--no-progress', '--device', 'cpu']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("nothing to train") == 1, proc.stderr
    assert "bci-credit train: warning: 0 epochs: nothing to train" in proc.stderr


# -- 18. precision of the NP statistics ----------------------------------------------------------------
def test_half_keeps_np_statistics_in_float64():
    """Old: .half()/.float() recast np_V/np_S (sums of millions of outer products) to low precision."""
    m = convert(mlp(), "np", seed=0)
    m.update_feedback(X, Y, "ce")
    V = m.sites[0].np_V.clone()
    m.half()
    assert m.sites[0].np_V.dtype == torch.float64 and torch.equal(m.sites[0].np_V, V)
    assert m.sites[0].weight.dtype == torch.float16
    m.float()
    assert m.sites[0].np_S.dtype == torch.float64


def test_a_digits_run_made_before_the_fixed_split_keeps_its_own_split(tmp_path):
    # review: the fixed digits split silently moved runs made before it onto another split on resume/load
    import dataclasses
    import json as _json

    from bci_credit.deep.train import TrainConfig, load_run, train

    cfg = TrainConfig(model="mlp", method="bp", dataset="digits", epochs=1, n_train=256, n_test=100, seed=3,
                      batch_size=32, lr=0.004, log_every=4, threads=1)
    out = tmp_path / "run"
    train(cfg, out)
    assert _json.loads((out / "run.json").read_text())["config"]["split_seed"] == 0
    # make it an old run: no split_seed anywhere (its split followed seed 3)
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    del ck["config"]["split_seed"]
    torch.save(ck, out / "checkpoint.pt")
    run = _json.loads((out / "run.json").read_text())
    del run["config"]["split_seed"]
    (out / "run.json").write_text(_json.dumps(run))
    _, loaded, _ = load_run(out)
    assert loaded.split_seed == 3
    with pytest.raises(ValueError, match=r"different configuration \(split_seed\).*resume it with split_seed=3"):
        train(dataclasses.replace(cfg, epochs=2), out)
    res = train(dataclasses.replace(cfg, epochs=2, split_seed=3), out)
    assert list(res.epochs["epoch"]) == [1, 2]


def test_an_np_direct_cycle_checkpoint_of_the_shared_V_layout_is_named():
    from bci_credit.deep.train import _load_error

    err = RuntimeError('Error(s) in loading state_dict for CreditModel:\n\tUnexpected key(s) in state_dict: "np_V".')
    assert "keeps one V per site" in _load_error(err) and "\n" not in _load_error(err)
