"""The README's Python API block runs as written (its deep part only where PyTorch and Fashion-MNIST are)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
DEEP_START = "from bci_credit.deep.train import"


def _api_block() -> str:
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_api_block_runs(tmp_path, monkeypatch):
    block = _api_block()
    assert DEEP_START in block, "the README's deep example moved: update this test"
    core, deep = block.split(DEEP_START, 1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(core, "README.md (Python API)", "exec"), scope)
    assert scope["rec2"].equals(scope["rec"])  # "the same Recording back"
    assert len(scope["table"]) == scope["rec"].n_units
    assert scope["rule"].weights_.shape[-1] == 2
    assert scope["res"]["seed"] == 2024 and (tmp_path / "out" / "fig3a" / "fig3a.json").is_file()
    assert all({"passed", "measured", "criterion"} <= set(c) for c in scope["res"]["acceptance"].values())

    pytest.importorskip("torch")
    from bci_credit.deep.datasets import load_dataset

    try:
        load_dataset("fashion-mnist")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    deep = DEEP_START + deep
    shrunk = deep.replace("epochs=5)", "epochs=1, n_train=300, n_test=100, warmup_steps=3)")  # 9 steps
    assert shrunk != deep, "the README's train() call changed: update this test"
    exec(compile(shrunk, "README.md (Python API, deep)", "exec"), scope)
    assert (tmp_path / "out" / "np" / "checkpoint.pt").is_file()
