"""The jaxdl release version (one place; `jaxdl.__version__` and run records read it)."""

__version__ = "0.1.0"
