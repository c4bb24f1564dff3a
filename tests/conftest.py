"""Shared pytest setup: headless plotting, and the repository root for tests that read its files."""
import os
from pathlib import Path

import pytest

os.environ.setdefault('MPLBACKEND', 'Agg')
ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="session")
def repo_root(): return ROOT
