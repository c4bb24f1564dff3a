"""Patterns that snnTorch's own tutorial notebooks rely on, written afresh, run against snnTorch 1.0.0.

Each test is one way a tutorial drives the library (named in the test's docstring), on small random data:
the same code runs with `snnedu` and with `snntorch`, and values (and gradients where training is involved)
must agree. The tutorials themselves are third-party code and are not in this repository.
"""
import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snnedu

snntorch = pytest.importorskip("snntorch")


def _both(build):
    "Build the same model with each library from one seed: (snnedu model, snnTorch model)."
    torch.manual_seed(0); ours = build(snnedu)
    torch.manual_seed(0); ref = build(snntorch)
    return ours, ref


def test_shared_decay_after_a_wide_linear():
    """LinearLeaky tutorial: `StateLeaky(beta, channels=1)` after `nn.Linear(784, 1000)`, the same decay for
    every feature, trained with a per-step cross-entropy on the membrane."""
    class Net(nn.Module):
        def __init__(self, lib):
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(12, 20), lib.StateLeaky(beta=0.95, channels=1)
            self.fc2, self.lif2 = nn.Linear(20, 4), lib.StateLeaky(beta=0.95, channels=1)
        def forward(self, x):
            spk1, _ = self.lif1(self.fc1(x))
            return self.lif2(self.fc2(spk1))
    ours, ref = _both(Net)
    x = torch.rand(1, 6, 12).expand(5, -1, -1) * 3                     # (T, B, features): static input, 5 steps
    y = torch.randint(0, 4, (6,))
    outs = []
    for net in (ours, ref):
        spk, mem = net(x)
        loss = sum(nn.functional.cross_entropy(m, y) for m in mem)
        loss.backward()
        outs.append((spk, mem, net.fc1.weight.grad))
    for a, b in zip(*outs): assert_close(a, b)
    assert outs[0][0].shape == (5, 6, 4)


def test_shared_decay_still_names_a_wrong_channel_count():
    "The relaxed rule is for channels=1 only: StateLeaky(channels=3) on 5 features still says what is wrong."
    with pytest.raises(ValueError, match=r"\(T, B, channels\) = \(T, B, 3\)"):
        snnedu.StateLeaky(beta=0.9, channels=3)(torch.rand(4, 2, 5))
