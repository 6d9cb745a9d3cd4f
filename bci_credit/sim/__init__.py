"""Population dynamics: the batched LIF engine, output filters and noise conventions."""

from .filters import delta_s_theory, output_filter
from .lif import LIFParams, LIFPopulation, WindowBlock, concat_blocks, simulate

__all__ = ["LIFParams", "LIFPopulation", "WindowBlock", "concat_blocks", "simulate", "output_filter", "delta_s_theory"]
