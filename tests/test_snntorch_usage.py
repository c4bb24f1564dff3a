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
import snnedu.utils

snntorch = pytest.importorskip("snntorch")
import snntorch.utils  # noqa: E402  (snntorch does not import its utils submodule itself)


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


def test_lapicque_driven_by_a_one_element_current():
    """Tutorial 2: a Lapicque neuron started from `torch.ones(1) * 0.9`, fed one value per step, the states
    recorded in a list that starts with the initial state and then stacked."""
    torch.manual_seed(0)
    cur = torch.rand(40, 1) * 0.3
    recs = []
    for lib in (snnedu, snntorch):
        lif, mem = lib.Lapicque(R=5.1, C=5e-3, time_step=1e-3, threshold=0.5, reset_mechanism="zero"), torch.ones(1) * 0.9
        mem_rec, spk_rec = [mem], [torch.zeros(1)]
        for x in cur:
            spk, mem = lif(x, mem)
            mem_rec.append(mem); spk_rec.append(spk)
        recs.append((torch.stack(mem_rec), torch.stack(spk_rec)))
    for a, b in zip(*recs): assert_close(a, b)
    assert recs[0][0].shape == (41, 1) and recs[0][1].sum() > 0


def test_delta_leaky_hidden_state_returns_a_stackable_membrane():
    """Delta tutorial: `DeltaLeaky(..., init_hidden=True, output=True)` in a loop, `torch.stack` of the membranes.
    snnTorch 1.0.0 returns `(mem, mem_prev)` as the second output, so its own tutorial's stack raises; the membrane
    it carries is the same."""
    cur = torch.cat([torch.full((25,), 0.5), torch.full((25,), 1.2)])
    ours = snnedu.DeltaLeaky(beta=0.8, delta_threshold=0.3, init_hidden=True, output=True)
    ref = snntorch.DeltaLeaky(beta=0.8, delta_threshold=0.3, init_hidden=True, output=True)
    snnedu.utils.reset(ours); snntorch.utils.reset(ref)
    mine, theirs = [], []
    for x in cur:
        spk, mem = ours(x)
        spk_ref, (mem_ref, _) = ref(x)
        mine.append((spk, mem)); theirs.append((spk_ref, mem_ref))
    assert_close(torch.stack([m for _, m in mine]), torch.stack([m for _, m in theirs]))
    assert_close(torch.stack([s for s, _ in mine]), torch.stack([s for s, _ in theirs]))


def test_state_leaky_membrane_filter_cascade():
    """StateLeaky filters tutorial: `StateLeaky(beta, channels=1, output=False)` returns the membrane alone, and two
    of them in a row smooth a noisy (T, 1, 1) signal; impulse and noise, against snnTorch."""
    torch.manual_seed(0)
    impulse = torch.zeros(300, 1, 1); impulse[0] = 1.0
    for x in (impulse, torch.randn(300, 1, 1)):
        outs = []
        for lib in (snnedu, snntorch):
            f1, f2 = lib.StateLeaky(beta=0.9, channels=1, output=False), lib.StateLeaky(beta=0.9, channels=1, output=False)
            with torch.no_grad(): outs.append(f2(f1(x)))
        assert_close(*outs)
        assert isinstance(outs[0], torch.Tensor) and outs[0].shape == x.shape


def test_population_code_one_step_training_with_bptt():
    """Population-coding tutorial: a one-step `nn.Sequential` of `init_hidden` neurons with 50 outputs for 5 classes,
    trained by `backprop.BPTT(time_var=False)` on `mse_count_loss(population_code=True)`, scored by
    `accuracy_rate(population_code=True)` after `utils.reset(net)`."""
    import snnedu.backprop, snnedu.functional, snntorch.backprop, snntorch.functional
    def build(lib):
        grad = lib.surrogate.fast_sigmoid()
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), lib.Leaky(beta=0.9, spike_grad=grad, init_hidden=True),
                             nn.Linear(12, 50), lib.Leaky(beta=0.9, spike_grad=grad, init_hidden=True, output=True))
    ours, ref = _both(build)
    g = torch.Generator().manual_seed(3)
    data = torch.utils.data.TensorDataset(torch.rand(24, 4, 4, generator=g) * 2, torch.randint(0, 5, (24,), generator=g))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    results = []
    for net, lib in ((ours, snnedu), (ref, snntorch)):
        loss_fn = lib.functional.mse_count_loss(correct_rate=1.0, incorrect_rate=0.0, population_code=True, num_classes=5)
        opt = torch.optim.Adam(net.parameters(), lr=2e-2)
        losses = [lib.backprop.BPTT(net, loader, num_steps=1, optimizer=opt, criterion=loss_fn, time_var=False).detach().item()
                  for _ in range(2)]
        with torch.no_grad():
            lib.utils.reset(net)
            spk, _ = net(data.tensors[0])
            acc = lib.functional.accuracy_rate(spk.unsqueeze(0), data.tensors[1], population_code=True, num_classes=5)
        results.append((torch.tensor(losses), torch.tensor(float(acc)), net[3].weight.detach()))
    for a, b in zip(*results): assert_close(a, b)
