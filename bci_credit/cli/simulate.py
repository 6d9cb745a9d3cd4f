"""``bci-credit simulate``: preset or TOML config -> NWB + run.json + tables + figure."""

from __future__ import annotations

import argparse
import sys

from . import CLIError, run_folder, warnings_as_lines

EXAMPLE = """\
Simulate a population of LIF neurons with correlated noise from a preset or a TOML config, and
write the session (spikes, per-window drive Z, spike indicator H and reward, ground-truth causal
effects, weights) as NWB plus run.json, CSV tables and a figure into the output folder.

examples:
  bci-credit simulate paper_2neuron_estimation --out out/sim
  bci-credit simulate my_config.toml --set population.c=0.9 --set run.duration_s=30 --out out/c09
  bci-credit simulate paper_2neuron_banana --set learning.rule=reinforce --set learning.epsilon=50
  bci-credit simulate --list

--set task.cost.NAME=VALUE sets one parameter of the cost (e.g. task.cost.z=2 for the banana cost).
--set learning.NAME=VALUE sets a hyper-parameter of the rule. Switching learning.rule to another rule
starts it from its own defaults (the preset's settings were for its own rule; a warning names them).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate a spiking population (preset or TOML) and write NWB + run.json",
        description="Simulate a spiking population and write its session to an output folder.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="preset name (see --list) or path to a TOML config")
    p.add_argument("--out", default="out/simulate", help="output folder (default: out/simulate)")
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override a config value, e.g. population.c=0.9 (repeatable)")
    p.add_argument("--duration", type=float, help="simulated seconds (overrides run.duration_s)")
    p.add_argument("--seed", type=int, help="root seed (overrides run.seed)")
    p.add_argument("--no-nwb", action="store_true", help="skip the NWB file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict:
    """``["population.c=0.9", ...]`` -> ``{"population.c": 0.9}`` (values parsed as TOML literals)."""
    import tomllib

    out = {}
    for item in items:
        if "=" not in item:
            raise CLIError(f"--set {item!r}: write TABLE.KEY=VALUE, e.g. population.c=0.9")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def load_with_overrides(name: str, overrides: list[str], duration: float | None, seed: int | None):
    from ..config import ConfigError, load_preset

    try:
        cfg = load_preset(name)
        extra = parse_overrides(overrides)
        if duration is not None:
            extra["run.duration_s"] = duration
        if seed is not None:
            extra["run.seed"] = seed
        return cfg.with_overrides(**extra) if extra else cfg
    except ConfigError as err:
        raise CLIError(str(err)) from None


def run(args) -> int:
    from ..config import list_presets, preset_dir

    if args.list:
        print(f"presets in {preset_dir()}:")
        for name in list_presets():
            print(f"  {name}")
        return 0
    if not args.config:
        raise CLIError("give a preset name or a TOML config (see --list)")
    with warnings_as_lines("simulate"):  # e.g. a rule switched by --set learning.rule=...
        cfg = load_with_overrides(args.config, args.set, args.duration, args.seed)
    from ..experiment import run as run_experiment
    from ..outputs import remove_previous_outputs, write_run_json
    from ..report import write_session_outputs

    with run_folder(args.out, "simulate") as out, warnings_as_lines("simulate"):  # a bad --out fails now
        rec = run_experiment(cfg, progress=not args.no_progress and sys.stderr.isatty())
    files = write_session_outputs(rec, out, nwb=not args.no_nwb)
    names = [str(f.name) for f in files]
    removed = remove_previous_outputs(out, names)
    write_run_json(out, command="simulate", config=cfg.to_dict(), seed=cfg.run.seed, extra={"files": names})
    print(rec.summary())
    print(f"wrote {len(files) + 1} files to {out}/"
          + (f" (removed the previous run's {', '.join(removed)})" if removed else ""))
    return 0
