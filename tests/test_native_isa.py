"""`jaxdl.kernels.isa`: which kernel build a CPU gets, the ceiling, and the reason when none."""

from __future__ import annotations

import pytest

from jaxdl.errors import ConfigError
from jaxdl.kernels import isa

VECTOR = ("avx512", "avx2")
EVERY = ("avx512", "avx2", "portable")
AVX512 = frozenset({"avx512f", "avx2", "fma"})
AVX2 = frozenset({"avx2", "fma"})


@pytest.mark.parametrize("offered,features,ceiling,build", [
    (VECTOR, AVX512, None, "avx512"),
    (VECTOR, AVX2, None, "avx2"),
    (VECTOR, AVX512, "avx2", "avx2"),      # forced lower on a higher CPU
    (VECTOR, AVX2, "avx512", "avx2"),      # a ceiling above the CPU is only a ceiling
    (EVERY, frozenset(), None, "portable"),
    (EVERY, AVX512, "portable", "portable"),
    (("portable",), None, "avx2", "portable"),  # no probe needed for a portable-only kernel
])
def test_the_best_offered_build_the_cpu_runs_under_the_ceiling(offered, features, ceiling, build):
    assert isa.choose(offered, features, ceiling) == isa.Choice(build)


@pytest.mark.parametrize("features,missing", [
    (frozenset({"avx2"}), "FMA"),           # AVX2 without FMA
    (frozenset({"fma"}), "AVX2"),
    (frozenset(), "AVX2"),                  # the first of the two the build needs
    (frozenset({"avx512f", "avx2"}), "FMA"),
])
def test_a_cpu_that_runs_no_offered_build_gets_the_one_missing_feature(features, missing):
    choice = isa.choose(VECTOR, features, None)
    assert choice.build is None and not choice.deliberate
    assert choice.reason == f"this CPU lacks {missing} (the avx2 build needs AVX2 and FMA)"


def test_a_ceiling_below_every_offered_build_is_deliberate():
    choice = isa.choose(VECTOR, AVX512, "portable")
    assert choice == isa.Choice(None, "JAXDL_NATIVE_ISA=portable: no build at or below "
                                      "portable (builds: avx512, avx2)", True)


@pytest.mark.parametrize("value,ceiling", [("", None), ("auto", None), ("avx2", "avx2"),
                                           (" portable ", "portable")])
def test_the_ceiling_comes_from_the_environment(monkeypatch, value, ceiling):
    monkeypatch.setenv(isa.ENV_VAR, value)
    assert isa.requested() == ceiling


def test_a_bad_ceiling_names_the_variable_and_the_accepted_values(monkeypatch):
    monkeypatch.setenv(isa.ENV_VAR, "sse4")
    with pytest.raises(ConfigError, match=r"JAXDL_NATIVE_ISA='sse4'; expected one of "
                                          r"\('avx512', 'avx2', 'portable'\) or 'auto'"):
        isa.requested()


def test_runnable_builds_follow_the_features():
    assert isa.runnable(AVX512) == EVERY
    assert isa.runnable(AVX2) == ("avx2", "portable")
    assert isa.runnable(frozenset({"avx512f", "avx2"})) == ("portable",)
