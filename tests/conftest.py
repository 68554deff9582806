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
