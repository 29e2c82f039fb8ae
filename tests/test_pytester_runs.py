"""The in-process pytest runs of these tests (pytester) keep the libraries they
import whole for the tests after them (tests/conftest.py, ``_keep_library_modules``)."""

from __future__ import annotations

import sys
import uuid

import pytest


def test_a_run_keeps_the_libraries_it_imported_and_drops_its_own_files(
    pytester: pytest.Pytester,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library = f"et_hil_test_library_{uuid.uuid4().hex}"
    site = tmp_path_factory.mktemp("site")  # outside the run's own folder, like site-packages
    (site / f"{library}.py").write_text("class Jar:\n    pass\n")
    monkeypatch.syspath_prepend(site)
    pytester.makepyfile(
        test_inner=f"import {library}\n\ndef test_imports():\n    assert {library}.Jar\n"
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    # pytester alone drops it: a library imported again later is half old, half new
    # (docker's client, made from requests modules of two imports, failed so in CI)
    assert library in sys.modules
    # the run's own test file goes, so that the next run imports its test_inner afresh
    assert "test_inner" not in sys.modules
