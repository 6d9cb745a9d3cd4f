"""The CIFAR table's one command (analysis/deep_cifar_table.py over bci_credit.deep.cifar_table),
the CNN's ssdfa options (per-image standardisation, zero init) and Adam's epsilon in TrainConfig."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bci_credit.deep import cifar_table as CT  # noqa: E402
from bci_credit.deep.models import PerImageStandardization, cifar_cnn  # noqa: E402
from bci_credit.deep.train import TrainConfig, load_run, train  # noqa: E402

from test_deep_train import write_cifar, write_idx_set  # noqa: E402


def test_table_command_trains_every_method_with_its_own_settings(tmp_path, capsys, analysis_script):
    write_cifar(tmp_path / "data", n_per_batch=64)
    out = tmp_path / "table"
    args = ["--data-dir", str(tmp_path / "data"), "--quick", "--out", str(out), "--device", "cpu", "--no-progress",
            "--seeds", "0", "1"]
    assert analysis_script("deep_cifar_table").main(args) == 0
    printed = capsys.readouterr().out
    assert "| np-direct | 2 |" in printed and "74.8 ± 0.2" in printed  # the talk's number beside ours
    result = json.loads((out / "cifar_table.json").read_text())
    assert list(result["table"]) == ["bp", "np-direct", "dfa"]
    for method, row in result["table"].items():
        want = CT.PAPER_SETTINGS["cifar10"][method]
        assert row["n_runs"] == 2 and row["epochs_run"] == [1] and row["paper_epochs"] == want["epochs"]
        assert 0.0 <= row["final_test_accuracy"]["mean"] <= 100.0
        _, cfg, progress = load_run(out / f"{method}_s0")
        assert (cfg.lr, cfg.adam_eps, cfg.batch_size, cfg.optimizer) == (want["lr"], want["adam_eps"],
                                                                         want["batch_size"], "adam")
        assert cfg.model_kwargs["activation"] == want["model_kwargs"]["activation"]
        assert cfg.model_kwargs["standardize"] is True and progress["epoch"] == 1
    assert load_run(out / "dfa_s0")[1].model_kwargs["weight_init"] == "zero"
    assert load_run(out / "np-direct_s0")[1].b_lr == 8.32e-6
    # a second call resumes: the finished runs are not trained again
    before = (out / "bp_s0" / "checkpoint.pt").stat().st_mtime_ns
    assert analysis_script("deep_cifar_table").main(args) == 0
    assert (out / "bp_s0" / "checkpoint.pt").stat().st_mtime_ns == before


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path, monkeypatch, analysis_script):
    write_cifar(tmp_path / "data", n_per_batch=64)
    real = CT.train

    def flaky(cfg, out_dir, **kw):
        if cfg.method == "dfa":
            raise RuntimeError("loss became NaN")
        if cfg.method == "bp" and cfg.seed == 1:  # fails after its first epoch was written
            real(cfg, out_dir, **kw)
            raise FloatingPointError("the training loss became nan at step 9")
        return real(cfg, out_dir, **kw)

    monkeypatch.setattr(CT, "train", flaky)
    rc = analysis_script("deep_cifar_table").main(["--data-dir", str(tmp_path / "data"), "--quick", "--out",
                                                   str(tmp_path / "t"), "--device", "cpu", "--no-progress", "--seeds",
                                                   "0", "1"])
    assert rc == 1
    result = json.loads((tmp_path / "t" / "cifar_table.json").read_text())
    assert set(result["table"]) == {"bp", "np-direct"}
    assert "loss became NaN" in result["runs"]["dfa_s0"]["error"]
    bp = result["table"]["bp"]  # the failed seed is listed, not averaged
    assert (bp["n_runs"], bp["n_failed"]) == (1, 1)
    assert bp["final_test_accuracy"]["mean"] == result["runs"]["bp_s0"]["final_test_accuracy"]
    md = (tmp_path / "t" / "cifar_table.md").read_text()
    assert "Failed runs" in md and "| bp | 1 (1) |" in md


def test_table_inputs_are_checked_before_training(tmp_path, capsys, analysis_script):
    with pytest.raises(ValueError, match="cifar10 or cifar100"):
        CT.table_config("mnist", "bp")
    with pytest.raises(ValueError, match="unknown table method 'fa'"):
        CT.table_config("cifar10", "fa")
    table = analysis_script("deep_cifar_table")
    assert table.main(["--data-dir", str(tmp_path / "none"), "--quick", "--out", str(tmp_path / "t")]) == 2
    assert "cifar10 not found" in capsys.readouterr().err
    assert CT.table_config("cifar100", "bp", 3, epochs=7).epochs == 7
    # CIFAR-100: BP and DFA take cifar100_conv.py's tanh and 100 epochs; NP keeps its settings
    c100 = {m: CT.table_config("cifar100", m) for m in CT.TABLE_METHODS}
    assert c100["bp"].epochs == c100["dfa"].epochs == 100 and c100["np-direct"].epochs == 200
    assert {c.model_kwargs["activation"] for c in c100.values()} == {"tanh"}
    assert CT.table_config("cifar10", "bp").model_kwargs["activation"] == "relu"


def test_per_image_standardization_is_tensorflows():
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255.0
    x[3] = 17.0  # a constant image: divided by 1/sqrt(n), not by its zero sd
    z = PerImageStandardization()(x)
    flat = x.reshape(4, -1).double()
    sd = flat.std(dim=1, unbiased=False).clamp_min(flat.shape[1] ** -0.5)
    want = ((flat - flat.mean(dim=1, keepdim=True)) / sd[:, None]).reshape(x.shape)
    torch.testing.assert_close(z.double(), want, rtol=1e-5, atol=1e-5)
    assert torch.all(z[3] == 0) and torch.allclose(z[:3].reshape(3, -1).std(dim=1, unbiased=False), torch.ones(3))


def test_cnn_options_leave_the_default_network_unchanged():
    kw = dict(channels=(4, 4, 4), hidden=(8, 8), seed=3)
    base, std, zero = cifar_cnn(**kw), cifar_cnn(standardize=True, **kw), cifar_cnn(weight_init="zero", **kw)
    assert not isinstance(base[0], PerImageStandardization) and isinstance(std[0], PerImageStandardization)
    for p, q in zip(base.parameters(), std.parameters()):
        assert torch.equal(p, q)
    for name, p in zero.named_parameters():
        assert torch.all(p == (0.0 if name.endswith("weight") else 0.1))
    with pytest.raises(ValueError, match="unknown weight_init 'he'"):
        cifar_cnn(weight_init="he", **kw)


def test_adam_eps_reaches_the_optimizer_and_older_runs_resume(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    cfg = TrainConfig(model="mlp", method="fa", dataset="idx", data_dir=str(tmp_path / "data"), epochs=1,
                      optimizer="adam", lr=1e-3, log_every=5, checkpoint_every=0)
    assert cfg.resolved().adam_eps == 1e-5
    with pytest.raises(ValueError, match="adam_eps must be positive"):
        TrainConfig(adam_eps=0.0).resolved()
    run = tmp_path / "run"
    train(cfg, run)
    # a run made before adam_eps existed: neither run.json nor the checkpoint has the field
    meta = json.loads((run / "run.json").read_text())
    del meta["config"]["adam_eps"]
    (run / "run.json").write_text(json.dumps(meta))
    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    del ck["config"]["adam_eps"]
    assert "eps" in ck["optimizer"]["param_groups"][0] and ck["optimizer"]["param_groups"][0]["eps"] == 1e-5
    torch.save(ck, run / "checkpoint.pt")
    assert load_run(run)[1].adam_eps == 1e-5
    res = train(TrainConfig(**{**cfg.__dict__, "epochs": 2}), run)  # resumes (epochs may grow)
    assert res.summary["epochs"] == 2
    with pytest.raises(ValueError, match="adam_eps"):  # a different epsilon is a different run
        train(TrainConfig(**{**cfg.__dict__, "epochs": 3, "adam_eps": 1e-8}), run)
    assert np.isfinite(res.summary["final_test_loss"])


def test_cli_train_takes_adam_eps(tmp_path, capsys):
    from bci_credit.cli import main

    (tmp_path / "data").mkdir()
    write_idx_set(tmp_path / "data")
    base = ["train", "--dataset", "idx", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--optimizer", "adam",
            "--no-progress"]
    assert main(base + ["--adam-eps", "1e-3", "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "run.json").read_text())["config"]["adam_eps"] == 1e-3
    assert main(base + ["--adam-eps", "-1", "--out", str(tmp_path / "b")]) == 2
    assert "adam_eps must be positive" in capsys.readouterr().err and not (tmp_path / "b").exists()
