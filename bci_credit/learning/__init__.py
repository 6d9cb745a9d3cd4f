"""Local learning rules that change weights from (drive, spike, reward).

Every rule follows the scikit-learn estimator contract (:mod:`bci_credit.learning.base`) and is
driven window by window by :func:`bci_credit.learning.loop.run_online`.
"""

from typing import Any

from .base import LearningRule, WindowContext, WindowData, check_learning_rule
from .oracle import NoLearningRule, OracleRule
from .gain import ConstantGain, FiniteDifferenceGain, LookupGain, OnlineGain, make_gain
from .injection import SpikeInjectionRule
from .perturbation import NodePerturbationRule, ReinforceRule
from .rdd import ObservedDependenceRule, RDDRule, RepoRDDRule
from .stdp import RewardModulatedSTDPRule

__all__ = [
    "LearningRule", "WindowContext", "WindowData", "check_learning_rule",
    "RDDRule", "RepoRDDRule", "ObservedDependenceRule", "NodePerturbationRule", "ReinforceRule",
    "RewardModulatedSTDPRule", "SpikeInjectionRule", "OracleRule", "NoLearningRule",
    "ConstantGain", "LookupGain", "FiniteDifferenceGain", "OnlineGain", "make_gain",
    "RULES", "make_rule",
]

#: Rule names accepted in configs (``[learning] rule = ...``).
RULES = {
    "rdd": RDDRule,
    "rdd_repo": RepoRDDRule,
    "od": ObservedDependenceRule,
    "node_perturbation": NodePerturbationRule,
    "reinforce": ReinforceRule,
    "spike_injection": SpikeInjectionRule,
    "rstdp": RewardModulatedSTDPRule,
    "oracle": OracleRule,
    "no_learning": NoLearningRule,
}


def make_rule(name: str, **params: Any) -> LearningRule:
    """Build a rule from its config name and hyper-parameters.

    Parameters
    ----------
    name : str
        A key of :data:`RULES`.
    **params
        Hyper-parameters of the rule's class.

    Returns
    -------
    LearningRule
        The new (unfitted) rule.
    """
    if name not in RULES:
        raise ValueError(f"unknown learning rule {name!r}; choose one of {sorted(RULES)}")
    try:
        return RULES[name](**params)
    except TypeError as err:
        raise ValueError(f"learning rule {name!r}: {err}") from None
