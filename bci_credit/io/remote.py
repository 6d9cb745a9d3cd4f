"""Stream NWB files from DANDI or any web server instead of downloading them.

:func:`open_nwb_source` turns what a user typed into what :func:`bci_credit.io.nwb.read` and
:func:`bci_credit.io.nwb.inspect` accept::

    from bci_credit.io import nwb
    from bci_credit.io.remote import open_nwb_source

    with open_nwb_source("dandi://000404/draft/sub-Jenkins/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb") as src:
        summary = nwb.inspect(src)

Accepted sources:

* a local path (or an open file object / ``h5py.File``): passed through unchanged;
* ``http://`` and ``https://`` URLs, e.g. a DANDI asset download URL
  ``https://api.dandiarchive.org/api/assets/<asset id>/download/``;
* ``dandi://DANDISET/VERSION/PATH`` (``VERSION`` is a published version or ``draft``), and
  dandi-cli's form ``dandi://DANDI/DANDISET[@VERSION]/PATH``: resolved through the DANDI REST API
  (``$BCI_CREDIT_DANDI_API`` overrides the API root, default ``https://api.dandiarchive.org/api``);
* ``s3://BUCKET/KEY`` of a public bucket (read over https).

Remote files are read with HTTP range requests, only the bytes HDF5 asks for, through
`remfile <https://github.com/flatironinstitute/remfile>`_ (the default; optimised for HDF5) or
`fsspec <https://filesystem-spec.readthedocs.io>`_. With ``cache_dir`` (or
``$BCI_CREDIT_CACHE_DIR``) the fetched blocks are kept on disk, so a second look at the same file
costs no network. Both libraries are the optional ``remote`` extra
(``pip install 'bci_credit[remote]'``), imported only when a URL is opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import urllib.parse
from typing import Any, Iterator

__all__ = ["DANDI_API", "ENV_DANDI_API", "ENV_CACHE_DIR", "DandiPath", "is_url", "parse_dandi_url",
           "resolve_dandi", "resolve_url", "open_nwb_source"]

#: Root of the DANDI REST API.
DANDI_API = "https://api.dandiarchive.org/api"
#: Environment variable overriding :data:`DANDI_API` (e.g. a staging server).
ENV_DANDI_API = "BCI_CREDIT_DANDI_API"
#: Environment variable naming a default block-cache folder.
ENV_CACHE_DIR = "BCI_CREDIT_CACHE_DIR"

_URL_RE = re.compile(r"^(https?|s3|dandi)://", re.IGNORECASE)
_INSTANCES = {"dandi", "dandi-archive", "dandiarchive"}
_EXTRA_HINT = "pip install 'bci_credit[remote]'"


def is_url(source: Any) -> bool:
    """True for ``http(s)://``, ``s3://`` and ``dandi://`` strings.

    Parameters
    ----------
    source : object
        Anything (a non-string is not a URL).

    Returns
    -------
    bool
        Whether ``source`` is a URL.
    """
    return isinstance(source, str) and bool(_URL_RE.match(source.strip()))


@dataclasses.dataclass(frozen=True)
class DandiPath:
    """A file inside a DANDI dandiset version.

    Parameters
    ----------
    dandiset : str
        Six-digit dandiset id.
    version : str
        Version (``"draft"`` or a published version).
    path : str
        File path inside the dandiset.
    """

    dandiset: str
    version: str
    path: str


def parse_dandi_url(url: str) -> DandiPath:
    """Split ``dandi://DANDISET/VERSION/PATH`` or ``dandi://DANDI/DANDISET[@VERSION]/PATH``.

    Parameters
    ----------
    url : str
        The identifier (the version defaults to ``draft`` in the second form).

    Returns
    -------
    DandiPath
        Its parts; a ``ValueError`` says what is missing or malformed.
    """
    text = url.strip()
    if not text.lower().startswith("dandi://"):
        raise ValueError(f"{url!r} is not a dandi:// identifier")
    parts = [p for p in text[len("dandi://"):].split("/") if p]
    hint = "write dandi://DANDISET/VERSION/PATH, e.g. dandi://000404/draft/sub-X/sub-X_ses-Y.nwb"
    if parts and parts[0].lower() in _INSTANCES:
        parts = parts[1:]
        if not parts:
            raise ValueError(f"{url!r}: no dandiset; {hint}")
        dandiset, _, version = parts[0].partition("@")
        rest = parts[1:]
        version = version or "draft"
    else:
        if "@" in (parts[0] if parts else ""):
            dandiset, _, version = parts[0].partition("@")
            rest = parts[1:]
        else:
            if len(parts) < 3:
                raise ValueError(f"{url!r}: need a dandiset, a version and a file path; {hint}")
            dandiset, version, rest = parts[0], parts[1], parts[2:]
    if not re.fullmatch(r"\d{6}", dandiset):
        raise ValueError(f"{url!r}: {dandiset!r} is not a 6-digit dandiset id; {hint}")
    if not rest:
        raise ValueError(f"{url!r}: no file path inside the dandiset; {hint}")
    return DandiPath(dandiset, version, "/".join(rest))


def _requests():
    try:
        import requests
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading remote NWB files needs the 'remote' extra: {_EXTRA_HINT}") from None
    return requests


def resolve_dandi(url: str, *, api_url: str | None = None, timeout_s: float = 30.0) -> str:
    """The download URL of a ``dandi://`` identifier.

    Parameters
    ----------
    url : str
        A ``dandi://`` identifier (see :func:`parse_dandi_url`).
    api_url : str, optional
        DANDI API root (default: :data:`ENV_DANDI_API` if set, else :data:`DANDI_API`).
    timeout_s : float
        Timeout of the API request.

    Returns
    -------
    str
        ``{api}/assets/{asset_id}/download/``.
    """
    ref = parse_dandi_url(url)
    api = (api_url or os.environ.get(ENV_DANDI_API) or DANDI_API).rstrip("/")
    requests = _requests()
    query = f"{api}/dandisets/{ref.dandiset}/versions/{ref.version}/assets/"
    try:
        resp = requests.get(query, params={"path": ref.path, "page_size": 100}, timeout=timeout_s)
    except requests.RequestException as err:
        raise ConnectionError(f"{url}: cannot reach the DANDI API at {api} ({err})") from None
    if resp.status_code == 404:
        raise FileNotFoundError(f"{url}: dandiset {ref.dandiset} version {ref.version!r} not found on {api}")
    if resp.status_code != 200:
        raise ConnectionError(f"{url}: the DANDI API answered {resp.status_code} {resp.reason}")
    try:
        results = resp.json().get("results", [])
    except ValueError:
        raise ConnectionError(f"{url}: the DANDI API at {api} did not answer JSON") from None
    exact = [a for a in results if a.get("path") == ref.path]
    if not exact:
        near = ", ".join(a.get("path", "?") for a in results[:5])
        more = f"; paths starting like it: {near}" if near else ""
        raise FileNotFoundError(f"{url}: no asset {ref.path!r} in dandiset {ref.dandiset}/{ref.version}{more}")
    return f"{api}/assets/{exact[0]['asset_id']}/download/"


def resolve_url(source: str, *, api_url: str | None = None, timeout_s: float = 30.0) -> str:
    """An http(s) URL for ``source`` (``dandi://`` resolved, public ``s3://`` turned into https).

    Parameters
    ----------
    source : str
        An ``http(s)://``, ``s3://BUCKET/KEY`` or ``dandi://`` address.
    api_url, timeout_s
        As in :func:`resolve_dandi`.

    Returns
    -------
    str
        The URL.
    """
    text = source.strip()
    low = text.lower()
    if low.startswith("dandi://"):
        return resolve_dandi(text, api_url=api_url, timeout_s=timeout_s)
    if low.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        if not bucket or not key:
            raise ValueError(f"{source!r}: write s3://BUCKET/KEY")
        return f"https://{bucket}.s3.amazonaws.com/{urllib.parse.quote(key)}"
    if low.startswith(("http://", "https://")):
        return text
    raise ValueError(f"{source!r} is not a URL (http(s)://, s3:// or dandi://)")


def _probe(url: str, timeout_s: float) -> str:
    """Check that ``url`` answers range requests; return the URL to stream from (redirects followed
    unless they lead to a signed, expiring address). One clear error otherwise."""
    requests = _requests()
    try:
        resp = requests.get(url, headers={"Range": "bytes=0-0"}, stream=True, timeout=timeout_s)
    except requests.RequestException as err:
        raise ConnectionError(f"{url}: cannot connect ({type(err).__name__}: {err})") from None
    try:
        if resp.status_code in (401, 403, 404, 410):
            raise FileNotFoundError(f"{url}: the server answered {resp.status_code} {resp.reason} (no such file, or "
                                    "not public)")
        if resp.status_code == 200:
            raise OSError(f"{url}: the server ignores HTTP range requests, so the file cannot be streamed; download "
                          "it and pass the local path")
        if resp.status_code != 206:
            raise ConnectionError(f"{url}: the server answered {resp.status_code} {resp.reason}")
        final = resp.url
    finally:
        resp.close()
    signed = "signature=" in final.lower() or "x-amz-" in final.lower()
    return url if signed else final


class _Named:
    """Give a file object the URL as ``name`` (the NWB reader uses it as the file's label)."""

    def __init__(self, fh, name: str):
        self._fh = fh
        self.name = name

    def read(self, size=-1):
        return self._fh.read(size)

    def readinto(self, buffer):
        data = self._fh.read(len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        return n

    def seek(self, offset, whence=0):
        return self._fh.seek(offset, whence)

    def tell(self):
        return self._fh.tell()

    def seekable(self):
        return True

    def readable(self):
        return True

    def close(self):
        self._fh.close()


@contextlib.contextmanager
def open_nwb_source(path_or_url: Any, *, method: str = "auto", cache_dir: str | os.PathLike | None = None,
                    timeout_s: float = 30.0, api_url: str | None = None) -> Iterator[Any]:
    """Yield something :func:`bci_credit.io.nwb.read` / :func:`~bci_credit.io.nwb.inspect` accept.

    Parameters
    ----------
    path_or_url : path, URL, file object or h5py.File
        A local path (yielded unchanged), an ``http(s)://``, ``s3://`` or ``dandi://`` address
        (streamed), or an open object (yielded unchanged and left open).
    method : {"auto", "remfile", "fsspec"}
        How URLs are read: ``auto`` = remfile when installed, else fsspec.
    cache_dir : path, optional
        Keep fetched blocks in this folder (default ``$BCI_CREDIT_CACHE_DIR``; none when unset).
    timeout_s : float
        Network timeout of the first requests.
    api_url : str, optional
        DANDI API root for ``dandi://`` identifiers.

    Yields
    ------
    path or binary file object
        For a URL, a read-only file object whose ``name`` is the original address; closed on exit.

    Raises
    ------
    FileNotFoundError
        The URL or DANDI asset does not exist (or is not public).
    ConnectionError
        The server cannot be reached.
    OSError
        The server does not support range requests.
    ImportError
        The ``remote`` extra is not installed.
    """
    if not isinstance(path_or_url, (str, os.PathLike)) or not is_url(os.fspath(path_or_url)):
        yield path_or_url
        return
    if method not in ("auto", "remfile", "fsspec"):
        raise ValueError(f"method must be 'auto', 'remfile' or 'fsspec', got {method!r}")
    label = str(path_or_url).strip()
    url = _probe(resolve_url(label, api_url=api_url, timeout_s=timeout_s), timeout_s)
    cache_dir = cache_dir if cache_dir is not None else (os.environ.get(ENV_CACHE_DIR) or None)
    if method == "auto":
        import importlib.util

        method = "remfile" if importlib.util.find_spec("remfile") is not None else "fsspec"
    if method == "remfile":
        try:
            import remfile
        except ImportError:
            raise ImportError(f"method='remfile' needs remfile: {_EXTRA_HINT}") from None
        disk_cache = None
        if cache_dir is not None:
            os.makedirs(cache_dir, exist_ok=True)
            disk_cache = remfile.DiskCache(os.fspath(cache_dir))
        fh = remfile.File(url, disk_cache=disk_cache)
    else:
        try:
            import fsspec
        except ImportError:
            raise ImportError(f"method='fsspec' needs fsspec and aiohttp: {_EXTRA_HINT}") from None
        fs = fsspec.filesystem("http")
        if cache_dir is not None:
            from fsspec.implementations.cached import CachingFileSystem

            os.makedirs(cache_dir, exist_ok=True)
            fs = CachingFileSystem(fs=fs, cache_storage=os.fspath(cache_dir))
        fh = fs.open(url, "rb")
    wrapped = _Named(fh, label)
    try:
        yield wrapped
    finally:
        wrapped.close()
