"""One parallel knob for sweeps, batch fits and multi-file analysis.

Every batch entry point of ``bci_credit`` takes ``n_jobs`` (scikit-learn's meaning) and runs its
tasks through :func:`imap_unordered`:

* ``n_jobs=1`` (the default): in this process, one task after the other;
* ``n_jobs=k > 1``: ``k`` worker processes (joblib's ``loky`` backend); ``n_jobs=-1`` uses every
  core, ``-2`` all but one;
* ``scheduler="tcp://host:8786"`` (or the environment variable ``BCI_CREDIT_SCHEDULER``, or a
  ``dask.distributed.Client``): the same tasks run on an existing Dask cluster instead, with no
  code change (``n_jobs`` is then ignored: the cluster decides). Dask is the optional
  ``distributed`` extra (``pip install 'bci_credit[distributed]'``) and is imported only here,
  only when a scheduler is given. The address is checked before connecting (``SCHEME://HOST:PORT``
  with tcp, tls, ws, wss or ucx; ``HOST:PORT``; the ``inproc://`` address of a cluster in this
  process); anything else, e.g. ``"dask"``, is a ``ValueError``, and a scheduler that does not
  answer within :data:`DASK_CONNECT_TIMEOUT_S` a ``ConnectionError``. ``"local"`` (or no
  scheduler) runs on this machine.

Rules every task follows, whatever runs it:

* **Seeds** come from one root seed: task ``k`` gets :func:`child_seed` ``(root, k)`` (an int made
  from ``SeedSequence(root).spawn(...)[k]``), so results do not depend on ``n_jobs``, on the
  backend or on the order in which tasks finish.
* **BLAS threads are capped** in each worker (``threads_per_worker``, default
  ``cpu_count // n_jobs``) so that processes x threads does not oversubscribe the machine.
* **A failing task never stops the batch**: its exception becomes a :class:`TaskOutcome` with
  ``ok=False`` and a one-line ``error``; the caller decides (a table row with a reason, a skipped
  file, or an exception for :func:`pmap` with ``on_error="raise"``).

Defaults for ``n_jobs``, ``scheduler`` and ``threads_per_worker`` can be set for a block of code
with :func:`parallel_options` (or process-wide with :func:`set_parallel_options`; ``n_jobs`` also
from ``BCI_CREDIT_N_JOBS``)::

    from bci_credit import parallel
    with parallel.parallel_options(n_jobs=4):
        result = sweep.run_sweep("paper_2neuron_estimation", {"c": [0, 0.5, 0.99]}, replicates=10)

Many files: :func:`expand_inputs` turns a folder, a glob, a list file or URLs into paths, and
:func:`map_files` runs one function per file (one task each) and returns a combined table with a
``file`` column plus a per-file status table (``ok`` or ``skipped`` with the reason).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob as _glob
import logging
import os
import re
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from .random import SeedLike, seed_sequence

__all__ = [
    "ENV_SCHEDULER",
    "ENV_N_JOBS",
    "parallel_options",
    "set_parallel_options",
    "get_parallel_options",
    "effective_n_jobs",
    "resolve_scheduler",
    "child_seed",
    "spawn_task_seeds",
    "TaskOutcome",
    "imap_unordered",
    "pmap",
    "progress_bar",
    "is_remote",
    "expand_inputs",
    "FileMapResult",
    "to_frame",
    "map_files",
]

log = logging.getLogger("bci_credit")

#: Environment variable naming a Dask scheduler address (``tcp://host:port``).
ENV_SCHEDULER = "BCI_CREDIT_SCHEDULER"
#: Environment variable giving the default ``n_jobs``.
ENV_N_JOBS = "BCI_CREDIT_N_JOBS"

#: Seconds to wait for a Dask scheduler to answer before giving up (a reachable scheduler answers in
#: well under a second; raise it for a slow link).
DASK_CONNECT_TIMEOUT_S = 5.0

_OPTIONS: dict[str, Any] = {"n_jobs": None, "scheduler": None, "threads_per_worker": None}


# --------------------------------------------------------------------------------------------
# options


def get_parallel_options() -> dict[str, Any]:
    """The current defaults (``n_jobs``, ``scheduler``, ``threads_per_worker``); None = not set."""
    return dict(_OPTIONS)


def set_parallel_options(**options: Any) -> None:
    """Set process-wide defaults, e.g. ``set_parallel_options(n_jobs=4)``."""
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown parallel option(s) {sorted(unknown)}; valid: {sorted(_OPTIONS)}")
    _OPTIONS.update(options)


@contextlib.contextmanager
def parallel_options(**options: Any) -> Iterator[dict[str, Any]]:
    """Temporarily set defaults for ``n_jobs``, ``scheduler`` and ``threads_per_worker``.

    An explicit argument to a batch function still wins over these defaults.
    """
    old = get_parallel_options()
    set_parallel_options(**options)
    try:
        yield get_parallel_options()
    finally:
        _OPTIONS.clear()
        _OPTIONS.update(old)


def _cpu_count() -> int:
    from joblib import cpu_count

    return max(1, int(cpu_count()))


def effective_n_jobs(n_jobs: int | None = None) -> int:
    """Number of local worker processes meant by ``n_jobs``.

    ``None`` takes the default (:func:`parallel_options`, then ``$BCI_CREDIT_N_JOBS``, then 1);
    ``-1`` means every core, ``-2`` all but one, and so on.
    """
    if n_jobs is None:
        n_jobs = _OPTIONS["n_jobs"]
    if n_jobs is None:
        env = os.environ.get(ENV_N_JOBS, "").strip()
        if env:
            try:
                n_jobs = int(env)
            except ValueError:
                raise ValueError(f"${ENV_N_JOBS}={env!r} is not an integer") from None
        else:
            n_jobs = 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer (1 = no parallelism, -1 = all cores), got {n_jobs!r}")
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        n_jobs = max(1, _cpu_count() + 1 + n_jobs)
    return n_jobs


def resolve_scheduler(scheduler: Any = None) -> Any:
    """The Dask scheduler to use: the argument, else the default, else ``$BCI_CREDIT_SCHEDULER``.

    Returns None (run locally), an address string, or a ``dask.distributed.Client``. The
    strings ``""``, ``"local"`` and ``"none"`` mean local; another string must have the form of a
    scheduler address (:func:`_check_scheduler_address`), checked here, before any work starts.
    """
    if scheduler is None:
        scheduler = _OPTIONS["scheduler"]
    if scheduler is None:
        scheduler = os.environ.get(ENV_SCHEDULER) or None
    if isinstance(scheduler, str):
        scheduler = scheduler.strip()
        if scheduler.lower() in ("", "local", "none"):
            return None
        return _check_scheduler_address(scheduler)
    return scheduler


# --------------------------------------------------------------------------------------------
# seeds


def child_seed(seed: SeedLike, *key: int) -> int:
    """A non-negative 63-bit int seed for the task at ``key`` under the root ``seed``.

    ``child_seed(root, k)`` is drawn from ``SeedSequence(root).spawn(n)[k]`` (for any ``n > k``)
    and ``child_seed(root, i, j)`` from ``...spawn(n)[i].spawn(m)[j]``, so a task's seed depends
    only on the root and its own key, never on how many tasks there are or who runs them.
    """
    root = seed_sequence(seed)
    if any(int(k) < 0 for k in key):
        raise ValueError(f"seed key must be non-negative integers, got {key}")
    child = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + tuple(int(k) for k in key),
                                   pool_size=root.pool_size)
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def spawn_task_seeds(seed: SeedLike, n: int) -> list[int]:
    """``n`` int seeds, one per task: ``[child_seed(seed, k) for k in range(n)]``."""
    root = seed_sequence(seed)
    return [child_seed(root, k) for k in range(int(n))]


# --------------------------------------------------------------------------------------------
# running tasks


@dataclasses.dataclass
class TaskOutcome:
    """What one task gave back.

    Attributes
    ----------
    index : int
        Position of the task in the input sequence.
    ok : bool
        False when the task raised.
    value : object
        The return value (None when it failed).
    error : str or None
        ``"ExceptionType: message"`` (first line) when it failed.
    traceback : str or None
        The worker's traceback when it failed.
    elapsed_s : float
        Wall time of the task in its worker.
    cpu_s : float
        CPU time of the worker process during the task (``elapsed_s`` much larger than ``cpu_s``
        means the task waited: other processes, I/O).
    worker : str
        ``host:pid`` of the process that ran it.
    """

    index: int
    ok: bool
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    elapsed_s: float = 0.0
    worker: str = ""
    cpu_s: float = 0.0


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > 300:
        first = first[:297] + "..."
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


_THREADS_CAPPED_AT: int | None = None


def _here() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")


def _cap_threads(threads: int) -> None:
    """Limit BLAS/OpenMP, torch and numba threads in this worker process (once).

    Libraries already loaded are limited through threadpoolctl; the environment variables (unless
    the cluster's configuration set them) cover those loaded later by the tasks.
    """
    global _THREADS_CAPPED_AT
    if _THREADS_CAPPED_AT == threads:
        return
    from threadpoolctl import threadpool_limits

    for name in _THREAD_ENV:
        os.environ.setdefault(name, str(threads))
    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    numba = sys.modules.get("numba")
    if numba is not None:
        with contextlib.suppress(Exception):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _THREADS_CAPPED_AT = threads


_WATCHING_PARENT = False


def _exit_with_parent() -> None:
    """In a local worker process: exit when the process that started it dies (e.g. ``kill -9`` of a sweep),
    instead of idling as an orphan until the pool's timeout."""
    global _WATCHING_PARENT
    if _WATCHING_PARENT:
        return
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="bci_credit-parent-watch", daemon=True).start()
    _WATCHING_PARENT = True


