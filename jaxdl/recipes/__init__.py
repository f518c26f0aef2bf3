"""Reusable experiment building blocks: vision, text, the transfer experiment and its
downstream grid, baselines and probes (sweeps and sub-runs live in ``jaxdl.sweep``)."""
