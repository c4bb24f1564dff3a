"""Shared pytest setup: headless plotting, and the repository root for tests that read its files."""
import os
from pathlib import Path

import pytest

os.environ.setdefault('MPLBACKEND', 'Agg')
ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="session")
def repo_root(): return ROOT

@pytest.fixture(autouse=True)
def _fresh_snntorch_registry():
    """snnTorch keeps every `init_hidden=True` neuron ever built in the class-wide list
    `SpikingNeuron.instances`, and `snntorch.utils.reset(net)` resets all of them, not just `net`'s:
    a neuron left over from an earlier test (say a DeltaLeaky whose `mem` is None) then crashes an
    unrelated oracle call. Each test starts with snnTorch's registry empty, as a fresh process would."""
    yield
    import sys
    if 'snntorch' in sys.modules: sys.modules['snntorch'].SpikingNeuron.instances.clear()
