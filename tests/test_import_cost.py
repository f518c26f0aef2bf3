"""``import jaxdl`` and the entry point's own imports load none of the slow libraries
(jax, flax, scikit-learn, matplotlib): ``python -m jaxdl.run`` checks the command
line before paying for them, and every public name still resolves on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

SLOW = ("jax", "flax", "sklearn", "matplotlib", "orbax", "grain")


def _loaded_after(statement: str) -> list[str]:
    code = (f"{statement}\nimport sys\n"
            f"print(','.join(m for m in {SLOW!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    return [m for m in out.split(",") if m]


@pytest.mark.parametrize("statement", ["import jaxdl", "import jaxdl.run"])
def test_importing_the_package_and_the_entry_point_loads_no_slow_library(statement):
    assert _loaded_after(statement) == []


def test_every_public_name_resolves_and_is_listed():
    import jaxdl
    for name in jaxdl.__all__:
        assert getattr(jaxdl, name) is not None, name
    assert set(jaxdl.__all__) <= set(dir(jaxdl))
    assert jaxdl.fit is __import__("jaxdl.train.loop", fromlist=["fit"]).fit
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        jaxdl.fitt
