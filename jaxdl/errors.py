"""Exceptions jaxdl raises for bad input, bad data and bad configuration.

Each carries a message that names the bad value, what was expected and where
(file, line, parameter path or config key), so a researcher can fix it without
reading jaxdl's source.
"""


class JaxdlError(Exception):
    """Base class of jaxdl's own errors."""


class ConfigError(JaxdlError, ValueError):
    """A configuration key or value is wrong (unknown key, wrong type, bad value)."""


class DataError(JaxdlError, ValueError):
    """A data file or array is missing, malformed or does not fit the model."""


class CheckpointError(JaxdlError, RuntimeError):
    """A checkpoint cannot be written, read or restored into this model."""


class WriteError(JaxdlError, OSError):
    """A file of a run cannot be written (disk full, quota, permissions): names the file."""


class ShapeMismatchError(CheckpointError):
    """Restored parameters do not match the model: lists each path with both shapes."""


class NonFiniteError(JaxdlError, FloatingPointError):
    """Training produced NaN or Inf and `nan_policy` says to stop."""
