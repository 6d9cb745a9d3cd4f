"""The BCI link: a rate-network single-unit BCI task learned by BP, FA, NP and REINFORCE."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: extra threads only add contention on a shared machine

from bci_credit.deep.bci_link import RateBCITask, run_bci_link, specificity  # noqa: E402


def test_specificity_index():
    s = specificity(np.array([1.0, 0.0, 0.0, 0.0]), 0)
    assert s["index"] == 1.0 and s["energy_fraction"] == 1.0
    s = specificity(np.array([1.0, 1.0, -1.0]), 0)
    assert s["index"] == pytest.approx(0.5) and s["energy_fraction"] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def hidden_only():
    task = RateBCITask(n_inputs=10, n_hidden=30, n_outputs=6, target_increase=1.0)
    return run_bci_link(task, n_steps=400, lr=0.08, plastic="hidden", n_eval=500, eval_every=100, seed=1)


def test_gradient_like_rules_change_the_control_unit_specifically(hidden_only):
    s = hidden_only.summary
    for method in ("bp", "np", "reinforce"):
        assert s.loc[method, "control_change"] > 0.5, s
        assert s.loc[method, "index"] > 0.75, s
    # NP learns the feedback to the hidden layer: it follows BP closely
    assert abs(s.loc["np", "control_change"] - s.loc["bp", "control_change"]) < 0.1


def test_feedback_alignment_fails_with_a_fixed_readout(hidden_only):
    """FA aligns only by adapting the forward weights to B; with the readout fixed it cannot."""
    s = hidden_only.summary
    assert s.loc["fa", "control_change"] < 0.5 * s.loc["bp", "control_change"], s


def test_result_tables_and_validation(hidden_only):
    assert set(hidden_only.curves["method"]) == {"bp", "fa", "np", "reinforce"}
    assert "index" in hidden_only.summary_text()
    with pytest.raises(ValueError, match="plastic"):
        run_bci_link(plastic="none")
    with pytest.raises(ValueError, match="unknown method"):
        run_bci_link(methods=("magic",))
    with pytest.raises(ValueError, match="control_unit"):
        RateBCITask(n_outputs=3, control_unit=5)
