"""``python -m jaxdl.sweep``: see ``jaxdl.sweep.cli``."""

import sys

import jax

from jaxdl.sweep.cli import main

if __name__ == "__main__":
    # This process only plans, prepares directories and collects results; the
    # accelerators are for the sub-runs (a JAX process on a GPU reserves most of
    # its memory when it starts).
    jax.config.update("jax_platforms", "cpu")
    sys.exit(main())
