"""Shared test helpers: the location of the reference fixtures and synthetic audio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"


def running_in_ci() -> bool:
    """Whether a CI service runs the suite (they set CI=true; GitHub, GitLab and others)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`../shared/fixtures` next to the project.

    Tests that need it skip when it is absent on a developer machine; under CI (where the fixtures
    are always checked out beside the clone) their absence fails the parity tests instead of
    silently skipping them.
    """
    if not SHARED_FIXTURES.is_dir():
        where = (f"reference fixtures not found at {SHARED_FIXTURES} "
                 "(they live beside the repository, not inside it)")
        if running_in_ci():
            pytest.fail(f"{where}; CI=true, so the parity tests may not be skipped", pytrace=False)
        pytest.skip(where)
    return SHARED_FIXTURES


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of tiny models (on a busy 2-core runner spinning
    OpenMP workers makes them several times slower); use with `pytest.mark.usefixtures`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
