"""Shared fixtures. Tests needing ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedge_core.data.shared import shared_data_dir

SKIP_REASON = ("../shared/data is absent (a fresh clone without the shared data folder); "
               "set HEDGE_SHARED_DATA or place it beside the repository to run this test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip(SKIP_REASON)
    return d


def pytest_collection_modifyitems(config, items):
    if shared_data_dir() is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)
