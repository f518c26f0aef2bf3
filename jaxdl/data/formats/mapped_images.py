"""Image examples served from memory-mapped uint8 pixels and labels, one example at a time.

The shared part of ``MnistExamples`` and ``CifarExamples``: the maps are opened on
first use in each process (a pickled copy sent to a worker process maps the
files itself instead of carrying them), and example ``i`` is ``x`` float32
``[H, W, C]`` in [0, 1] and ``y`` int32, as the in-memory loaders give them.
"""

from __future__ import annotations

import numpy as np


class MappedImageExamples:
    """Base of an example reader whose subclass sets ``num_examples`` and opens its maps.

    Subclasses implement ``open_maps() -> (images uint8 [N, H, W] or [N, H, W, C],
    labels [N])``.
    """

    num_examples: int
    _maps = None

    def open_maps(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __getstate__(self):
        return {**self.__dict__, "_maps": None}  # a worker maps the files itself

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if self._maps is None:
            self._maps = self.open_maps()
        images, labels = self._maps
        image = images[index].astype(np.float32) / 255.0
        return {"x": image if image.ndim == 3 else image[..., None], "y": np.int32(labels[index])}


__all__ = ["MappedImageExamples"]
