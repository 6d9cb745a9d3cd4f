"""Output folders: ``run.json`` provenance, atomic writes of tables, figures and JSON.

Every command writes into an output folder. Files are written to a temporary name and renamed,
so a crash never leaves a half-written file, and input files are never touched.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .plotting import pyplot

__all__ = ["versions", "provenance", "atomic_path", "write_json", "write_csv", "save_figure", "write_run_json", "to_jsonable",
           "ensure_dir", "OutputPathError"]

_TRACKED = ("numpy", "scipy", "pandas", "statsmodels", "sklearn", "matplotlib", "pynwb", "hdmf", "h5py", "numba", "torch")


def versions() -> dict[str, str]:
    """Versions of Python, bci_credit and the libraries that shape results."""
    from . import __version__

    out = {"python": platform.python_version(), "bci_credit": __version__, "platform": platform.platform()}
    for name in _TRACKED:
        mod = sys.modules.get(name)
        if mod is None:
            continue
        out[name] = str(getattr(mod, "__version__", "?"))
    return out


class OutputPathError(ValueError):
    """An output folder or file that cannot be used (a file where a folder is needed, a folder where
    a file is needed, or a folder that cannot be created); the message says which and why."""


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def ensure_dir(path: str | os.PathLike, *, option: str | None = None) -> Path:
    """Create the folder ``path`` (and its parents) if needed and return it.

    Raises :class:`OutputPathError` with one clear line when ``path`` (or a folder above it) is an
    existing file, or the folder cannot be created (permissions, read-only or virtual file system).
    ``option`` (e.g. ``"--out"``) names the command-line option in the message.
    """
    path = Path(path)
    name = f"{option} {path}" if option else str(path)
    where = f"{option}: " if option else ""
    if path.is_dir():
        return path
    if path.exists():
        raise OutputPathError(f"{name} exists and is a file; give a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"{where}cannot create folder {path}: {parent} is a file, not a folder")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(f"{where}cannot create folder {path}: {_reason(err)}") from None
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    Raises :class:`OutputPathError` when ``path`` is an existing folder or its folder cannot be created.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give a file path to write to")
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    except OSError as err:
        raise OutputPathError(f"cannot write {path.name} in folder {path.parent}: {_reason(err)}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, dataclasses and NaN to JSON-friendly values."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    return obj


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")
    return Path(path)


def write_csv(df, path: str | os.PathLike, **kwargs) -> Path:
    """Write a DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, atomically, and close it."""
    plt = pyplot()

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(path)


def provenance(script: str, argv: list[str] | None = None) -> dict:
    """What made a stored result: the script, its command line (default ``sys.argv``) and the versions."""
    return {"script": script, "argv": list(sys.argv if argv is None else argv), "versions": versions()}


def remove_previous_outputs(out_dir: str | os.PathLike, keep: list[str]) -> list[str]:
    """Delete the files that the previous run in ``out_dir`` wrote (its ``run.json`` lists them) and
    this run did not rewrite (``keep``), so that the folder describes one run only.

    Only plain files named in that list and lying directly in ``out_dir`` are touched. Returns
    their names.
    """
    out = Path(out_dir)
    try:
        listed = json.loads((out / "run.json").read_text()).get("files") or []
    except (OSError, ValueError, AttributeError):
        return []
    removed = []
    for name in listed:
        if not isinstance(name, str) or name in keep or name == "run.json" or Path(name).name != name:
            continue
        path = out / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(name)
    return removed


def write_run_json(out_dir: str | os.PathLike, *, command: str, config: Any = None, seed: Any = None,
                   argv: list[str] | None = None, extra: dict | None = None) -> Path:
    """Write ``run.json``: command, config, seed, versions, argv and time."""
    record = {
        "command": command,
        "argv": list(sys.argv if argv is None else argv),
        "seed": seed,
        "config": config,
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
    }
    if extra:
        record.update(extra)
    return write_json(record, Path(out_dir) / "run.json")
