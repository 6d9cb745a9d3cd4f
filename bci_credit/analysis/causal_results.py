"""Results of the causal designs: :class:`CausalResults` and the helpers that fill its rows.

Part of :mod:`bci_credit.analysis.causal` (which re-exports the public names): the per-unit results
table (:class:`CausalResults`, columns :data:`RESULT_COLUMNS`), the RD options the designs pass
through (:data:`RD_OPTIONS`), and the private helpers every design shares - unit selection, the
row arrays of a table, copying RD fits into rows, and warning-free RD fits that record a reason
instead of stopping the batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

from ..recording import Recording

__all__ = ["CausalResults", "RESULT_COLUMNS", "RD_OPTIONS"]

#: Columns of every :class:`CausalResults` table (truth columns ``true_*`` follow for simulations).
RESULT_COLUMNS = ("unit", "is_control", "design", "estimate", "se", "ci_lo", "ci_hi", "pvalue", "pvalue_holm",
                  "estimate_bc", "bandwidth", "bandwidth_right", "n_left", "n_right", "density_p", "first_stage", "first_stage_se",
                  "first_stage_f", "note", "reason")

#: Options passed through to the RD fits (see :class:`bci_credit.analysis.rd.RD`).
RD_OPTIONS = ("p", "q", "h", "b", "rho", "kernel", "bwselect", "vce", "nnmatch", "level", "masspoints", "bwcheck",
              "bwrestrict")

#: The truth an RD estimate is judged against, in order of preference (see :func:`truth_column`), with the
#: columns of its Monte Carlo standard error and window count where it has them.
_ESTIMAND_TRUTHS = {"true_rd_effect": (None, None),
                    "true_removal_marginal": ("true_removal_marginal_se", "true_removal_marginal_n"),
                    "true_marginal_effect": ("true_marginal_effect_se", "true_marginal_n")}
_TRUTH_COLUMNS = tuple(c for col, extra in _ESTIMAND_TRUTHS.items() for c in (col, *extra) if c) + (
    "true_direct_effect", "true_total_effect")


def truth_column(table) -> str | None:
    """The column of ``table`` (a results table or a units table) holding the simulation's truth for the RD
    estimand, None for a recording.

    In order of preference: ``true_rd_effect`` (configured simulations) or ``true_removal_marginal``
    (BCI sessions), the effect of a unit's spikes as they happened in windows just above threshold,
    which is the spike RD's estimand; else ``true_marginal_effect``, one spike at a uniformly random
    step against none, a different quantity (see :class:`bci_credit.analysis.causal.SpikeDiscontinuity`).
    """
    return next((c for c in _ESTIMAND_TRUTHS if c in table), None)


def session_length_factor(effect: float, se: float, *, level: float = 95.0, power: float = 0.8) -> float:
    """How many times longer a session must be for ``power`` to detect ``effect`` with a two-sided test at
    ``level`` (percent), when this session's standard error is ``se`` and the SE falls as 1/sqrt(duration)
    (normal approximation); NaN without a non-zero effect and a positive SE."""
    from scipy import stats

    if not (np.isfinite(effect) and effect != 0 and np.isfinite(se) and se > 0):
        return float("nan")
    z = float(stats.norm.ppf(1 - (1 - level / 100) / 2) + stats.norm.ppf(power))
    return float((z * se / abs(effect)) ** 2)


def truth_precision_columns(truth: str | None) -> tuple[str | None, str | None]:
    """The columns holding the Monte Carlo standard error and window count of truth column ``truth``."""
    return _ESTIMAND_TRUTHS.get(truth, (None, None))


# ============================================================================ results
@dataclass
class CausalResults:
    """Per-unit causal-effect estimates of one design.

    Attributes
    ----------
    design : str
        ``"spike"``, ``"reward-threshold"``, ``"fuzzy"`` or ``"naive"``.
    estimand : str
        What ``estimate`` estimates, in words.
    assumptions : tuple of str
        What must hold for the estimate to be causal.
    table : DataFrame
        One row per unit (per unit and variant for the naive design), columns :data:`RESULT_COLUMNS`
        (+ ``true_*`` truth columns of simulations).
    options : dict
        Settings used (bandwidth rule, kernel, windows, thresholds ...).
    notes : list of str
        What was assumed or could not be done (e.g. density test unavailable).
    data : dict
        For plots: ``unit -> {"x", "y", "cutoff"}`` (running variable and outcome).
    diagnostics : dict
        Design-specific extras (proxy deviance explained, sharpness checks ...).
    """

    design: str
    estimand: str
    assumptions: tuple
    table: pd.DataFrame
    options: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    data: dict = field(default_factory=dict, repr=False)
    diagnostics: dict = field(default_factory=dict)

    def __post_init__(self):
        if "pvalue" in self.table.columns:
            self.table = self.table.copy()  # the caller's frame stays as it was
            holm = _holm_by_variant(self.table)
            if "pvalue_holm" in self.table.columns:
                self.table["pvalue_holm"] = holm
            else:
                self.table.insert(self.table.columns.get_loc("pvalue") + 1, "pvalue_holm", holm)

    @property
    def level(self) -> float:
        """Confidence level in percent."""
        return float(self.options.get("level", 95.0))

    def to_frame(self) -> pd.DataFrame:
        """The per-unit table (a copy)."""
        return self.table.copy()

    def estimates(self) -> pd.Series:
        """``estimate`` indexed by unit (first variant of the naive design)."""
        t = self.table.drop_duplicates("unit")
        return pd.Series(t["estimate"].to_numpy(), index=pd.Index(t["unit"], name="unit"), name=self.design)

    def drivers(self, correction: str | None = "holm") -> pd.DataFrame:
        """Rows with a detectable effect, largest first.

        Parameters
        ----------
        correction : {"holm", None}
            ``"holm"``: Holm's adjusted p-value (column ``pvalue_holm``, over the units of each design
            variant) is below ``1 - level/100``, so the chance that any unit without an effect is
            listed is at most that (5 % at the default level). ``None``: the unit's own confidence
            interval excludes 0 (with 20 units and no effect, one is listed by chance on average).

        Returns
        -------
        DataFrame
            The selected rows of :attr:`table`, by decreasing ``|estimate|``.
        """
        t = self.table
        if correction is None:
            sig = t[np.isfinite(t["ci_lo"]) & ((t["ci_lo"] > 0) | (t["ci_hi"] < 0))]
        elif correction == "holm":
            sig = t[t["pvalue_holm"] < 1.0 - self.level / 100.0]
        else:
            raise ValueError(f"correction must be 'holm' or None, got {correction!r}")
        return sig.reindex(sig["estimate"].abs().sort_values(ascending=False).index)

    def summary(self, max_rows: int = 40) -> str:
        """A readable text report: design, estimand, assumptions, the per-unit table, notes.

        Parameters
        ----------
        max_rows : int
            Rows of the table to show (the count of the others is given).

        Returns
        -------
        str
            The report.
        """
        t = self.table
        lines = [f"Causal effects per unit - design: {self.design}", "=" * 100,
                 f"Estimand: {self.estimand}"]
        for a in self.assumptions:
            lines.append(f"  assumes: {a}")
        opts = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.options.items()
                         if not isinstance(v, (list, dict, tuple)))
        if opts:
            lines.append(f"Options: {opts}")
        lines.append("")
        lev = f"{self.level:g}% CI"
        shown = t.head(max_rows)
        cis = [f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(shown["ci_lo"], shown["ci_hi"])]
        w_ci = max([22] + [len(c) + 2 for c in cis])  # wide intervals must not run into their neighbours
        head = (f"{'unit':>8} {'variant':<26}{'estimate':>10}{'se':>9}{lev:>{w_ci}}{'p':>10}{'h':>8}{'N-/N+':>12}"
                f"{'dens.p':>8}")
        if self.design == "fuzzy":
            head += f"{'1st st.':>9}{'F':>7}"
        lines += [head, "-" * len(head)]
        for (_, r), ci in zip(shown.iterrows(), cis):
            unit = str(r["unit"]) + ("*" if bool(r.get("is_control", False)) else "")
            if not np.isfinite(r["estimate"]):
                line = f"{unit:>8} {str(r['design']):<26}{'-':>10}   {r['reason']}"
                if self.design == "fuzzy" and np.isfinite(r.get("first_stage", np.nan)):
                    line = (f"{unit:>8} {str(r['design']):<26}{'-':>10}   first stage {r['first_stage']:.3g} "
                            f"(F = {r['first_stage_f']:.3g}): {r['reason']}")
                lines.append(line)
                continue
            nn = f"{_fmt_int(r['n_left'])}/{_fmt_int(r['n_right'])}"
            line = (f"{unit:>8} {str(r['design']):<26}{r['estimate']:>10.4g}{r['se']:>9.3g}{ci:>{w_ci}}"
                    f"{_fmt_p(r['pvalue'], 10)}{_fmt(r['bandwidth'], 8)}{nn:>12}{_fmt(r['density_p'], 8)}")
            if self.design == "fuzzy":
                line += f"{_fmt(r['first_stage'], 9)}{_fmt(r['first_stage_f'], 7)}"
            lines.append(line)
        if len(t) > max_rows:
            lines.append(f"... {len(t) - max_rows} more rows (all rows: effects.csv when saved; to_frame() in Python)")
        lines.append("-" * len(head))
        lines.append("* control unit.  N-/N+: effective observations left/right of the cutoff (RD) or windows "
                     "without/with a spike (naive).")
        if self.design == "naive" and t["design"].nunique() > 1:
            lines.append("  naive-od and naive-rate compare windows by the unit's spiking alone; naive-rate-adjusted "
                         "also holds the other recorded units' counts fixed, which removes confounding that those "
                         "units carry (not that of unrecorded input).")
        if "estimate_bc" in t and np.isfinite(t["estimate_bc"].to_numpy(dtype=float)).any():
            lines.append("  The RD estimate is the conventional local-linear one; its robust CI is centred on the "
                         "bias-corrected estimate (column estimate_bc), so it need not be symmetric about it.")

        def listed(d):
            if d["design"].nunique() <= 1:
                return ", ".join(f"{u} ({e:+.3g})" for u, e in zip(d["unit"], d["estimate"]))
            return "; ".join(f"{v}: " + ", ".join(f"{u} ({e:+.3g})" for u, e in zip(g["unit"], g["estimate"]))
                             for v, g in d.groupby(d["design"].astype(str), sort=False))

        tested = np.isfinite(self.table["pvalue"].to_numpy(dtype=float))
        per_variant = self.table.loc[tested, "design"].astype(str).value_counts()
        alpha = 100.0 - self.level
        counts = ", ".join(f"{v}: {k}" for v, k in per_variant.items())
        family = (f"{int(per_variant.iloc[0])} tests" if len(per_variant) == 1 else
                  f"the units of each of {len(per_variant)} variants ({counts})")
        holm, raw = self.drivers(), self.drivers(correction=None)
        # the naive design estimates an association, not an effect: its lists must not read as causal
        if self.design == "naive":
            found, without, none_had = "associated with the reward", "without an association", "no unit was associated"
        else:
            found, without, none_had = "with an effect", "without one", "no unit had an effect"
        if not tested.any():
            lines.append("No unit has a p-value (see the reasons above), so none is tested for an effect.")
        else:
            untested = self.table.loc[~tested]
            if untested["design"].nunique() > 1 or len(per_variant) > 1:  # name the variant of each row
                rows = [f"{u} ({d})" for u, d in zip(untested["unit"], untested["design"])]
            else:
                rows = [str(u) for u in untested["unit"]]
            left = (f" ({len(rows)} row(s) without a p-value are not tested: {', '.join(rows[:8])}"
                    f"{', ...' if len(rows) > 8 else ''}; see their reason)") if rows else ""
            lines.append(f"Units {found} after Holm's correction for {family}{left} (at most {alpha:g}% chance"
                         f"{' per variant' if len(per_variant) > 1 else ''} of listing any unit {without}): "
                         f"{listed(holm) if len(holm) else 'none'}")
            lines.append(f"Units whose own {lev} excludes 0 (uncorrected; about {tested.sum() * alpha / 100:.2g} "
                         f"expected by chance if {none_had}): {listed(raw) if len(raw) else 'none'}")
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        ok = int(np.isfinite(self.table["estimate"]).sum())
        return f"<CausalResults design={self.design!r}: {len(self.table)} rows, {ok} estimated>"

    def plot(self, unit: Any, ax: Axes | None = None, **kwargs: Any) -> Axes:
        """RD plot of one unit: binned means of the outcome against the running variable, with the
        local-linear fits on each side (see :func:`bci_credit.analysis._causal_plot.plot_unit`).

        Parameters
        ----------
        unit : hashable
            A unit of :attr:`table` (matched as text too).
        ax : matplotlib Axes, optional
            Where to draw (a new figure when None).
        **kwargs
            ``span`` (points within this many bandwidths of the cutoff; default 3) and ``p`` (order
            of the binned-means fit; default 2).

        Returns
        -------
        matplotlib Axes
            The axes drawn on.
        """
        from ._causal_plot import plot_unit

        return plot_unit(self, unit, ax=ax, **kwargs)


def _fmt(v, width: int) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return f"{'-':>{width}}"
    return f"{v:>{width}.3g}" if np.isfinite(v) else f"{'-':>{width}}"


def _fmt_p(v, width: int) -> str:
    """A p-value; one that underflows double precision prints as ``<1e-300``, not 0."""
    try:
        zero = float(v) == 0.0
    except (TypeError, ValueError):
        zero = False
    return f"{'<1e-300':>{width}}" if zero else _fmt(v, width)


def _fmt_int(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return str(int(v)) if np.isfinite(v) else "-"


class _Rows:
    """Column arrays of a results table, filled in place; :meth:`frame` builds the DataFrame once.

    ``rows["estimate"][k] = v`` sets one cell; ``rows["design"] = "x"`` sets a whole column.
    """

    def __init__(self, rec: Recording, positions: Sequence[int], design: str):
        pos = list(positions)
        n = len(pos)
        self.cols: dict[str, np.ndarray] = {c: np.full(n, np.nan) for c in RESULT_COLUMNS}
        self.cols["unit"] = np.array(rec.unit_ids[pos].tolist() + [None], dtype=object)[:n]
        self.cols["is_control"] = rec.units["is_control"].to_numpy(bool)[pos]
        self.cols["design"] = np.full(n, design, dtype=object)
        self.cols["note"] = np.full(n, "", dtype=object)
        self.cols["reason"] = np.full(n, None, dtype=object)

    def __len__(self) -> int:
        return len(self.cols["unit"])

    def __getitem__(self, col: str) -> np.ndarray:
        return self.cols[col]

    def __setitem__(self, col: str, value) -> None:
        self.cols[col][:] = value

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: self.cols[c] for c in RESULT_COLUMNS})


def _empty_rows(rec: Recording, positions: Sequence[int], design: str) -> _Rows:
    return _Rows(rec, positions, design)


def _add_truth(df: pd.DataFrame, rec: Recording, columns: Sequence[str] = _TRUTH_COLUMNS) -> pd.DataFrame:
    """Append the simulation's ground-truth columns (matched by unit id)."""
    for col in columns:
        if col in rec.units.columns:
            df[col] = df["unit"].map(rec.units[col]).to_numpy()
    return df


