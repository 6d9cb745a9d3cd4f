"""Which units does the analysis list in a BCI session where only the control unit drives reward?

Setting: the demo's session (:func:`bci_credit.tasks.bci.default_session_config`: 20 LIF units with
shared-input fraction c = 0.3, no coupling, a threshold task on unit 0, RDD learning; baseline 60 s,
conditioning 240 s, extinction 60 s), simulated as ``--replicates`` independent sessions in one
batched engine call. Each session is analysed as ``make demo`` analyses its file
(:func:`bci_credit.analysis.causal.analyze_recording`, spike-discontinuity design, the naive
comparison beside it, every block pooled).

Only the control unit's spikes enter the decoder, and the units are not coupled, so the 19 other
units have no effect on reward at all (their ``true_total_effect`` is exactly 0). Any of them listed
is a false discovery. Measured per variant (``spike`` and the three naive ones):

* the false-positive rate of each unit's own (uncorrected) 95% CI over all non-control units and
  sessions, with a Clopper-Pearson interval (units of one session share input, so the
  effective number of independent tests is smaller than their count);
* the family-wise error rate: the fraction of sessions in which Holm's correction over the 20
  units lists any non-control unit (the guarantee the summary states: at most 5%);
* the power for the control unit (uncorrected and after Holm);
* for the spike RD, the coverage of the control unit's effect, against two truths of the session
  (:mod:`bci_credit.tasks.bci`, "Ground truth"), each pooled over every session's sampled windows and
  each session's own (a noisy Monte Carlo estimate): ``true_removal_marginal``, the effect of the
  unit's spikes as they happened in windows just above threshold (the RD estimand), and
  ``true_marginal_effect``, one spike at a uniformly random step of a window near threshold
  against silence;
* the spike RD refitted with other variance estimators (:data:`SE_CHECKS`): HC3, and cluster-robust
  CR1 over blocks of 1, 5 and 15 s of consecutive windows. They tell whether a false-positive rate
  above the nominal one comes from the nearest-neighbour variance or from dependence between windows.

``--rule none`` runs the same sessions with the weights fixed (no learning), to separate what the
learning's slow drift adds.

Run ``python analysis/bci_null_units.py`` (about 11 min on one core for the default 200 sessions) to rewrite
``analysis/results/causal/bci_null_units.json``; ``tests/test_bci_null_units.py`` runs a quick version.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "analysis"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from causal_coverage import binomial_interval  # noqa: E402

from bci_credit.tasks.protocols import RULE_NAMES  # noqa: E402

DEFAULT_OUT = ROOT / "analysis" / "results" / "causal" / "bci_null_units.json"
VARIANTS = ("spike", "naive-od", "naive-rate", "naive-rate-adjusted")
#: The session's two truths for the control unit (units-table columns: value, window count, SE): the
#: effect of its spikes as they happened in windows just above threshold (the spike RD's estimand), and
#: of one spike at a uniformly random step against silence in windows within the band on either side.
TRUTHS = {"removal": ("true_removal_marginal", "true_removal_marginal_n", "true_removal_marginal_se"),
          "uniform_insertion": ("true_marginal_effect", "true_marginal_n", "true_marginal_effect_se")}
#: The spike RD refitted with other variance estimators (``vce``, and the length in seconds of the blocks
#: of consecutive windows that form the clusters, or None): is the null z spread above 1 rdrobust's
#: nearest-neighbour variance (HC3 instead), or serial dependence between nearby windows (cluster-robust
#: CR1 over blocks)? The first entry is the analysis as run, and reproduces the ``spike`` variant.
SE_CHECKS = {"nn": ("nn", None), "hc3": ("hc3", None), "cr1_1s": ("cr1", 1.0), "cr1_5s": ("cr1", 5.0),
             "cr1_15s": ("cr1", 15.0)}


def _rate(k: int, n: int) -> dict:
    return {"rate": k / n if n else None, "k": int(k), "n": int(n),
            "binomial_95ci": binomial_interval(int(k), int(n)) if n else None}


def _session_rate(hit, session) -> dict:
    """A rate over tests that share sessions: the pooled rate, with the standard error from the spread of
    the per-session counts (a cluster-robust SE; the binomial interval treats the tests as independent,
    which units driven by shared input in one session are not)."""
    hit = np.asarray(hit, bool)
    out = _rate(int(hit.sum()), hit.size)
    per = pd.Series(hit).groupby(np.asarray(session)).agg(["sum", "size"])
    m = len(per)
    if m > 1 and hit.size:
        rate = hit.mean()
        resid = per["sum"].to_numpy(float) - rate * per["size"].to_numpy(float)
        out["se_by_session"] = float(np.sqrt(m / (m - 1) * np.sum(resid**2)) / hit.size)
    return out


def _variance_checks(spike, rec, session: int, level: float) -> pd.DataFrame:
    """The spike RD of every unit of one session under each of :data:`SE_CHECKS`, refitted on the
    running variable and outcome the analysis used (``spike.data``: each window's maximum drive minus
    threshold, and its reward)."""
    import warnings

    from bci_credit.analysis.rd import fit_many

    units = list(spike.data)
    x = np.column_stack([spike.data[u]["x"] for u in units])
    y = spike.data[units[0]]["y"]  # one outcome, the window's reward, for every unit
    start = rec.windows["start_s"].to_numpy(float)
    frames = []
    for name, (vce, block_s) in SE_CHECKS.items():
        cluster = None if block_s is None else np.floor(start / block_s)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            df = fit_many(x, y, 0.0, units=units, vce=vce, cluster=cluster, level=level)
        df["check"], df["session"] = name, session
        df["is_control"] = df["unit"].map(rec.units["is_control"]).astype(bool)
        frames.append(df[["check", "session", "unit", "is_control", "tau_bc", "se_rb", "ci_rb_lo", "ci_rb_hi"]])
    return pd.concat(frames, ignore_index=True)


def _summarise_variance_checks(checks: pd.DataFrame) -> dict:
    out = {}
    nn = checks[checks["check"] == "nn"].set_index(["session", "unit"])["se_rb"]
    for name, g in checks.groupby("check", sort=False):
        null = ~g["is_control"]
        excludes0 = (g["ci_rb_lo"] > 0) | (g["ci_rb_hi"] < 0)
        z = (g["tau_bc"] / g["se_rb"])[null]
        ratio = g.set_index(["session", "unit"])["se_rb"][null.to_numpy()] / nn
        vce, block_s = SE_CHECKS[name]
        out[name] = {"vce": vce, "cluster_block_s": block_s,
                     "false_positive_uncorrected": _session_rate(excludes0[null], g.loc[null, "session"]),
                     "null_z_sd": float(z.std()), "null_se_ratio_to_nn": float(ratio.dropna().mean()),
                     "control_power_uncorrected": _rate(int(excludes0[~null].sum()), int((~null).sum())),
                     "failed_fits": int(g["se_rb"].isna().sum())}
    return out


def run_null_units(n_replicates: int = 200, *, seed: int = 2023, level: float = 95.0, progress: bool = False,
                   **session_changes) -> dict:
    """Simulate ``n_replicates`` demo sessions and count the units each variant lists.

    ``session_changes`` replace fields of the demo's session configuration (e.g. ``blocks``,
    ``noise``); without them the sessions are the demo's. Returns a JSON-ready dict: the setting, per variant the false-positive
    rate over non-control units, the family-wise error rate over sessions and the control unit's
    power, and the spike RD's coverage of the control unit's effect.
    """
    from bci_credit.analysis.causal import analyze_recording
    from bci_credit.tasks.bci import default_session_config, run_session

    alpha = 1.0 - level / 100.0
    cfg = default_session_config(seed=seed, n_replicates=int(n_replicates), **session_changes)
    t0 = time.perf_counter()
    recs = run_session(cfg, progress=progress).recordings
    t_sim = time.perf_counter() - t0
    t1 = time.perf_counter()
    frames, checks = [], []
    it = enumerate(recs)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(recs), desc="sessions")
    for r, rec in it:
        analysis = analyze_recording(rec, "spike", density=False, level=level)
        df = analysis.to_frame()
        df["session"] = r
        for cols in TRUTHS.values():  # from the units table (the results carry only some truth columns)
            for col in cols:
                df[col] = df["unit"].map(rec.units[col]).astype(float)
        frames.append(df)
        checks.append(_variance_checks(analysis.primary, rec, r, level))
    t_fit = time.perf_counter() - t1
    table = pd.concat(frames, ignore_index=True)
    control = table["is_control"].astype(bool)
    if (table.loc[~control, "true_total_effect"] != 0).any():
        raise RuntimeError("a non-control unit has a non-zero true effect: the setting is not the null one")
    excludes0 = (table["ci_lo"] > 0) | (table["ci_hi"] < 0)
    holm = table["pvalue_holm"] < alpha
    variants = {}
    for v in VARIANTS:
        t = table["design"] == v
        null, ctl = t & ~control, t & control
        fit = null & table["estimate"].notna()
        fwer = holm[null].groupby(table.loc[null, "session"]).any()
        centre = table["estimate_bc"] if v == "spike" else table["estimate"]  # what the CI is centred on
        z = (centre / table["se"])[fit]
        variants[v] = {
            "false_positive_uncorrected": _session_rate(excludes0[fit], table.loc[fit, "session"]),
            "null_z_sd": float(z.std()),
            "false_positive_positive_side": int((table.loc[fit, "ci_lo"] > 0).sum()),
            "family_wise_error_holm": _rate(int(fwer.sum()), int(fwer.size)),
            "mean_listed_per_session_holm": float(holm[null].sum() / max(1, fwer.size)),
            "null_mean_estimate": float(table.loc[fit, "estimate"].mean()),
            "null_sd_estimate": float(table.loc[fit, "estimate"].std()),
            "failed_fits": int((null & table["estimate"].isna()).sum()),
            "control_power_uncorrected": _rate(int(excludes0[ctl].sum()), int(ctl.sum())),
            "control_power_holm": _rate(int(holm[ctl].sum()), int(ctl.sum())),
        }
    # the spike RD's coverage of the control unit's effect, against both of the session's truths
    c = table[(table["design"] == "spike") & control]
    lo, hi = c["ci_lo"].to_numpy(float), c["ci_hi"].to_numpy(float)

    def cover(target) -> dict:
        hit = (lo <= target) & (target <= hi)
        return _rate(int(hit.sum()), int(np.isfinite(lo).sum()))

    coverage = {"mean_estimate": float(c["estimate"].mean()), "sd_estimate": float(c["estimate"].std()),
                "mean_estimate_bc": float(c["estimate_bc"].mean()), "mean_se": float(c["se"].mean())}
    for name, (col, n_col, se_col) in TRUTHS.items():
        n_near = c[n_col].to_numpy(float)
        per_session = c[col].to_numpy(float)
        ok = np.isfinite(per_session) & (n_near > 0)
        pooled = float(np.sum(per_session[ok] * n_near[ok]) / np.sum(n_near[ok]))
        # SE of the pooled truth from its per-window spread (each session's SE and count)
        var_sum = np.nansum((c[se_col].to_numpy(float)[ok] * n_near[ok]) ** 2)
        coverage[name] = {"column": col, "pooled": pooled, "pooled_se": float(np.sqrt(var_sum) / np.sum(n_near[ok])),
                          "pooled_windows": int(np.sum(n_near[ok])), "per_session_sd": float(np.std(per_session[ok])),
                          "coverage_vs_pooled": cover(pooled), "coverage_vs_per_session": cover(per_session)}
    return {
        "setting": {"session": "bci_credit.tasks.bci.default_session_config (the demo's)",
                    "changes": {k: repr(v) for k, v in session_changes.items()},
                    "n_units": cfg.n_units, "control_units": list(cfg.control_units), "c": cfg.noise.c,
                    "blocks": [(b.name, b.duration_s, b.reward) for b in cfg.blocks], "rule": cfg.rule,
                    "replicates": int(n_replicates), "seed": seed, "level": level,
                    "analysis": "analyze_recording(rec, 'spike', density=False): spike RD (local linear, mserd, "
                                "triangular, robust CI) + naive comparison, every block pooled"},
        "variants": variants,
        "control_coverage_spike": coverage,
        "spike_variance_checks": _summarise_variance_checks(pd.concat(checks, ignore_index=True)),
        "timing_s": {"simulate": round(t_sim, 2), "analyse": round(t_fit, 2)},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--rule", default="rdd", choices=RULE_NAMES,
                    help="learning rule of the sessions (default rdd, the demo's; none: weights fixed)")
    args = ap.parse_args(argv)
    from bci_credit.outputs import versions, write_json

    changes = {} if args.rule == "rdd" else {"rule": args.rule}
    res = run_null_units(args.replicates, seed=args.seed, progress=True, **changes)
    res["versions"] = versions()
    res["script"] = "analysis/bci_null_units.py"
    res["argv"] = sys.argv if argv is None else list(argv)
    write_json(res, args.out)
    for v, d in res["variants"].items():
        fp, fw = d["false_positive_uncorrected"], d["family_wise_error_holm"]
        print(f"{v:20s} false positives {fp['k']}/{fp['n']} = {fp['rate']:.3f} {np.round(fp['binomial_95ci'], 3)}; "
              f"sessions listing a non-control unit (Holm) {fw['k']}/{fw['n']}; control power "
              f"{d['control_power_uncorrected']['rate']:.2f} (Holm {d['control_power_holm']['rate']:.2f})")
    cv = res["control_coverage_spike"]
    print(f"control unit: mean estimate {cv['mean_estimate']:.4g} (SE {cv['sd_estimate'] / np.sqrt(args.replicates):.2g})")
    for name in TRUTHS:
        t = cv[name]
        print(f"  truth {name} ({t['column']}): pooled {t['pooled']:.4g} (SE {t['pooled_se']:.2g}); coverage "
              f"{t['coverage_vs_pooled']['rate']:.3f} (against each session's own {t['coverage_vs_per_session']['rate']:.3f})")
    for name, d in res["spike_variance_checks"].items():
        fp = d["false_positive_uncorrected"]
        print(f"spike RD, vce {name:8s} false positives {fp['rate']:.3f} (SE {fp.get('se_by_session', np.nan):.3f}); null z "
              f"spread {d['null_z_sd']:.3f}; SE / nn {d['null_se_ratio_to_nn']:.3f}; control power "
              f"{d['control_power_uncorrected']['rate']:.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
