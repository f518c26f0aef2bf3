"""ArrayRecord files of examples: a writer (convert an image folder or arrays
once) and a random-access reader for ``StreamingSource``.

Each record is one example, ``{"x": ..., "y": ...}``, stored as an ``.npz``
(numpy's own format: dtype and shape kept exactly, no pickle). Records are
written with ``group_size:1`` so that reading one example decompresses only it.
"""

from __future__ import annotations

import io
import os
from typing import Iterable, Mapping, Sequence

import numpy as np

from jaxdl.errors import DataError

Example = dict[str, np.ndarray]
WRITER_OPTIONS = "group_size:1"


def encode_example(example: Mapping[str, np.ndarray]) -> bytes:
    """One example as the bytes of an uncompressed ``.npz``."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in example.items()})
    return buffer.getvalue()


def decode_example(record: bytes, where: str) -> Example:
    """The example in ``record`` (``where`` names it in errors)."""
    try:
        with np.load(io.BytesIO(record), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{where}: cannot decode the record ({err}); expected an example "
                        "written by jaxdl.data.formats.array_record") from err


def write_examples(path: str, examples: Iterable[Mapping[str, np.ndarray]]) -> int:
    """Write ``examples`` to the ArrayRecord file ``path``; returns how many.

    Every example must have the same fields. The file is written to
    ``path + ".tmp"`` and renamed at the end, so a failed conversion leaves no
    half-written file under the final name.
    """
    from array_record.python.array_record_module import ArrayRecordWriter
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DataError(f"cannot write {path}: directory {directory} does not exist")
    temporary = path + ".tmp"
    writer = ArrayRecordWriter(temporary, WRITER_OPTIONS)
    count, fields = 0, None
    try:
        for example in examples:
            if fields is None:
                fields = sorted(example)
            elif sorted(example) != fields:
                raise DataError(f"example {count} written to {path} has fields "
                                f"{sorted(example)}; expected {fields} like the first")
            writer.write(encode_example(example))
            count += 1
    except BaseException:
        writer.close()
        os.remove(temporary)
        raise
    writer.close()
    os.replace(temporary, path)
    return count


def write_arrays(path: str, arrays: Mapping[str, np.ndarray]) -> int:
    """Write the rows of ``{"x": [N, ...], "y": [N]}`` as N examples to ``path``."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"cannot write {path}: fields have different lengths {lengths}; "
                        "expected one number of examples")
    n = next(iter(lengths.values()))
    return write_examples(path, ({k: v[i] for k, v in arrays.items()} for i in range(n)))


def convert_image_folder(folder, path: str) -> int:
    """Decode every image of an ``ImageFolder`` once into the ArrayRecord file ``path``."""
    return write_examples(path, (folder[i] for i in range(len(folder))))


class ArrayRecordExamples:
    """Random-access examples of one or more ArrayRecord files (grain's reader).

    Args:
      paths: a file or a list of files (examples are numbered across them in order).
    Raises:
      DataError: a missing or unreadable file.
    """

    def __init__(self, paths: str | Sequence[str]):
        import grain
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        for path in self.paths:
            if not os.path.isfile(path):
                raise DataError(f"ArrayRecord file {path} does not exist")
        try:
            self.records = grain.sources.ArrayRecordDataSource(self.paths)
            self.num_examples = len(self.records)
        except Exception as err:  # array_record raises plain RuntimeError/ValueError
            raise DataError(f"cannot read ArrayRecord file(s) {self.paths} ({err}); expected "
                            "files written by jaxdl.data.formats.array_record") from err

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(self, index: int) -> Example:
        return decode_example(self.records[index], f"{self.paths} record {index}")

    def load(self, index: int, *, skip_bad: bool = False) -> Example | None:
        """Example ``index``, or None when it cannot be decoded and ``skip_bad``."""
        try:
            return self[index]
        except DataError:
            if not skip_bad:
                raise
            return None

    def __getstate__(self):  # worker processes reopen the files themselves
        return {"paths": self.paths}

    def __setstate__(self, state):
        self.__init__(state["paths"])
