"""bci_credit.io.remote: stream NWB over HTTP (a Range-capable server on loopback, no network)."""

import functools
import http.server
import json
import os
import re
import sys
import threading

import pandas as pd
import pytest

pytest.importorskip("requests")

from bci_credit.io import nwb  # noqa: E402
from bci_credit.io.remote import open_nwb_source, parse_dandi_url, resolve_url  # noqa: E402

ASSET_ID = "0123abcd-0000-4000-8000-000000000001"
ASSET_PATH = "sub-sim/sub-sim_ses-1.nwb"


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``), plus a fake DANDI API:
    ``/api/dandisets/000123/versions/draft/assets/?path=...`` and ``/api/assets/<id>/download/`` (302 to the file)."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/api/"):
            return self._api()
        return super().do_GET()

    def _api(self):
        if self.path.startswith(f"/api/assets/{ASSET_ID}/download/"):
            self.send_response(302)
            self.send_header("Location", "/session.nwb")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        m = re.match(r"^/api/dandisets/(\d+)/versions/([^/]+)/assets/\?(.*)$", self.path)
        if not m or m.group(1) != "000123":
            self.send_error(404, "Not Found")
            return
        from urllib.parse import parse_qs

        path = parse_qs(m.group(3)).get("path", [""])[0]
        results = [{"asset_id": ASSET_ID, "path": ASSET_PATH}] if ASSET_PATH.startswith(path) else []
        body = json.dumps({"count": len(results), "results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_head(self):
        path = self.translate_path(self.path.split("?", 1)[0])
        if not os.path.isfile(path):
            self.send_error(404, "File not found")
            return None
        size = os.path.getsize(path)
        header = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip()) if header else None
        start, end = 0, size - 1
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start = max(0, size - int(m.group(2)))
            if start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        fh = open(path, "rb")
        fh.seek(start)
        self._remaining = end - start + 1
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(self._remaining))
        self.end_headers()
        return fh

    def copyfile(self, source, outputfile):
        left = self._remaining
        while left > 0:
            chunk = source.read(min(1 << 16, left))
            if not chunk:
                break
            outputfile.write(chunk)
            left -= len(chunk)


