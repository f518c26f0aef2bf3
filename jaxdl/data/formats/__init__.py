"""One module per on-disk format, each holding its whole-split loader (vectorised,
``{"train": {...}, "test": {...}}`` of arrays) and its example reader (one example at a
time, for ``StreamingSource`` and ``StreamedSplit``) over one locate-and-validate routine."""
