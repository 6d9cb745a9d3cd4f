"""Reproduction recipes: one function per figure of Lansdell & Kording, plus the comparison they left out.

Every recipe has the signature ``recipe(out_dir, *, quick=False, seed=DEFAULT_SEED, n_jobs=1) -> dict``:
it simulates with batched engine calls, writes ``<name>.json`` (its numbers, the seed, the
configuration and the acceptance checks of ``rdd_model.md`` §6 with the measured values) and
``<name>.png`` into ``out_dir``, and returns the JSON content. ``quick=True`` is a reduced version
(seconds) used by the tests; results are reproducible from the seed and do not depend on
``n_jobs``.

=================  ======================================================================
name               what
=================  ======================================================================
fig2               drive traces (v and counterfactual u) and reward vs maximum drive
fig3a              beta_1 vs window half-width p for 5 noise correlations (A3)
figs2              the one-sided window (A3b)
fig3b              relative-error histograms of RDD and OD over the 19 x 19 weight grid
fig3c              RDD / OD gradient arrows on the banana landscape (c = 0.99)
fig4a              online learned beta vs ideal batch RD and OD (A4)
fig4bc             gradient error over the grid against time; error per c
fig4dg             weight learning from a 10 x 10 grid of starts, RDD vs OD (A5)
fig5size           RDD vs OD error for n = 10 ... 1000 neurons (A7)
fig5depth          two-layer network: layer-1 effects on a layer-2 cost (A8)
fig6               the Delta-s assumption
learning_compare   RDD vs OD vs node perturbation vs spike injection learning, same simulated time
=================  ======================================================================

Examples
--------
>>> from bci_credit.reproduce import RECIPES, run_recipe
>>> result = run_recipe("fig3a", "out/repro", quick=True)        # doctest: +SKIP
>>> result["acceptance"]["A3_i_rdd_flat_in_c"]["passed"]          # doctest: +SKIP
True

From the command line: ``bci-credit reproduce fig3a --quick --out out/repro``. The building
blocks the recipes share (replicate seeds, memory-bounded batched runs, landscapes, the result
JSON) are in :mod:`bci_credit.reproduce.toolkit`, for new recipes and analysis scripts.
"""

from __future__ import annotations

import os
from typing import Callable

from .toolkit import DEFAULT_SEED
from .comparison import learning_compare
from .estimation import fig2, fig3a, fig3b, fig3c, fig6, figs2
from .learning import fig4a, fig4bc, fig4dg
from .scaling import fig5depth, fig5size

__all__ = ["RECIPES", "DEFAULT_SEED", "run_recipe", "list_recipes"]

#: name -> recipe function (in the order of the paper).
RECIPES: dict[str, Callable[..., dict]] = {
    "fig2": fig2,
    "fig3a": fig3a,
    "figs2": figs2,
    "fig3b": fig3b,
    "fig3c": fig3c,
    "fig4a": fig4a,
    "fig4bc": fig4bc,
    "fig4dg": fig4dg,
    "fig5size": fig5size,
    "fig5depth": fig5depth,
    "fig6": fig6,
    "learning_compare": learning_compare,
}


def list_recipes() -> dict[str, str]:
    """Recipe name -> first line of its docstring."""
    return {k: (f.__doc__ or "").strip().splitlines()[0] for k, f in RECIPES.items()}


def run_recipe(name: str, out_dir: str | os.PathLike, *, quick: bool = False, seed: int = DEFAULT_SEED,
               n_jobs: int | None = 1) -> dict:
    """Run recipe ``name`` (see :data:`RECIPES`) and return its result dict.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    out_dir : str or path
        Folder for ``<name>.json`` and ``<name>.png``.
    quick : bool
        The reduced (seconds) version used by the tests.
    seed : int
        Root seed (non-negative).
    n_jobs : int or None
        Tasks run at once (the results do not depend on it).

    Returns
    -------
    dict
        The content of ``<name>.json``: numbers, seed, configuration and acceptance checks.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return RECIPES[name](out_dir, quick=quick, seed=seed, n_jobs=n_jobs)
