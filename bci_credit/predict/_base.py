"""The result object every prediction returns, and how it is written to an output folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


__all__ = ["PredictionResult", "write_prediction"]


@dataclass
class PredictionResult:
    """Numbers, checks, tables and representative sessions of one prediction.

    Attributes
    ----------
    name : str
        Registry name (``bci-credit predict NAME``).
    claim : str
        The prediction in one sentence.
    numbers : dict
        JSON-ready headline numbers.
    checks : dict of str to bool
        The testable parts of the claim and whether this run supports them.
    tables : dict of str to DataFrame
        Per-session / per-condition tables (written as CSV).
    recordings : dict of str to Recording
        Representative simulated sessions (written as NWB).
    settings : dict
        Sizes, durations, seeds and parameters used.
    quick : bool
        Whether this is the quick (test-sized) form.
    notes : list of str
        What the numbers mean, caveats.
    """

    name: str
    claim: str
    numbers: dict
    checks: dict
    tables: dict = field(default_factory=dict)
    recordings: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    quick: bool = False
    notes: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check holds."""
        return all(bool(v) for v in self.checks.values())

    def summary(self) -> str:
        """A readable account: claim, checks, headline numbers."""
        from ..outputs import to_jsonable

        lines = [f"Prediction {self.name!r}{' (quick form)' if self.quick else ''}", f"  claim: {self.claim}"]
        for k, v in self.checks.items():
            lines.append(f"  [{'ok' if v else 'FAILED'}] {k}")
        lines.append("  numbers:")
        for line in json.dumps(to_jsonable(self.numbers), indent=2).splitlines():
            lines.append("    " + line)
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The content of ``prediction.json``: name, claim, quick, passed, checks, numbers, settings, notes."""
        return {"name": self.name, "claim": self.claim, "quick": self.quick, "passed": self.passed,
                "checks": {k: bool(v) for k, v in self.checks.items()}, "numbers": self.numbers,
                "settings": self.settings, "notes": self.notes}


def write_prediction(result: PredictionResult, out_dir: str | os.PathLike, *, nwb: str = "one",
                     figures: bool = True) -> list[Path]:
    """Write ``prediction.json``, one CSV per table, figures (PNG) and NWB files into ``out_dir``.

    Parameters
    ----------
    result : PredictionResult
        The result to write.
    out_dir : str or path
        Output folder (created if needed).
    nwb : {"one", "all", "none"}
        NWB files of the first representative session, of all, or none. A prediction without
        representative sessions writes no NWB file; when ``nwb`` asks for files, a note saying so is
        added to ``result.notes`` (so to ``prediction.json`` and :meth:`PredictionResult.summary`).
    figures : bool
        Also draw and save the figures.

    Returns
    -------
    list of Path
        The files written.
    """
    from ..outputs import save_figure, write_csv, write_json

    if nwb not in ("one", "all", "none"):
        raise ValueError(f"nwb must be 'one', 'all' or 'none', got {nwb!r}")
    if nwb != "none" and not result.recordings:
        note = no_nwb_note(result.name, nwb)
        if note not in result.notes:
            result.notes.append(note)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [write_json(result.to_json(), out / "prediction.json")]
    for name, df in result.tables.items():
        files.append(write_csv(df, out / f"{name}.csv", index=not isinstance(df.index, pd.RangeIndex)))
    if figures:
        from ..plotting.bci import prediction_figures

        for name, fig in prediction_figures(result).items():
            files.append(save_figure(fig, out / f"{name}.png"))
    if nwb != "none" and result.recordings:
        from ..io.nwb import write

        items = list(result.recordings.items())
        for name, rec in items[:1] if nwb == "one" else items:
            files.append(write(rec, out / f"{_safe(name)}.nwb"))
    return [Path(f) for f in files]


def no_nwb_note(name: str, nwb: str) -> str:
    """The note of a prediction that has no representative session to write as NWB."""
    return (f"no NWB file written (nwb={nwb!r}): the {name} prediction keeps no representative simulated session "
            "(its runs are batched or clamped simulations); its results are in the CSV tables")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))

