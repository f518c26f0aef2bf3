"""The real download code against an HTTP server on 127.0.0.1."""

import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest

from formats import idx_bytes, random_mnist
from jaxdl.data import download
from jaxdl.data.download import download_file, fetch_dataset_files
from jaxdl.data.formats.idx import load_mnist
from jaxdl.errors import DataError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes: several read chunks
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _FixtureHandler(http.server.BaseHTTPRequestHandler):
    """Serves `files` by name; `/drop/<name>` announces the full length, sends
    half the bytes and closes the connection."""

    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        drop = self.path.startswith("/drop/")
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.files:
            self.send_error(404)
            return
        body = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if drop else body)
        if drop:
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _FixtureHandler.files = {"payload.bin": PAYLOAD}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FixtureHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _only_final(directory):
    return sorted(p.name for p in directory.iterdir())


def test_good_checksum_leaves_the_verified_file(server, tmp_path):
    dest = tmp_path / "data" / "payload.bin"
    assert download_file(server + "payload.bin", dest, sha256=PAYLOAD_SHA256, chunk_size=4096) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _only_final(dest.parent) == ["payload.bin"]  # no temporary left behind


def test_bad_checksum_leaves_nothing(server, tmp_path):
    dest = tmp_path / "payload.bin"
    with pytest.raises(DataError) as info:
        download_file(server + "payload.bin", dest, sha256="0" * 64)
    message = str(info.value)
    assert f"has SHA-256 {PAYLOAD_SHA256}, expected {'0' * 64} (102400 bytes)" in message
    assert f"nothing was written to {dest}" in message
    assert _only_final(tmp_path) == []


def test_connection_dropped_mid_file_leaves_nothing(server, tmp_path):
    dest = tmp_path / "payload.bin"
    with pytest.raises(DataError, match=r"(cut short: received 51200 of 102400 bytes|failed after)"):
        download_file(server + "drop/payload.bin", dest, sha256=PAYLOAD_SHA256, chunk_size=4096)
    assert _only_final(tmp_path) == []


def test_http_error_leaves_nothing_and_keeps_an_existing_file_untouched(server, tmp_path):
    dest = tmp_path / "payload.bin"
    with pytest.raises(DataError, match=r"download of .*missing.bin failed after 0 bytes: .*404"):
        download_file(server + "missing.bin", dest, sha256=PAYLOAD_SHA256)
    assert _only_final(tmp_path) == []


def test_load_mnist_download_true_fetches_verifies_and_loads(server, tmp_path, monkeypatch):
    arrays = random_mnist(n_train=4, n_test=2)
    files = {f"{name}.gz": gzip.compress(idx_bytes(a)) for name, a in arrays.items()}
    _FixtureHandler.files = files
    monkeypatch.setitem(download.BASE_URLS, "mnist", server)
    monkeypatch.setitem(download.SHA256, "mnist",
                        {name: hashlib.sha256(body).hexdigest() for name, body in files.items()})
    data = load_mnist(tmp_path / "mnist", download=True)
    np.testing.assert_array_equal(data["test"]["y"], arrays["t10k-labels-idx1-ubyte"])
    assert _only_final(tmp_path / "mnist") == sorted(files)


def test_fetch_refuses_a_file_the_dataset_does_not_have(tmp_path):
    with pytest.raises(DataError, match=r"'evil.gz' is not a file of mnist"):
        fetch_dataset_files("mnist", tmp_path, ["evil.gz"])


def test_pinned_digests_are_full_sha256_hex():
    for dataset, digests in download.SHA256.items():
        assert dataset in download.BASE_URLS
        for name, digest in digests.items():
            assert len(digest) == 64 and int(digest, 16) >= 0, name
