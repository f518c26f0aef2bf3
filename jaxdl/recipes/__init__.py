"""Reusable experiment building blocks: vision, text, composed sub-runs, the transfer sweep."""
