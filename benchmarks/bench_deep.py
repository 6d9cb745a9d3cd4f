"""Step time of each credit-assignment method relative to backprop (CPU, one thread).

For the paper's MLP (784-50-20-10, batch 32, SGD) and the CIFAR CNN (quick: a narrower copy;
full: the paper's 96/128/256 conv + 2048/2048 FC, batch 32), time one full training step of:

* ``native-bp`` — the unconverted ``torch.nn`` model (forward, loss, backward, SGD step), the baseline;
* ``bp`` and every method through :func:`bci_credit.deep.convert` and ``CreditModel.step`` (the
  ratios to this converted BP are reported too: they isolate the method from the step harness).

Methods are timed in interleaved rounds (so load changes on a shared machine hit all of them); the
median CPU time per step of each method (process CPU time, one thread: insensitive to the time the
scheduler gives to other processes) is compared with that of ``native-bp`` in the same run. Wall
times are reported too.
Targets: NP ≤ 2.5× BP, FA and DFA ≤ 1.3× BP.

Run ``python benchmarks/bench_deep.py [--quick] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time


def _time_steps(step, n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per step; CPU time of this (single-threaded) process ignores the
    time the scheduler gives to other processes, so it is the steadier measure on a shared machine."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        step()
    return (time.process_time() - c0) / n, (time.perf_counter() - t0) / n


def _bench_model(name: str, build, input_shape, batch: int, methods: list, loss: str, rounds: int, n_steps: int,
                 warmup: int, torch) -> dict:
    from bci_credit.deep import convert
    from bci_credit.deep.losses import get_loss, reduce_loss

    g = torch.Generator().manual_seed(0)
    x = torch.rand((batch,) + tuple(input_shape), generator=g)
    labels = torch.randint(0, 10, (batch,), generator=g)
    reduction = "sum" if loss == "mse" else "mean"
    steps = {}

    net = build()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4)
    loss_fn = get_loss(loss)
    target = torch.nn.functional.one_hot(labels, 10).float() if loss == "mse" else labels

    def native():
        out = net(x)
        total = reduce_loss(loss_fn(out, target), reduction)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    steps["native-bp"] = native
    for method in methods:
        cm = convert(build(), method, input_shape=input_shape, seed=0)
        o = torch.optim.SGD(cm.parameters(), lr=1e-4)
        steps[method] = (lambda cm=cm, o=o: cm.step(x, target, loss, o, reduction=reduction))
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in steps}
    walls = {k: [] for k in steps}
    for _ in range(rounds):
        for k, fn in steps.items():
            cpu, wall = _time_steps(fn, n_steps)
            times[k].append(cpu)
            walls[k].append(wall)
    med = {k: statistics.median(v) for k, v in times.items()}
    wall_med = {k: statistics.median(v) for k, v in walls.items()}
    base = med["native-bp"]
    return {"model": name, "batch": batch, "step_ms": {k: 1e3 * v for k, v in med.items()},
            "wall_step_ms": {k: 1e3 * v for k, v in wall_med.items()},
            "ratio_to_bp": {k: v / base for k, v in med.items()},
            "ratio_to_converted_bp": {k: v / med["bp"] for k, v in med.items()},
            "wall_ratio_to_bp": {k: v / wall_med["native-bp"] for k, v in wall_med.items()},
            "rounds": rounds, "steps_per_round": n_steps}


def run(quick: bool = True) -> dict:
    """Time the methods; returns step times, ratios to BP and whether each target holds."""
    import torch

    from bci_credit.deep.models import cifar_cnn, mnist_mlp

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        all_methods = ["bp", "fa", "dfa", "usf", "brsf", "frsf", "wm", "kp", "np", "np-direct"]
        mlp = _bench_model("mlp-784-50-20-10", lambda: mnist_mlp(seed=0), (784,), 32,
                           all_methods, "mse", rounds=5 if quick else 15, n_steps=50 if quick else 200,
                           warmup=20, torch=torch)
        if quick:
            build = lambda: cifar_cnn(3, 10, 32, channels=(16, 32, 64), hidden=(256, 256), seed=0)  # noqa: E731
            cnn_name, rounds, n, batch = "cnn-16-32-64-256-256 (quick)", 3, 3, 32
        else:
            build = lambda: cifar_cnn(3, 10, 32, seed=0)  # noqa: E731
            cnn_name, rounds, n, batch = "cnn-96-128-256-2048-2048 (paper)", 5, 2, 32
        cnn_methods = ["bp", "fa", "dfa", "np-direct"] + ([] if quick else ["usf", "wm", "kp"])
        cnn = _bench_model(cnn_name, build, (3, 32, 32), batch, cnn_methods, "ce", rounds=rounds, n_steps=n,
                           warmup=2, torch=torch)
    finally:
        torch.set_num_threads(threads)
    targets = {}
    for res, np_key in ((mlp, "np"), (cnn, "np-direct")):
        r = res["ratio_to_bp"]
        targets[res["model"]] = {f"{np_key} <= 2.5x bp": r[np_key] <= 2.5, "fa <= 1.3x bp": r["fa"] <= 1.3,
                                 "dfa <= 1.3x bp": r["dfa"] <= 1.3}
    return {"benchmark": "deep credit assignment step time", "quick": quick, "device": "cpu", "threads": 1,
            "torch": torch.__version__, "python": platform.python_version(), "results": [mlp, cnn],
            "targets": targets}


def markdown(res: dict) -> str:
    """One table per model: median CPU time per step and its ratio to native BP, then the targets."""
    lines = [f"CPU, {res.get('threads', 1)} thread, torch {res.get('torch', '?')}; median over interleaved rounds "
             f"of process CPU time per training step (forward, backward, feedback update, SGD step)."]
    for r in res["results"]:
        conv = r.get("ratio_to_converted_bp", {})
        lines += ["", f"**{r['model']}**, batch {r.get('batch', '?')}, {r.get('rounds', '?')} rounds x "
                      f"{r.get('steps_per_round', '?')} steps", "",
                  "| method | ms/step | / native BP | / converted BP | wall / native BP |", "|---|---|---|---|---|"]
        for k, ms in r["step_ms"].items():
            c = f"{conv[k]:.2f}x" if k in conv else ""
            wall = r.get("wall_ratio_to_bp", {})
            w = f"{wall[k]:.2f}x" if k in wall else ""
            lines.append(f"| {k} | {ms:.3g} | **{r['ratio_to_bp'][k]:.2f}x** | {c} | {w} |")
        held = res.get("targets", {}).get(r["model"], {})
        if held:
            lines += ["", "Targets: " + "; ".join(f"{k}: {'holds' if v else 'FAILS'}" for k, v in held.items()) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and a narrower CNN")
    ap.add_argument("--out", default=None, help="write the JSON result here")
    a = ap.parse_args()
    result = run(quick=a.quick)
    text = json.dumps(result, indent=2)
    if a.out:
        from bci_credit.outputs import write_json

        write_json(result, a.out)
    print(text)
    sys.exit(0)
