"""Reference values for the RD estimator and the density test (run by hand; needs rdrobust/rddensity).

    .venv/bin/python tests/results/make_rd_reference.py

Writes ``rd_data_<name>.csv`` (the data sets, made here from a fixed seed) and ``rd_reference.json``
(rdrobust 2.1.1 and rddensity 3.0 results for every case) beside this script. The tests
(``tests/test_rd_reference.py``, ``tests/test_density.py``) read these files and never import the
GPL packages. rdrobust/rddensity are used only here, to produce numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def make_data(seed: int = 20240611) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    # 1. linear, homoskedastic
    n = 1000
    x = rng.uniform(-1, 1, n)
    y = 1 + 2 * x + 0.5 * (x >= 0) + rng.normal(0, 0.5, n)
    out["linear"] = pd.DataFrame({"x": x, "y": y})
    # 2. curved + heteroskedastic, with a fuzzy treatment, covariates and weights
    n = 1500
    x = np.clip(rng.normal(-0.1, 0.45, n), -1.2, 1.2)
    z1 = rng.normal(0, 1, n)
    z2 = 0.5 * z1 + rng.normal(0, 1, n) + 0.3 * x
    y = np.sin(2 * x) + x ** 2 + 0.8 * (x >= 0) + 0.4 * z1 - 0.2 * z2 + rng.normal(0, 0.2 + 0.5 * np.abs(x), n)
    t = (rng.uniform(size=n) < np.where(x >= 0, 0.8, 0.2) + 0.1 * x).astype(float)
    yf = 0.3 + 0.6 * t + 0.5 * x + rng.normal(0, 0.3, n)
    w = rng.uniform(0.5, 2.0, n)
    out["curved"] = pd.DataFrame({"x": x, "y": y, "t": t, "yf": yf, "z1": z1, "z2": z2, "w": w})
    # 3. binary outcome; a discretised copy of x has mass points
    n = 2000
    x = rng.normal(-0.2, 0.6, n)
    pr = 1 / (1 + np.exp(-(-0.5 + 0.8 * x + 0.6 * (x >= 0))))
    y = (rng.uniform(size=n) < pr).astype(float)
    out["binary"] = pd.DataFrame({"x": x, "y": y, "xd": np.round(x * 20) / 20})
    # 4. clustered: 60 clusters with random effects
    g = 60
    n = 1200
    cl = rng.integers(0, g, n)
    ce = rng.normal(0, 0.5, g)
    xc = rng.normal(0, 0.4, g)
    x = xc[cl] + rng.normal(0, 0.3, n)
    z1 = rng.normal(0, 1, n)
    y = 0.5 + 1.5 * x - 0.7 * x ** 2 + 0.6 * (x >= 0) + ce[cl] + 0.3 * z1 + rng.normal(0, 0.4, n)
    out["clustered"] = pd.DataFrame({"x": x, "y": y, "cl": cl, "z1": z1})
    return out


BWS = ["mserd", "msetwo", "msesum", "msecomb1", "msecomb2", "cerrd", "certwo", "cersum", "cercomb1", "cercomb2"]


def cases() -> list[dict]:
    """Each case: name, data set, y/x columns and keyword options (in bci_credit's RD spelling)."""
    cs = []

    def add(name, data, opts, y="y", x="x"):
        cs.append({"name": name, "data": data, "y": y, "x": x, "opts": opts})

    for bw in BWS:
        add(f"linear_{bw}", "linear", {"bwselect": bw})
    for v in ["nn", "hc0", "hc1", "hc2", "hc3"]:
        add(f"linear_h_{v}", "linear", {"h": 0.5, "vce": v})
        add(f"linear_hb_{v}", "linear", {"h": 0.4, "b": 0.7, "vce": v})
        add(f"curved_{v}", "curved", {"vce": v})
    for kern in ["uniform", "epanechnikov"]:
        add(f"linear_{kern}", "linear", {"kernel": kern})
        add(f"curved_{kern}_hc2", "curved", {"kernel": kern, "vce": "hc2"})
        add(f"curved_{kern}_msetwo", "curved", {"kernel": kern, "bwselect": "msetwo"})
    add("linear_p2", "linear", {"p": 2})
    add("linear_p0", "linear", {"p": 0})
    add("linear_p1q3", "linear", {"p": 1, "q": 3})
    add("linear_rho", "linear", {"h": 0.45, "rho": 0.5})
    add("linear_h_lr", "linear", {"h": [0.4, 0.6], "b": [0.7, 0.8]})
    add("linear_level90", "linear", {"level": 90})
    add("linear_cutoff", "linear", {"cutoff": 0.2})
    add("curved_kink", "curved", {"deriv": 1})
    add("curved_kink_p2_hc1", "curved", {"deriv": 1, "p": 2, "vce": "hc1"})
    add("curved_covs", "curved", {"covs": ["z1", "z2"]})
    add("curved_covs_hc3_msetwo", "curved", {"covs": ["z1", "z2"], "vce": "hc3", "bwselect": "msetwo"})
    add("curved_fuzzy", "curved", {"fuzzy": "t"}, y="yf")
    add("curved_fuzzy_hc1_cerrd", "curved", {"fuzzy": "t", "vce": "hc1", "bwselect": "cerrd"}, y="yf")
    add("curved_fuzzy_covs", "curved", {"fuzzy": "t", "covs": ["z1"]}, y="yf")
    add("curved_fuzzy_sharpbw", "curved", {"fuzzy": "t", "sharpbw": True}, y="yf")
    add("curved_fuzzy_kink", "curved", {"fuzzy": "t", "deriv": 1}, y="yf")
    add("curved_weights", "curved", {"weights": "w"})
    add("curved_weights_hc2_h", "curved", {"weights": "w", "vce": "hc2", "h": 0.5, "b": 0.6})
    add("curved_scaleregul0", "curved", {"scaleregul": 0})
    add("curved_msecomb2_hc0", "curved", {"bwselect": "msecomb2", "vce": "hc0"})
    add("binary_default", "binary", {})
    add("binary_hc1_msesum", "binary", {"vce": "hc1", "bwselect": "msesum"})
    add("binary_cercomb2", "binary", {"bwselect": "cercomb2"})
    add("binary_mass_adjust", "binary", {}, x="xd")
    add("binary_mass_off", "binary", {"masspoints": "off"}, x="xd")
    add("binary_mass_check", "binary", {"masspoints": "check"}, x="xd")
    add("binary_mass_hc3_msetwo", "binary", {"vce": "hc3", "bwselect": "msetwo"}, x="xd")
    add("binary_bwcheck", "binary", {"bwcheck": 40})
    add("clustered_cr1", "clustered", {"cluster": "cl"})
    add("clustered_cr1_h", "clustered", {"cluster": "cl", "h": 0.5})
    add("clustered_cr1_hb", "clustered", {"cluster": "cl", "h": 0.5, "b": 0.8})
    add("clustered_cr1_cerrd", "clustered", {"cluster": "cl", "bwselect": "cerrd"})
    add("clustered_cr1_msetwo", "clustered", {"cluster": "cl", "bwselect": "msetwo"})
    add("clustered_cr1_covs", "clustered", {"cluster": "cl", "covs": ["z1"]})
    add("clustered_nn", "clustered", {})
    add("clustered_hc3", "clustered", {"vce": "hc3"})
    return cs


def _rdrobust_kwargs(opts: dict, df: pd.DataFrame) -> dict:
    kw = {}
    for k, v in opts.items():
        if k == "cutoff":
            kw["c"] = v
        elif k == "kernel":
            kw["kernel"] = v[:3]
        elif k in ("fuzzy", "weights", "cluster"):
            kw[k] = df[v].to_numpy()
        elif k == "covs":
            kw["covs"] = df[v]
        else:
            kw[k] = v
    return kw


def run_rdrobust(case: dict, df: pd.DataFrame) -> dict:
    from rdrobust import rdrobust

    kw = _rdrobust_kwargs(case["opts"], df)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        r = rdrobust(df[case["y"]].to_numpy(), df[case["x"]].to_numpy(), **kw)
    out = {
        "coef": r.coef.to_numpy().ravel().tolist(), "se": r.se.to_numpy().ravel().tolist(),
        "z": r.z.to_numpy().ravel().tolist(), "pv": r.pv.to_numpy().ravel().tolist(),
        "ci": r.ci.to_numpy().tolist(), "h": r.bws.to_numpy()[0].tolist(), "b": r.bws.to_numpy()[1].tolist(),
        "N": [int(v) for v in r.N], "N_h": [int(v) for v in r.N_h], "N_b": [int(v) for v in r.N_b],
        "M": [int(v) for v in r.M], "bias": [float(v) for v in np.ravel(r.bias)],
        "tau_cl_sides": [float(v) for v in np.ravel(r.tau_cl)], "tau_bc_sides": [float(v) for v in np.ravel(r.tau_bc)],
        "beta_p_l": np.ravel(np.asarray(r.beta_p_l)[:, 0]).tolist(),
        "beta_p_r": np.ravel(np.asarray(r.beta_p_r)[:, 0]).tolist(),
    }
    if r.coef_covs is not None:
        out["coef_covs"] = np.asarray(r.coef_covs).tolist()
    if r.tau_T is not None:
        out["coef_T"] = r.tau_T.to_numpy().ravel().tolist()
        out["se_T"] = r.se_T.to_numpy().ravel().tolist()
    if r.n_clust is not None:
        out["n_clusters"] = [int(r.n_clust_l), int(r.n_clust_r)]
    return out


DENSITY_CASES = [
    {"name": "linear", "data": "linear", "x": "x", "opts": {}},
    {"name": "curved", "data": "curved", "x": "x", "opts": {}},
    {"name": "curved_each", "data": "curved", "x": "x", "opts": {"bwselect": "each"}},
    {"name": "curved_diff_p1", "data": "curved", "x": "x", "opts": {"bwselect": "diff", "p": 1}},
    {"name": "curved_sum_uni", "data": "curved", "x": "x", "opts": {"bwselect": "sum", "kernel": "uniform"}},
    {"name": "curved_plugin", "data": "curved", "x": "x", "opts": {"vce": "plugin"}},
    {"name": "curved_restricted", "data": "curved", "x": "x", "opts": {"fitselect": "restricted"}},
    {"name": "curved_h", "data": "curved", "x": "x", "opts": {"h": [0.4, 0.5]}},
    {"name": "binary", "data": "binary", "x": "x", "opts": {"cutoff": 0.1}},
    {"name": "binary_mass", "data": "binary", "x": "xd", "opts": {}},
    {"name": "clustered_epa", "data": "clustered", "x": "x", "opts": {"kernel": "epanechnikov"}},
]


def run_rddensity(case: dict, df: pd.DataFrame) -> dict:
    from rddensity import rddensity

    kw = {}
    for k, v in case["opts"].items():
        kw["c" if k == "cutoff" else k] = v
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        r = rddensity(X=df[case["x"]].to_numpy(), **kw)
    def three(sr):
        return [float(sr["left"]), float(sr["right"]), float(sr["diff"])]

    return {
        "hat": three(r.hat), "sd_jk": three(r.sd_jk), "sd_asy": three(r.sd_asy),
        "t_jk": float(r.test["t_jk"]), "p_jk": float(r.test["p_jk"]),
        "t_asy": float(r.test["t_asy"]), "p_asy": float(r.test["p_asy"]),
        "h": [float(r.h["left"]), float(r.h["right"])],
        "n_h": [int(r.n["eff_left"]), int(r.n["eff_right"])],
        "n": [int(r.n["left"]), int(r.n["right"])],
    }


def main() -> None:
    import rdrobust  # noqa: F401 - fail early when not installed
    from importlib.metadata import version

    data = make_data()
    for name, df in data.items():
        df.to_csv(HERE / f"rd_data_{name}.csv", index=False, float_format="%.17g")
    # read back what the tests will read, so the references use the very same numbers
    data = {name: pd.read_csv(HERE / f"rd_data_{name}.csv") for name in data}
    ref = {"rdrobust_version": version("rdrobust"), "cases": [], "density": []}
    try:
        ref["rddensity_version"] = version("rddensity")
    except Exception:  # pragma: no cover
        ref["rddensity_version"] = None
    for case in cases():
        res = run_rdrobust(case, data[case["data"]])
        ref["cases"].append({**case, "expected": res})
    if ref["rddensity_version"]:
        for case in DENSITY_CASES:
            try:
                res = run_rddensity(case, data[case["data"]])
            except Exception as err:  # keep going: record why
                res = {"error": repr(err)}
            ref["density"].append({**case, "expected": res})
    (HERE / "rd_reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    print(f"wrote {len(ref['cases'])} rdrobust cases and {len(ref['density'])} rddensity cases")


if __name__ == "__main__":
    main()
