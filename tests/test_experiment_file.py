"""The one experiment loader: experiments/<name>.py imported by path."""

from __future__ import annotations

import os

import pytest

from jaxdl.errors import JaxdlError
from jaxdl.experiment_file import load_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_loads_by_path_ignoring_a_config_suffix(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text("def get_config():\n    return {'experiment': 'tiny'}\n")
    module = load_experiment(f"{path}:ignored")
    assert module.__name__ == "jaxdl_experiment_tiny"
    assert module.get_config() == {"experiment": "tiny"}
    assert load_experiment(path) is not module  # independent modules, nothing cached


def test_a_missing_file_or_a_directory_is_a_clear_error(tmp_path):
    for bad in (tmp_path / "absent.py", tmp_path):
        with pytest.raises(JaxdlError, match=rf"experiment file '{bad}' not found; expected "
                           r"--config=experiments/<name>.py"):
            load_experiment(bad)


def test_loads_a_real_experiment():
    module = load_experiment(os.path.join(REPO, "experiments", "mlp_digits.py"))
    assert module.get_config().experiment == "mlp_digits"
