"""Shared test helpers: the location of the reference fixtures and synthetic audio."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`../shared/fixtures` next to the project; tests that need it skip when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(
            f"reference fixtures not found at {SHARED_FIXTURES} "
            "(they live beside the repository, not inside it)"
        )
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
