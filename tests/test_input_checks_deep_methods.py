"""Bad input to bci_credit.deep.convert / CreditModel.step gets a clear error (or warning), not a torch traceback."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from bci_credit.deep import FeedbackConfig, convert  # noqa: E402


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 3))


def _data(n=8):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


# -- 1. a NaN batch must not poison the feedback statistics ---------------------------------------
@pytest.mark.parametrize("method,kw", [("np", {}), ("np", {"b_solver": "sgd"}), ("np-direct", {}),
                                       ("np-direct", {"b_solver": "sgd"}), ("wm", {}), ("kp", {})])
def test_nan_batch_is_refused_and_leaves_feedback_unchanged(method, kw):
    x, y = _data()
    m = convert(_net(), method, seed=0, **kw)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    m.step(x, y, "mse", opt)
    before = {k: v.clone() for k, v in m.state_dict().items() if torch.is_tensor(v)}
    xn = x.clone()
    xn[2, 1] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite values.*left unchanged"):
        m.step(xn, y, "mse", opt)
    after = m.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    out = m.step(x, y, "mse", opt)  # training goes on with clean batches
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(b).all() for b in m.buffers() if b is not None and b.is_floating_point())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_target_with_frozen_weights_is_refused(bad):
    x, y = _data()
    m = convert(_net(), "np", seed=0)
    yt = torch.nn.functional.one_hot(y, 3).float()
    yt[0, 0] = bad
    V0 = {k: v.clone() for k, v in m.state_dict().items() if k.endswith("np_V") or k.endswith("np_S")}
    with pytest.raises(FloatingPointError, match="NP regression at step 0"):
        m.update_feedback(x, yt)
    for k, v in V0.items():
        assert torch.equal(m.state_dict()[k], v)
    assert m.n_steps == 0


# -- 2. FeedbackConfig fields ----------------------------------------------------------------------
@pytest.mark.parametrize("field,value,msg", [
    ("gamma", float("nan"), "gamma must be a finite number"),
    ("b_lr", float("nan"), "b_lr must be a finite number"),
    ("noise_std", float("nan"), "noise_std"),
    ("noise_std", "0.1", "noise_std.*text"),
    ("noise_std", 0.0, "noise_std must be a positive"),
    ("forget", float("nan"), "forget"),
    ("forget", 0.0, "forget must be in"),
    ("kp_decay", 2, r"kp_decay must be in \[0, 1\)"),
    ("kp_decay", 1.0, r"kp_decay must be in \[0, 1\)"),
    ("kp_decay", -0.1, "kp_decay"),
    ("init_scale", float("inf"), "init_scale"),
    ("init_scale", 0.0, "init_scale"),
    ("use_learned_feedback", "no", "use_learned_feedback must be true or false"),
    ("use_learned_feedback", 1, "use_learned_feedback must be true or false"),
    ("mirror_batch", 2.5, "mirror_batch must be a whole number"),
    ("mirror_batch", 0, "mirror_batch must be a positive"),
    ("mirror_batch", True, "mirror_batch"),
    ("mirror_rate", float("nan"), "mirror_rate"),
    ("mirror_noise_std", float("inf"), "mirror_noise_std"),
    ("sites", 1, r"sites must be None or a sequence.*sites=\(1,\)"),
    ("sites", ("a",), "sites entry must be a whole number"),
    ("sites", "12", "sites must be None or a sequence"),
    ("sites", (1.5,), "sites entry"),
    ("b_solver", "LS", "b_solver must be one of"),
    ("b_solver", ["ls"], "b_solver must be one of"),
    ("perturb", "bogus", "perturb must be one of"),
])
def test_feedback_config_rejects_bad_values(field, value, msg):
    with pytest.raises(ValueError, match=msg):
        FeedbackConfig(**{field: value})
    with pytest.raises(ValueError, match=msg):
        convert(_net(), "np", seed=0, **{field: value})


def test_feedback_config_normalises_valid_values():
    cfg = FeedbackConfig(mirror_batch=4.0, sites=[1, 2.0])
    assert cfg.mirror_batch == 4 and isinstance(cfg.mirror_batch, int)
    assert cfg.sites == (1, 2)
    FeedbackConfig(kp_decay=0.0, gamma=0.0, b_lr=0.0, init_scale=0.5, use_learned_feedback=False)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ValueError, match="unknown option.*'bogus'.*noise_std.*sites"):
        convert(_net(), "np", seed=0, bogus=1)
    with pytest.raises(TypeError, match="config must be a FeedbackConfig"):
        convert(_net(), "np", config={"noise_std": 0.1})
    with pytest.raises(TypeError, match="nn.Module"):
        convert("not a model", "fa")


# -- 3. sites=() on NP -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["np", "np-direct"])
def test_empty_sites_on_np_is_an_error(method):
    with pytest.raises(ValueError, match=r"sites=\(\) leaves"):
        convert(_net(), method, seed=0, sites=())


# -- 4. state_dict holds the network once; old checkpoints still load ------------------------------
def test_state_dict_has_no_duplicate_net_keys_and_old_checkpoints_load():
    x, y = _data()
    m = convert(_net(), "np", seed=0)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    m.step(x, y, "mse", opt)
    sd = m.state_dict()
    assert not any(k.startswith("_net.") for k in sd)
    assert any(k.startswith("module.") for k in sd)
    assert m._net is m.module  # the fast reference is still there
    # an old-style checkpoint held every module.* entry a second time as _net.*
    old = dict(sd)
    old.update({"_net." + k[len("module."):]: v.clone() for k, v in sd.items() if k.startswith("module.")})
    fresh = convert(_net(), "np", seed=5)
    fresh.load_state_dict(old)  # strict: the _net.* copies are dropped, not reported as unexpected
    for k, v in sd.items():
        if torch.is_tensor(v):
            assert torch.equal(fresh.state_dict()[k], v), k
    assert fresh.n_steps == m.n_steps
    o1 = m.step(x, y, "mse", opt)
    opt2 = torch.optim.SGD(fresh.parameters(), lr=0.01)
    o2 = fresh.step(x, y, "mse", opt2)
    assert torch.equal(o1.loss, o2.loss)
    # a checkpoint with only _net.* keys (no module.*) is read as module.*
    only_net = {("_net." + k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    other = convert(_net(), "np", seed=7)
    other.load_state_dict(only_net)
    assert torch.equal(other.module[0].weight, m.module[0].weight)
    assert torch.equal(other.module[2].feedback, m.module[2].feedback)


def test_deepcopy_keeps_the_fast_reference_consistent():
    import copy
    m = convert(_net(), "fa", seed=0)
    c = copy.deepcopy(m)
    assert c._net is c.module and c._net is not m.module
    assert "_net" not in dict(c.named_children())


# -- 5. shared weights ------------------------------------------------------------------------------
def test_shared_layer_is_refused():
    lin = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="shared weights"):
        convert(nn.Sequential(lin, nn.Tanh(), lin), "fa")
    inner = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    with pytest.raises(ValueError, match="shared weights"):
        convert(nn.Sequential(inner, inner, nn.Linear(4, 2)), "np")
    drop = nn.Dropout(0.1)
    with pytest.raises(ValueError, match="Dropout"):
        convert(nn.Sequential(nn.Linear(4, 4), drop, nn.Tanh(), nn.Linear(4, 4), drop, nn.Linear(4, 2)), "np")


def test_shared_parameterless_activation_is_fine():
    act = nn.Tanh()
    m = convert(nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4), act, nn.Linear(4, 2)), "fa", seed=0)
    assert len(m.sites) == 2


# -- 6. a method that reduces to backprop warns ----------------------------------------------------
@pytest.mark.parametrize("method", ["fa", "np", "np-direct", "dfa", "kp"])
def test_no_feedback_site_warns(method):
    with pytest.warns(UserWarning, match="exactly like backprop"):
        convert(nn.Linear(5, 3), method, seed=0)
    with pytest.warns(UserWarning, match="no feedback site"):
        convert(nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 6, 3)), method, input_shape=(2, 8))


def test_bp_and_real_models_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(nn.Linear(5, 3), "bp", seed=0)
        convert(_net(), "np", seed=0)


# -- 7. labels, targets and x ------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("method", ["bp", "np"])
@pytest.mark.parametrize("labels", [[0, 1, 3, 2], [0, -1, 1, 2]])
def test_labels_out_of_range(loss, method, labels):
    m = convert(_net(), method, seed=0)
    x, _ = _data(4)
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\)"):
        m.step(x, torch.tensor(labels), loss)


def test_float_labels_with_ce():
    m = convert(_net(), "fa", seed=0)
    x, y = _data()
    with pytest.raises(ValueError, match="fractional labels such as 1.7"):
        m.step(x, torch.full((8,), 1.7), "ce")
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\)"):
        m.step(x, torch.full((8,), 3.0), "ce")
    # whole-number float labels are the classes they name (as before)
    a = convert(_net(), "fa", seed=0).step(x, y.double(), "ce")
    b = convert(_net(), "fa", seed=0).step(x, y, "ce")
    assert torch.equal(a.loss, b.loss)


def test_ce_probability_targets():
    m = convert(_net(), "fa", seed=0)
    x, y = _data()
    with pytest.raises(ValueError, match=r"probabilities of shape \(batch, 3\); got targets of shape \(8, 4\)"):
        m.step(x, torch.nn.functional.one_hot(y, 4).float(), "ce")
    with pytest.raises(ValueError, match="summing to 1"):
        m.step(x, torch.full((8, 3), 0.5), "ce")
    m.step(x, torch.full((8, 3), 1 / 3), "ce")
    m.step(x, torch.nn.functional.one_hot(y, 3), "ce")


def test_x_shape_errors():
    m = convert(_net(), "np", seed=0)
    x, y = _data()
    with pytest.raises(ValueError, match="x has 7 features per sample.*first layer takes 5"):
        m.step(torch.rand(8, 7), y)
    with pytest.raises(ValueError, match="one number per sample.*takes 5 features"):
        m.step(torch.rand(8), y)
    with pytest.raises(ValueError, match="batch is empty"):
        m.step(torch.rand(0, 5), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="x has 7 features"):
        m.alignment(torch.rand(8, 7), y)


def test_x_shape_error_for_a_model_that_flattens_first():
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3))
    m = convert(net, "fa", seed=0, input_shape=(2, 3))
    y = torch.zeros(4, dtype=torch.long)
    m.step(torch.rand(4, 2, 3), y)  # the right shape works
    with pytest.raises(ValueError, match=r"converted for samples of shape \(2, 3\)"):
        m.step(torch.rand(4, 2, 4), y)


def test_conv_model_wrong_input_shape():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    m = convert(net, "fa", seed=0, input_shape=(1, 6, 6))
    with pytest.raises(ValueError, match=r"samples of shape \(2, 6, 6\).*converted for samples of shape \(1, 6, 6\)"):
        m.step(torch.rand(4, 2, 6, 6), torch.zeros(4, dtype=torch.long))


def test_valid_training_is_unchanged_by_the_checks():
    """Seeded steps stay reproducible (the checks draw no random numbers)."""
    x, y = _data()
    losses = []
    for _ in range(2):
        m = convert(_net(), "np", seed=3)
        opt = torch.optim.SGD(m.parameters(), lr=0.05)
        losses.append([float(m.step(x, y, "mse", opt).loss) for _ in range(3)])
    assert losses[0] == losses[1]
