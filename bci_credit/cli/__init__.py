"""The ``bci-credit`` command line: a thin layer over the library.

Each sub-command lives in its own module in this package and exposes
``register(subparsers) -> None``; the module adds its parser and sets ``func`` (a callable
taking the parsed arguments and returning an exit code). Modules are discovered automatically.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import pkgutil
import re
import sys

__all__ = ["main", "build_parser", "CLIError", "out_dir", "run_folder"]


# argparse reads "-1e9" or "-1E-3" as an option, so "--threshold -1e9" failed with "expected one
# argument"; every number, exponents included, is a value (argparse's own rule, widened).
_NEGATIVE_NUMBER = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


class CLIError(Exception):
    """An error with a one-line message for the user (no traceback)."""


def out_dir(path, command: str, option: str = "--out"):
    """Create the output folder of ``command`` up front (before any long computation).

    A ``--out`` that is an existing file or cannot be created, or a folder holding the results of
    another command (its ``run.json`` names a different command, which this run would overwrite),
    gives a one-line :class:`CLIError`.
    """
    import json
    from pathlib import Path

    from ..outputs import OutputPathError, ensure_dir

    if not str(path).strip():
        raise CLIError(f"{option} is empty; give the folder to write the {command} results to")
    run = Path(path) / "run.json"
    if run.is_file():
        try:
            other = json.loads(run.read_text()).get("command")
        except (OSError, ValueError, AttributeError):
            other = None
        if other and other != command:
            raise CLIError(f"{option} {path} holds the results of a '{other}' run (its run.json); write the "
                           f"{command} results to another folder so that they do not overwrite them")
    try:
        return ensure_dir(path, option=option)
    except OutputPathError as err:
        raise CLIError(str(err)) from None


@contextlib.contextmanager
def run_folder(path, command: str, option: str = "--out"):
    """:func:`out_dir` for a run that may fail before writing anything.

    Yields the folder. If the block raises, the folders made by this call (``--out a/b/c`` may
    make all three) are removed while empty, deepest first, so that a mistyped input leaves
    nothing behind; a folder the user made, or one holding anything, is kept.
    """
    import os
    from pathlib import Path

    def absent(folder: Path) -> list:  # ``folder`` and its missing parents, deepest first
        chain = []
        for f in (folder, *folder.parents):
            if f.exists() or f == f.parent:
                break
            chain.append(f)
        return chain

    # 'x/../mine' is 'mine' (walk the normalised path, so a folder the user made is never taken for
    # a new one), but creating it also makes 'x', which the literal path walks through
    made = absent(Path(os.path.abspath(path)))
    parts = Path(path).parts
    if ".." in parts and parts.index("..") > 0:
        made += absent(Path(os.path.abspath(Path(*parts[:parts.index("..")]))))
    out = out_dir(path, command, option)
    try:
        yield out
    except BaseException:
        for folder in made:  # each was absent before and is removed only while empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


@contextlib.contextmanager
def warnings_as_lines(command: str):
    """Show each UserWarning raised inside as one line, ``bci-credit COMMAND: warning: ...``, on stderr
    when it happens (Python's default adds the file and source line); other warnings are shown as usual."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning):
            print(f"bci-credit {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        default = warnings.showwarning
        warnings.showwarning = show
        yield


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="bci-credit",
        description="Which neurons caused the reward? Simulate single-unit BCI experiments, "
        "train spiking networks with RDD learning, and estimate causal effects with regression "
        "discontinuity on simulated or recorded NWB data.",
        epilog="Run 'bci-credit COMMAND --help' for the options and an example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"bci_credit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    for command_parser in (parser, *sub.choices.values()):
        command_parser._negative_number_matcher = _NEGATIVE_NUMBER
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bci-credit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"bci-credit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # an output folder or file that cannot be used: one line, no traceback
        from ..outputs import OutputPathError

        if not isinstance(err, OutputPathError):
            raise
        print(f"bci-credit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"bci-credit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
