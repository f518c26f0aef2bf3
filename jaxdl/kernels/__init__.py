"""Native CPU kernels (C++ through the XLA FFI): the build cache, the FFI glue, one .py + .cc per kernel."""
