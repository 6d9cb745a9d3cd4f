"""Checks of user-given values, shared by the configuration and the simulator.

Each check returns the value (normalised) or raises an error naming the field and what to give, so
a typo in a TOML file or on the command line is reported, not guessed at.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["check_number", "check_flag"]


def check_number(value, name: str, *, finite: bool = True, integer: bool = False, error: type = ValueError):
    """``value`` if it is a real number, else raise ``error`` naming ``name`` (the shared field check).

    Text (``"0.5"``) and booleans (``True``) are rejected, not converted: a quoted number in a
    TOML file or a ``true`` on the command line is a mistake to report, not to guess at.
    ``finite`` also rejects NaN and +-inf; ``integer`` accepts whole numbers only (``3`` or
    ``3.0``, returned as ``int``).
    """
    what = "a whole number" if integer else "a finite number" if finite else "a number"
    if isinstance(value, (str, bytes)):
        raise error(f"{name} must be {what}, got {value!r} (text); give a plain number, without quotes")
    if isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be {what}, got {value!r} (a true/false value); give a number")
    try:
        ok = math.isfinite(value) or not (finite or integer)  # math.isfinite raises for non-numbers
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise error(f"{name} must be {what}, got {value!r}")
    if integer:
        if isinstance(value, (int, np.integer)):
            return int(value)
        if float(value) != math.floor(float(value)):
            raise error(f"{name} must be a whole number, got {value!r}")
        return int(value)
    return value


def check_flag(value, name: str, *, error: type = ValueError) -> bool:
    """``value`` as a ``bool`` if it is a real boolean (``True``/``False``), else raise ``error`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    hint = "write true or false (no quotes)" if isinstance(value, (str, bytes)) else "give true or false"
    raise error(f"{name} must be true or false, got {value!r}; {hint}")
