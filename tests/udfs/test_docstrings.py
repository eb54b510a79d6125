"""The examples in the builders' docstrings run, with the suite's ``spark`` and ``F`` (as in
Spark's own docs)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
from pyspark.sql import functions as F

import udfs

MODULES = sorted(m.name for m in pkgutil.iter_modules(udfs.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(spark, name):
    module = importlib.import_module(f"udfs.{name}")
    result = doctest.testmod(module, extraglobs={"spark": spark, "F": F}, report=True,
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_sending_core_example_runs():
    from jobs.upload import sending

    result = doctest.testmod(sending, report=True)
    assert result.attempted and result.failed == 0
