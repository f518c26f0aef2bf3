"""jaxdl: a JAX functional deep-learning research framework."""

__version__ = "0.1.0"
