"""Verified downloads of the vision datasets (only when asked: `download=True`).

A file is streamed to a temporary name in its destination directory, its SHA-256
is checked, and only then is it renamed (`os.replace`, atomic on one filesystem)
to its final name. An interrupted or corrupt download therefore never leaves a
file under the final name for a later run to trust.

`BASE_URLS` holds each dataset's location; change an entry (or pass `base_url`)
to use a mirror, as the tests do with a server on 127.0.0.1.

Digests: MNIST and Fashion-MNIST from TensorFlow Datasets' `url_checksums`
(the MNIST files are byte-identical on every mirror, hence TFDS's digests for its
Google Cloud mirror hold for the PyTorch mirror below); CIFAR from TFDS's
`url_checksums/cifar10.csv` / `cifar100.csv`, the same digests Keras pins.
"""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from jaxdl.errors import DataError

BASE_URLS: dict[str, str] = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/",
    "cifar100": "https://www.cs.toronto.edu/~kriz/",
}

SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "cifar10": {
        "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    },
    "cifar100": {
        "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    },
}


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Downloads `url` to `dest`, verified, or leaves nothing under `dest`.

    Args:
      url: http(s) or file URL.
      dest: final path; its directory is created if needed.
      sha256: expected hex digest of the whole file.
      timeout: socket timeout in seconds.
      chunk_size: bytes read per step while streaming.

    Returns:
      `dest` as a Path, holding exactly the verified bytes.

    Raises:
      DataError: the transfer failed or was cut short, or the digest differs.
        The temporary file is removed in every failure case.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        received = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                announced = response.headers.get("Content-Length")
                while chunk := response.read(chunk_size):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, http.client.HTTPException) as err:
            raise DataError(
                f"download of {url} failed after {received} bytes: {err!r}; nothing was "
                f"written to {dest}. Retry, or place the file there by hand."
            ) from err
        # http.client returns a short body without complaint when the server closes
        # early, so compare with the announced length ourselves.
        if announced is not None and received != int(announced):
            raise DataError(
                f"download of {url} was cut short: received {received} of {announced} "
                f"bytes; nothing was written to {dest}. Retry the download."
            )
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(
                f"download of {url} has SHA-256 {actual}, expected {sha256.lower()} "
                f"({received} bytes); nothing was written to {dest}. The mirror may "
                "serve a different or corrupt file."
            )
        os.replace(temp_name, dest)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
    return dest


def fetch_dataset_files(
    dataset: str,
    directory: str | os.PathLike,
    filenames: Sequence[str] | None = None,
    *,
    base_url: str | None = None,
) -> list[Path]:
    """Downloads a dataset's files that are not yet in `directory`.

    Args:
      dataset: a key of `BASE_URLS` / `SHA256` ("mnist", "fashion_mnist",
        "cifar10", "cifar100").
      directory: where the files go.
      filenames: the subset to fetch; all of the dataset's files by default.
      base_url: overrides `BASE_URLS[dataset]` (must end with '/').

    Returns:
      The paths of the requested files, present and verified.
    """
    if dataset not in SHA256:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {sorted(SHA256)}")
    digests = SHA256[dataset]
    wanted = list(digests) if filenames is None else list(filenames)
    base = base_url if base_url is not None else BASE_URLS[dataset]
    paths = []
    for name in wanted:
        if name not in digests:
            raise DataError(f"{name!r} is not a file of {dataset}; expected one of {sorted(digests)}")
        path = Path(directory) / name
        if not path.exists():
            download_file(base + name, path, sha256=digests[name])
        paths.append(path)
    return paths
