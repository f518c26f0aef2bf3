"""Placeholder."""
from jaxdl.config import validate_core


def validate_config(config, defaults=None, schema=None):
    validate_core(config)