def _positions(rec: Recording, units) -> list[int]:
    if units is None:
        return list(range(rec.n_units))
    if isinstance(units, (str, int, np.integer)):
        units = [units]
    return [rec.unit_position(_match_id(rec, u)) for u in units]


def _match_id(rec: Recording, uid):
    """A unit id as stored (``"3"`` from the command line matches the integer id 3)."""
    if uid in rec.units.index:
        return uid
    for cand in rec.units.index:
        if str(cand) == str(uid):
            return cand
    return uid  # unit_position raises the clear KeyError


def _rd_kwargs(options: Mapping) -> dict:
    bad = set(options) - set(RD_OPTIONS)
    if bad:
        raise TypeError(f"unknown option(s) {sorted(bad)}; RD options are {', '.join(RD_OPTIONS)}")
    return dict(options)


def _fill_from_batch(df: pd.DataFrame, rows: Sequence[int], fit: pd.DataFrame) -> None:
    """Copy a :func:`fit_many` table into result rows ``rows`` (robust inference reported)."""
    rows = list(rows)
    df["estimate"][rows] = fit["estimate"].to_numpy(float)
    df["estimate_bc"][rows] = fit["tau_bc"].to_numpy(float)
    df["se"][rows] = fit["se_rb"].to_numpy(float)
    df["ci_lo"][rows] = fit["ci_rb_lo"].to_numpy(float)
    df["ci_hi"][rows] = fit["ci_rb_hi"].to_numpy(float)
    df["pvalue"][rows] = fit["pv_rb"].to_numpy(float)
    df["bandwidth"][rows] = fit["h_left"].to_numpy(float)
    df["bandwidth_right"][rows] = fit["h_right"].to_numpy(float)
    df["n_left"][rows] = fit["n_h_left"].to_numpy(float)
    df["n_right"][rows] = fit["n_h_right"].to_numpy(float)
    reasons = fit["reason"].to_numpy(object)
    for r, why in zip(rows, reasons):
        if why is not None and not (isinstance(why, float) and np.isnan(why)):
            df["reason"][r] = str(why)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (equal to statsmodels' ``multipletests(p, method="holm")[1]``,
    which calls ``gc.collect()`` on every use: 0.2 s each in a large session)."""
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def _holm_by_variant(table: pd.DataFrame) -> np.ndarray:
    """Holm-adjusted ``pvalue`` within each ``design`` variant (NaN where the p-value is NaN)."""
    p = table["pvalue"].to_numpy(dtype=float)
    out = np.full(p.shape, np.nan)
    groups = table["design"].astype(str).to_numpy() if "design" in table.columns else np.zeros(p.shape, str)
    for g in np.unique(groups):
        idx = np.flatnonzero((groups == g) & np.isfinite(p))
        if idx.size:
            out[idx] = _holm(p[idx])
    return out


def _fill_from_rd(df: pd.DataFrame, row: int, res) -> None:
    """Copy one :class:`RDResults` into result row ``row``."""
    df["estimate"][row] = res.tau_cl
    df["estimate_bc"][row] = res.tau_bc
    df["se"][row] = res.se_rb
    df["ci_lo"][row], df["ci_hi"][row] = res.ci_rb
    df["pvalue"][row] = res.pv_rb
    df["bandwidth"][row], df["bandwidth_right"][row] = res.h
    df["n_left"][row], df["n_right"][row] = (float(v) for v in res.n_h)


def _quiet_fit_many(x, y, cutoff, *, units, **kwargs) -> pd.DataFrame:
    """:func:`fit_many` without numerical warnings; if the batch raises, unit by unit, so that one
    bad unit gets NaN and a reason instead of stopping the others."""
    from .rd import BATCH_COLUMNS, fit_many

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return fit_many(x, y, cutoff, units=units, **kwargs)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
            if x.shape[1] == 1:
                row = {c: np.nan for c in BATCH_COLUMNS}
                row.update(unit=units[0], reason=f"RD fit failed ({type(err).__name__}: {err})")
                return pd.DataFrame([row], columns=list(BATCH_COLUMNS))
        y = np.asarray(y)
        parts = [_quiet_fit_many(x[:, [j]], y if y.ndim == 1 else y[:, [j]], cutoff, units=[units[j]], **kwargs)
                 for j in range(x.shape[1])]
        return pd.concat(parts, ignore_index=True)


def _fill_fuzzy_row(df, k: int, y, x, treatment, rd_options) -> None:
    """Fit a fuzzy RD at cutoff 0 into row ``k`` with its first stage, or record why it failed."""
    try:
        res = _quiet_rd(y, x, 0.0, fuzzy=treatment, **rd_options)
        _fill_from_rd(df, k, res)
        fs = res.first_stage
        df["first_stage"][k] = fs["coef"][0]
        df["first_stage_se"][k] = fs["se"][0]
        df["first_stage_f"][k] = (fs["coef"][0] / fs["se"][0]) ** 2
    except ValueError as err:
        df["reason"][k] = str(err).replace("RD cannot be estimated: ", "")


def _quiet_rd(y, x, cutoff, *, fuzzy=None, **kwargs):
    """One :class:`RD` fit on the rows where y, x (and the treatment) are finite, without warnings."""
    from .rd import RD

    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    ok = np.isfinite(y) & np.isfinite(x)
    if fuzzy is not None:
        fuzzy = np.asarray(fuzzy, dtype=float)
        ok &= np.isfinite(fuzzy)
        fuzzy = fuzzy[ok]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return RD(y[ok], x[ok], cutoff, fuzzy=fuzzy, **kwargs).fit()


def _level(options: Mapping) -> float:
    return float(options.get("level", 95.0))

