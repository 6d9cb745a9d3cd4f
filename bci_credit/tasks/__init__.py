"""What is rewarded: the paper's costs, single-unit BCI mappings, plasticity protocols."""

from .costs import COSTS, BananaCost, Cost, LinearReadoutCost, QuadraticCost, TargetRateCost, TwoLayerCost, make_cost

__all__ = ["COSTS", "Cost", "QuadraticCost", "BananaCost", "LinearReadoutCost", "TargetRateCost", "TwoLayerCost", "make_cost"]
