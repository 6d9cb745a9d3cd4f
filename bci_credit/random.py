"""Seeding: one root seed per run, independent child streams for every task and replicate.

Results must not depend on ``n_jobs`` or on execution order, so every task draws from its own
:class:`numpy.random.Generator` spawned from a :class:`numpy.random.SeedSequence`.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

SeedLike = Union[None, int, np.integer, np.random.SeedSequence, np.random.Generator]

__all__ = ["SeedLike", "check_random_state", "seed_sequence", "spawn_seeds", "spawn_generators", "seed_repr"]


def seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """Turn ``seed`` into a :class:`~numpy.random.SeedSequence`.

    ``None`` draws fresh OS entropy (recorded in outputs via :func:`seed_repr`); an int is used
    as entropy; a Generator contributes one draw from its stream (so passing the same Generator
    state twice gives the same result).
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(int(seed))
    raise TypeError(f"seed must be None, an int, a SeedSequence or a numpy Generator, got {type(seed).__name__}")


def check_random_state(seed: SeedLike) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from ``seed`` (a Generator is returned unchanged)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed_sequence(seed))


def spawn_seeds(seed: SeedLike, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed``."""
    return seed_sequence(seed).spawn(int(n))


def spawn_generators(seed: SeedLike | Sequence[SeedLike], n: int) -> list[np.random.Generator]:
    """``n`` independent generators.

    ``seed`` may also be a sequence of ``n`` per-item seeds, in which case item ``k`` uses
    exactly ``seed[k]`` (so a batched run equals the same runs done one by one).
    """
    if isinstance(seed, (list, tuple, np.ndarray)):
        if len(seed) != n:
            raise ValueError(f"got {len(seed)} seeds for {n} replicates; give one per replicate")
        return [check_random_state(s if not isinstance(s, np.integer) else int(s)) for s in seed]
    return [np.random.default_rng(s) for s in spawn_seeds(seed, n)]


def seed_repr(seed: SeedLike) -> object:
    """A JSON-friendly record of ``seed`` for provenance (the entropy of a SeedSequence)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return None
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": int(seed.entropy) if seed.entropy is not None else None,
                "spawn_key": list(seed.spawn_key)}
    if isinstance(seed, (list, tuple)):
        return [seed_repr(s) for s in seed]
    return int(seed)