class QuietServer(http.server.ThreadingHTTPServer):
    """A server that does not print a traceback when a client closes its connection early."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # a reader that needed fewer bytes than it asked for hung up: not an error of the test
        super().handle_error(request, client_address)


def _serve(directory, handler):
    server = QuietServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from bci_credit import experiment
    from bci_credit.config import load_preset

    folder = tmp_path_factory.mktemp("www")
    rec = experiment.run(load_preset("paper_2neuron_estimation").with_overrides(**{"run.duration_s": 2.0}))
    nwb.write(rec, folder / "session.nwb")
    server, base = _serve(folder, RangeHandler)
    yield folder, base, rec
    server.shutdown()
    server.server_close()


def _without_label(summary):
    return {k: v for k, v in summary.items() if k != "file"}


@pytest.mark.parametrize("method", ["remfile", "fsspec"])
def test_inspect_over_http_equals_local(served, method):
    pytest.importorskip(method)
    folder, base, _ = served
    local = nwb.inspect(folder / "session.nwb")
    url = f"{base}/session.nwb"
    with open_nwb_source(url, method=method) as src:
        remote = nwb.inspect(src)
    assert remote["file"] == url
    assert _without_label(remote) == _without_label(local)
    assert remote["n_spikes"] > 0


def test_read_over_http_with_block_cache(served, tmp_path):
    pytest.importorskip("remfile")
    folder, base, rec = served
    with open_nwb_source(f"{base}/session.nwb", cache_dir=tmp_path / "cache") as src:
        back = nwb.read(src)
    assert back.equals(rec), back.differences(rec)
    assert any((tmp_path / "cache").rglob("*")), "fetched blocks are kept in the cache folder"


def test_dandi_identifier_through_the_api(served, monkeypatch):
    pytest.importorskip("remfile")
    folder, base, _ = served
    monkeypatch.setenv("BCI_CREDIT_DANDI_API", f"{base}/api")
    ident = f"dandi://000123/draft/{ASSET_PATH}"
    assert resolve_url(ident) == f"{base}/api/assets/{ASSET_ID}/download/"
    with open_nwb_source(ident) as src:
        summary = nwb.inspect(src)
    assert _without_label(summary) == _without_label(nwb.inspect(folder / "session.nwb"))
    with pytest.raises(FileNotFoundError, match="no asset 'sub-sim/other.nwb'"):
        resolve_url("dandi://000123/draft/sub-sim/other.nwb")
    with pytest.raises(FileNotFoundError, match="dandiset 000999 version 'draft' not found"):
        resolve_url("dandi://000999/draft/x.nwb")


def test_clear_errors_for_missing_file_and_no_range_support(served, tmp_path):
    folder, base, _ = served
    with pytest.raises(FileNotFoundError, match="404"):
        with open_nwb_source(f"{base}/nope.nwb"):
            pass
    plain, plain_base = _serve(folder, http.server.SimpleHTTPRequestHandler)  # ignores Range headers
    try:
        with pytest.raises(OSError, match="ignores HTTP range requests"):
            with open_nwb_source(f"{plain_base}/session.nwb"):
                pass
    finally:
        plain.shutdown()
        plain.server_close()


def test_local_sources_pass_through(tmp_path):
    with open_nwb_source(tmp_path / "a.nwb") as src:
        assert src == tmp_path / "a.nwb"
    with open(__file__, "rb") as fh, open_nwb_source(fh) as src:
        assert src is fh


def test_parse_dandi_url_forms():
    a = parse_dandi_url("dandi://000404/0.230605.2024/sub-J/sub-J_ses-full.nwb")
    assert (a.dandiset, a.version, a.path) == ("000404", "0.230605.2024", "sub-J/sub-J_ses-full.nwb")
    b = parse_dandi_url("dandi://DANDI/000027@0.210831.2033/sub-RAT123/x.nwb")
    assert (b.dandiset, b.version, b.path) == ("000027", "0.210831.2033", "sub-RAT123/x.nwb")
    c = parse_dandi_url("dandi://DANDI/000027/sub-RAT123/x.nwb")
    assert (c.version, c.path) == ("draft", "sub-RAT123/x.nwb")
    with pytest.raises(ValueError, match="6-digit dandiset"):
        parse_dandi_url("dandi://abc/draft/x.nwb")
    with pytest.raises(ValueError, match="need a dandiset, a version and a file path"):
        parse_dandi_url("dandi://000404/draft")
    assert resolve_url("s3://dandiarchive/blobs/abc/def") == "https://dandiarchive.s3.amazonaws.com/blobs/abc/def"


def test_map_files_streams_urls(served):
    pytest.importorskip("remfile")
    from bci_credit.parallel import map_files

    folder, base, _ = served
    urls = [f"{base}/session.nwb", f"{base}/missing.nwb"]
    res = map_files(nwb.inspect, urls, opener=open_nwb_source)
    assert res.table["file"].tolist() == [urls[0]]
    assert res.status["status"].tolist() == ["ok", "skipped"] and "404" in res.status.loc[1, "reason"]


def test_analyze_over_http_equals_local(served, tmp_path):
    """``analyze_file`` (and ``bci-credit analyze URL``) streams a URL: same table as the local file."""
    pytest.importorskip("remfile")
    from bci_credit.analysis.causal import analyze_file
    from bci_credit.cli import main

    folder, base, _ = served
    local = analyze_file(folder / "session.nwb", density=False, naive=False)
    remote = analyze_file(f"{base}/session.nwb", density=False, naive=False)
    lt, rt = local.to_frame(), remote.to_frame()
    cols = [c for c in lt.columns if c not in ("file", "source")]
    assert len(lt) > 0
    pd.testing.assert_frame_equal(rt[cols], lt[cols])
    rc = main(["analyze", f"{base}/session.nwb", "--no-plots", "--no-density", "--out", str(tmp_path / "a")])
    assert rc == 0 and any((tmp_path / "a").rglob("*.csv"))