def _call(fn: Callable, index: int, item: Any, kwargs: Mapping | None, threads: int | None,
          origin: str | None = None, local_pool: bool = False) -> TaskOutcome:
    """Run one task in a worker and catch its exception.

    In a worker process (not the caller's, ``origin`` = its ``host:pid``) the thread pools are capped at
    ``threads`` for the process; in the caller's own process (``n_jobs=1``, a threaded in-process
    Dask cluster) nothing global is changed.
    """
    worker = _here()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if origin is not None and worker != origin:
            if threads:
                _cap_threads(int(threads))
            if local_pool:
                _exit_with_parent()
        value = fn(item, **(kwargs or {}))
    except Exception as err:  # a batch never crashes on one task
        return TaskOutcome(index, False, None, _one_line(err), traceback.format_exc(),
                           time.perf_counter() - t0, worker, time.process_time() - c0)
    return TaskOutcome(index, True, value, None, None, time.perf_counter() - t0, worker, time.process_time() - c0)


def imap_unordered(fn: Callable, items: Iterable, *, n_jobs: int | None = None, scheduler: Any = None,
                   kwargs: Mapping | None = None, threads_per_worker: int | None = None) -> Iterator[TaskOutcome]:
    """Run ``fn(item, **kwargs)`` for every item; yield a :class:`TaskOutcome` as each one finishes.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled to the workers; closures work with the local
        backend through cloudpickle).
    items : iterable
        One task per item (the sequence is materialised).
    n_jobs : int, optional
        Local worker processes (see :func:`effective_n_jobs`); ignored when a Dask scheduler is used.
    scheduler : str or dask.distributed.Client, optional
        Dask scheduler address or client (see :func:`resolve_scheduler`); None = local.
    kwargs : mapping, optional
        Extra keyword arguments passed to every call (sent with each task: keep them small).
    threads_per_worker : int, optional
        BLAS/OpenMP threads per task (default: ``cpu_count // n_jobs``; 1 on a Dask cluster).

    Yields
    ------
    TaskOutcome
        In completion order (``outcome.index`` says which task). Exceptions inside ``fn`` are caught;
        stopping the iteration (or Ctrl-C) cancels the tasks not yet started.
    """
    items = list(items)
    if threads_per_worker is None:
        threads_per_worker = _OPTIONS["threads_per_worker"]
    sched = resolve_scheduler(scheduler)
    if sched is not None:
        yield from _imap_dask(fn, items, sched, kwargs, threads_per_worker or 1)
        return
    n = min(effective_n_jobs(n_jobs), max(1, len(items)))
    if n == 1:
        for i, item in enumerate(items):
            yield _call(fn, i, item, kwargs, None)
        return
    threads = threads_per_worker or max(1, _cpu_count() // n)
    from joblib import Parallel, delayed, parallel_config

    log.info("running %d tasks on %d local worker processes (%d BLAS thread(s) each)", len(items), n, threads)
    with parallel_config(backend="loky", n_jobs=n, inner_max_num_threads=threads):
        runner = Parallel(return_as="generator_unordered")  # the backend is fixed here
    origin = _here()
    gen = runner(delayed(_call)(fn, i, item, kwargs, threads, origin, True) for i, item in enumerate(items))
    try:
        yield from gen
    finally:
        gen.close()  # cancels the tasks not yet started when the caller stops early


#: Address schemes of Dask's comm backends (``tcp://host:port`` is the usual one; ``inproc://`` is a
#: threaded cluster inside this very process, e.g. ``LocalCluster(processes=False).scheduler_address``).
_DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")


def _bad_address(scheduler: str, why: str) -> ValueError:
    return ValueError(
        f"scheduler {scheduler!r} is not a Dask scheduler address ({why}); give the address the scheduler "
        f"prints, e.g. tcp://10.0.0.5:8786 ('dask scheduler' + 'dask worker ADDRESS' start one), or 'local' "
        f"(or no --scheduler / ${ENV_SCHEDULER}) to run on this machine with --n-jobs"
    )


def _check_scheduler_address(scheduler: str) -> str:
    """Check the form of a Dask scheduler address before connecting; return it stripped.

    Accepted: ``SCHEME://HOST:PORT`` with SCHEME one of tcp, tls, ws, wss, ucx; ``HOST:PORT`` (tcp, as
    Dask reads it); ``inproc://...`` of a cluster running in this process. Anything else (``"dask"``,
    ``"tcp://host"`` without a port, ``"inproc://"``) raises a ``ValueError`` saying what to give.
    """
    text = scheduler.strip()
    scheme, sep, loc = text.partition("://")
    if not sep:
        scheme, loc = "tcp", text
    scheme = scheme.lower()
    if scheme not in _DASK_SCHEMES:
        raise _bad_address(scheduler, f"unknown scheme {scheme + '://'!r}; Dask knows "
                                      + ", ".join(f"{s}://" for s in _DASK_SCHEMES))
    if scheme == "inproc":
        parts = loc.split("/")
        if not loc or len(parts) != 3 or not all(parts):
            raise _bad_address(scheduler, "an inproc address looks like inproc://IP/PID/N, as given by "
                                          "LocalCluster(processes=False).scheduler_address")
        if parts[1].isdigit() and int(parts[1]) != os.getpid():
            raise _bad_address(scheduler, f"an inproc:// cluster lives in process {parts[1]}, not in this one "
                                          f"({os.getpid()}); connect to a tcp:// address from another process")
        return text
    host, colon, port = loc.rpartition(":")
    if not colon or not host.strip("[]"):
        raise _bad_address(scheduler, "missing port number" if not colon else "missing host")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _bad_address(scheduler, f"port {port!r} is not a number from 1 to 65535")
    return text


def _dask_client(scheduler: Any):
    """``(client, owned)`` for a scheduler address or an existing Client.

    The address form is checked before connecting (:func:`_check_scheduler_address`); the connection
    attempt lasts at most :data:`DASK_CONNECT_TIMEOUT_S`, and a Client left half-made by a failed
    attempt is closed here (else its ``__del__`` prints a traceback at exit, after a 30 s wait).
    """
    if isinstance(scheduler, str):
        scheduler = _check_scheduler_address(scheduler)
    try:
        from dask.distributed import Client
    except ImportError:  # depends on the environment
        raise ImportError(
            "running on a Dask scheduler needs the 'distributed' extra: pip install 'bci_credit[distributed]' "
            f"(or unset ${ENV_SCHEDULER} / drop --scheduler to run locally)"
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string or a dask.distributed.Client, got {type(scheduler).__name__}")
    client = Client.__new__(Client)  # kept, so that a half-made client can be closed below
    try:
        client.__init__(scheduler, timeout=f"{DASK_CONNECT_TIMEOUT_S}s", set_as_default=False)
    except Exception as err:
        with contextlib.suppress(Exception):
            client.close(timeout=2)
        if isinstance(err, (OSError, TimeoutError)):
            why = _one_line(err)
        else:  # e.g. a MemoryError from reading garbage: something else listens there
            why = f"{_one_line(err)}; is a Dask scheduler listening at that address?"
        raise ConnectionError(
            f"cannot connect to the Dask scheduler at {scheduler!r} within {DASK_CONNECT_TIMEOUT_S:g} s ({why}); "
            f"start one (e.g. 'dask scheduler' + 'dask worker ADDRESS'), or drop --scheduler / ${ENV_SCHEDULER} "
            "to run locally"
        ) from None
    return client, True


def _imap_dask(fn, items, scheduler, kwargs, threads) -> Iterator[TaskOutcome]:
    client, owned = _dask_client(scheduler)  # first: its ImportError names the extra to install
    from dask.distributed import as_completed

    futures = []
    try:
        log.info("running %d tasks on the Dask cluster at %s", len(items), client.scheduler.address)
        origin = _here()
        futures = [client.submit(_call, fn, i, item, kwargs, threads, origin, pure=False) for i, item in enumerate(items)]
        for fut in as_completed(futures, loop=client.loop):
            outcome = fut.result()
            fut.release()
            yield outcome
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        if owned:
            client.close()


def progress_bar(total: int, *, enabled: bool, desc: str | None = None, initial: int = 0, unit: str = "task"):
    """A tqdm bar on stderr (a no-op object when ``enabled`` is False).

    An enabled bar is ``tqdm.auto``'s (a widget in notebooks); a disabled one is plain tqdm, so that
    a run without a bar never touches the notebook machinery or its warnings.
    """
    if enabled:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


def pmap(fn: Callable, items: Iterable, *, n_jobs: int | None = None, scheduler: Any = None,
         seed: SeedLike = None, kwargs: Mapping | None = None, on_error: str = "raise", progress: bool = False,
         desc: str | None = None, threads_per_worker: int | None = None) -> list:
    """``[fn(item, **kwargs) for item in items]`` run in parallel, results in input order.

    Parameters
    ----------
    fn, items, n_jobs, scheduler, kwargs, threads_per_worker
        As in :func:`imap_unordered`.
    seed : int or SeedSequence, optional
        Root seed. When given, task ``k`` is called with ``seed=child_seed(seed, k)``, so the results
        are the same for every ``n_jobs`` and backend.
    on_error : {"raise", "outcome"}
        ``"raise"``: raise ``RuntimeError`` naming the first failed task (after all have run);
        ``"outcome"``: return the :class:`TaskOutcome` of every task instead of bare values.
    progress : bool
        Show a progress bar.
    """
    if on_error not in ("raise", "outcome"):
        raise ValueError(f"on_error must be 'raise' or 'outcome', got {on_error!r}")
    items = list(items)
    if seed is not None:
        seeds = spawn_task_seeds(seed, len(items))
        items = list(zip(items, seeds))
        call, call_kwargs = _with_seed, {"fn": fn, "kwargs": dict(kwargs or {})}
    else:
        call, call_kwargs = fn, kwargs
    outcomes: list[TaskOutcome | None] = [None] * len(items)
    with progress_bar(len(items), enabled=progress, desc=desc) as bar:
        for out in imap_unordered(call, items, n_jobs=n_jobs, scheduler=scheduler, kwargs=call_kwargs,
                                  threads_per_worker=threads_per_worker):
            outcomes[out.index] = out
            bar.update(1)
    if on_error == "outcome":
        return outcomes
    failed = [o for o in outcomes if not o.ok]
    if failed:
        first = failed[0]
        raise RuntimeError(f"{len(failed)} of {len(items)} task(s) failed; task {first.index}: {first.error}\n"
                           f"{first.traceback or ''}")
    return [o.value for o in outcomes]


def _with_seed(item_seed, fn, kwargs):
    item, seed = item_seed
    return fn(item, seed=seed, **kwargs)


# --------------------------------------------------------------------------------------------
# many files

_REMOTE_RE = re.compile(r"^(https?|s3|dandi)://", re.IGNORECASE)
_LIST_SUFFIXES = (".txt", ".lst", ".list")


def is_remote(path: Any) -> bool:
    """True for ``http(s)://``, ``s3://`` and ``dandi://`` addresses."""
    return isinstance(path, str) and bool(_REMOTE_RE.match(path.strip()))


def _visible(p: Path) -> bool:
    # skip hidden files (e.g. ".name.nwb.tmp" files of an atomic write in progress)
    return p.is_file() and not p.name.startswith(".")


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike], *, pattern: str = "*.nwb",
                  recursive: bool = True) -> list[str]:
    """Turn ``DIR_OR_GLOB_OR_LIST`` into a list of files (and URLs), in a stable order.

    Each input may be:

    * a folder: its files matching ``pattern`` (below it too when ``recursive``), sorted; hidden
      files (``.name``) are skipped;
    * a glob (``data/**/*.nwb``, ``sub-*/*.nwb``): its matching files, sorted;
    * a list file (``.txt``, ``.lst``, ``.list``): one path or URL per line (blank lines and
      ``#`` comments ignored; relative paths are relative to the list file's folder);
    * a file: itself;
    * a URL (``http(s)://``, ``s3://``, ``dandi://``): kept as it is (see :mod:`bci_credit.io.remote`).

    A list or tuple of those is expanded item by item; duplicates are dropped (first kept).

    Raises
    ------
    FileNotFoundError
        An input that names nothing, a glob matching no file, or a folder with no matching file.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: list[str] = []
    for item in inputs:
        out.extend(_expand_one(item, pattern, recursive, allow_list=True))
    seen: set[str] = set()
    unique = []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def _expand_one(item, pattern: str, recursive: bool, allow_list: bool) -> list[str]:
    text = os.fspath(item).strip() if isinstance(item, (str, os.PathLike)) else None
    if text is None:
        raise TypeError(f"inputs must be paths, globs or URLs, got {type(item).__name__}")
    if not text:
        raise FileNotFoundError("an empty string is not a file, folder or glob")
    if is_remote(text):
        return [text]
    path = Path(text).expanduser()
    if path.is_dir():
        found = path.rglob(pattern) if recursive else path.glob(pattern)
        files = sorted(str(p) for p in found if _visible(p))
        if not files:
            where = "in or below" if recursive else "in"
            raise FileNotFoundError(f"{path}: no files matching {pattern!r} {where} this folder")
        return files
    if path.is_file():
        if allow_list and path.suffix.lower() in _LIST_SUFFIXES:
            return _read_list_file(path, pattern, recursive)
        return [str(path)]
    if _glob.has_magic(text):
        files = sorted(p for p in _glob.glob(os.path.expanduser(text), recursive=True) if _visible(Path(p)))
        if not files:
            raise FileNotFoundError(f"{text}: the pattern matches no file")
        return files
    raise FileNotFoundError(f"{text}: no such file or folder")


def _read_list_file(path: Path, pattern: str, recursive: bool) -> list[str]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip() if not is_remote(line.strip()) else line.strip()
        if not line:
            continue
        if not is_remote(line) and not os.path.isabs(os.path.expanduser(line)):
            line = str(path.parent / line)
        try:
            out.extend(_expand_one(line, pattern, recursive, allow_list=False))
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{path}, line {n}: {err}") from None
    if not out:
        raise FileNotFoundError(f"{path}: the list names no file")
    return out


@dataclasses.dataclass
class FileMapResult:
    """What :func:`map_files` gives back.

    Attributes
    ----------
    table : pandas.DataFrame
        The per-file results stacked, with a first column ``file`` (input order).
    status : pandas.DataFrame
        One row per input: ``file``, ``status`` (``"ok"`` or ``"skipped"``), ``reason`` (empty when
        ok), ``n_rows``, ``elapsed_s``.
    values : dict
        ``file -> value`` returned by the function (successful files only).
    """

    table: pd.DataFrame
    status: pd.DataFrame
    values: dict

    @property
    def n_ok(self) -> int:
        return int((self.status["status"] == "ok").sum())

    @property
    def skipped(self) -> pd.DataFrame:
        """The rows of :attr:`status` for files that were skipped."""
        return self.status[self.status["status"] != "ok"]


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bytes, bool, int, float, np.generic))


def to_frame(value: Any) -> pd.DataFrame:
    """A table from what a per-file function returned.

    DataFrame -> itself (a named or non-default index becomes columns); dict or Series -> one row of
    its scalar entries (lists/dicts are left out: return a DataFrame to keep them); list of dicts ->
    one row each; an object with ``to_frame()`` (Results) -> that; None -> no rows.
    """
    if value is None:
        return pd.DataFrame()
    if isinstance(value, pd.DataFrame):
        df = value
    elif hasattr(value, "to_frame") and callable(value.to_frame) and not isinstance(value, pd.Series):
        df = value.to_frame()
    elif isinstance(value, pd.Series):
        df = pd.DataFrame([{k: v for k, v in value.items() if _is_scalar(v)}])
    elif isinstance(value, Mapping):
        df = pd.DataFrame([{k: v for k, v in value.items() if _is_scalar(v)}])
    elif isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) for v in value):
        df = pd.DataFrame.from_records(list(value))
    else:
        raise TypeError(f"cannot make a table from a {type(value).__name__}; return a DataFrame or a dict")
    if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
        df = df.reset_index()
    return df.reset_index(drop=True)


def _file_task(path: str, fn: Callable, opener: Callable | None, kwargs: Mapping) -> tuple[Any, pd.DataFrame]:
    if opener is not None:
        with opener(path) as source:
            value = fn(source, **kwargs)
    else:
        value = fn(path, **kwargs)
    return value, to_frame(value)


def map_files(fn: Callable, paths: Iterable[str | os.PathLike], n_jobs: int | None = None, *,
              scheduler: Any = None, opener: Callable | None = None, kwargs: Mapping | None = None,
              progress: bool = False, keep_values: bool = True, desc: str = "files",
              threads_per_worker: int | None = None) -> FileMapResult:
    """Run ``fn(file, **kwargs)`` on every file, one task per file; never stop on a broken file.

    Parameters
    ----------
    fn : callable
        Per-file function returning a DataFrame, a dict (one row of its scalar entries), a Results
        object with ``to_frame()``, or None. E.g. :func:`bci_credit.io.nwb.inspect`.
    paths : iterable of paths or URLs
        The files (see :func:`expand_inputs` to build it from a folder, glob or list).
    n_jobs, scheduler, threads_per_worker
        As in :func:`imap_unordered`.
    opener : callable, optional
        A context-manager factory applied in the worker: ``with opener(path) as src: fn(src, ...)``.
        Pass :func:`bci_credit.io.remote.open_nwb_source` to stream URLs (local paths pass through).
    kwargs : mapping, optional
        Extra keyword arguments for ``fn``.
    progress : bool
        Show a progress bar.
    keep_values : bool, default True
        Keep each file's raw return value in :attr:`FileMapResult.values`.

    Returns
    -------
    FileMapResult
        ``table`` (with a ``file`` column), ``status`` (``ok`` / ``skipped`` + ``reason`` per file)
        and ``values``.
    """
    files = [os.fspath(p) for p in paths]
    frames: list[pd.DataFrame | None] = [None] * len(files)
    values: dict[str, Any] = {}
    status_rows: list[dict | None] = [None] * len(files)
    with progress_bar(len(files), enabled=progress, desc=desc, unit="file") as bar:
        for out in imap_unordered(_file_task, files, n_jobs=n_jobs, scheduler=scheduler,
                                  kwargs={"fn": fn, "opener": opener, "kwargs": dict(kwargs or {})},
                                  threads_per_worker=threads_per_worker):
            name = files[out.index]
            if out.ok:
                value, df = out.value
                frames[out.index] = df
                if keep_values:
                    values[name] = value
                status_rows[out.index] = {"file": name, "status": "ok", "reason": "", "n_rows": len(df),
                                          "elapsed_s": out.elapsed_s}
            else:
                log.warning("skipped %s: %s", name, out.error)
                status_rows[out.index] = {"file": name, "status": "skipped", "reason": out.error, "n_rows": 0,
                                          "elapsed_s": out.elapsed_s}
            bar.update(1)
    parts = []
    for name, df in zip(files, frames):
        if df is not None and len(df.columns):
            df = df.drop(columns=["file"], errors="ignore")
            df.insert(0, "file", name)
            parts.append(df)
    table = pd.concat(parts, ignore_index=True, sort=False) if parts else pd.DataFrame({"file": pd.Series(dtype=str)})
    status = pd.DataFrame(status_rows, columns=["file", "status", "reason", "n_rows", "elapsed_s"])
    ordered = {name: values[name] for name in files if name in values}
    return FileMapResult(table=table, status=status, values=ordered)
