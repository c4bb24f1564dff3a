"""DeltaLeaky against snnTorch 1.0.0 (values and gradients), plus snnTorch's own tests of it.

The last tests adapt snnTorch's tests/test_snntorch/test_deltaleaky.py (github.com/jeshraghian/snntorch,
MIT licence) with only the import changed.
"""
import inspect

import pytest
import torch
from torch.testing import assert_close

import snnedu as snn
from snnedu import utils
from snnedu.neurons.delta import DeltaLeaky, delta_leaky_step

snntorch = pytest.importorskip("snntorch")
import snntorch.utils  # noqa: E402  (`import snntorch` does not load its utils)


def _run_explicit(neuron, x_seq, params):
    mem, spk_rec, mem_rec = (None, None), [], []
    for x_t in x_seq.unbind(0):
        spk, mem = neuron(x_t, mem)
        spk_rec.append(spk); mem_rec.append(mem[0])
    loss = (torch.stack(spk_rec) * torch.linspace(0.5, 1.5, x_seq.shape[-1])).sum() + torch.stack(mem_rec).pow(2).sum()
    loss.backward()
    return torch.stack(spk_rec).detach(), torch.stack(mem_rec).detach(), {n: p.grad for n, p in params}


GRID = [dict(beta=0.9, delta_threshold=0.2), dict(beta=0.5, delta_threshold=1.0), dict(beta=torch.tensor([0.2, 0.7, 1.0]), delta_threshold=0.3),
        dict(beta=0.8, delta_threshold=0.0), dict(beta=0.8, delta_threshold=0.25, learn_beta=True),
        dict(beta=0.8, delta_threshold=0.25, spike_grad="fast_sigmoid"), dict(beta=0.8, delta_threshold=0.25, surrogate_disable=True)]


@pytest.mark.parametrize("T", [1, 3, 25])
@pytest.mark.parametrize("kw", GRID, ids=[str(i) for i in range(len(GRID))])
def test_explicit_matches_snntorch(kw, T):
    if kw.get("spike_grad") == "fast_sigmoid": kw = dict(kw, spike_grad=snntorch.surrogate.fast_sigmoid(slope=5))
    ref, ours = snntorch.DeltaLeaky(**kw), DeltaLeaky(**kw)
    torch.manual_seed(T)
    x = torch.randn(T, 4, 3)
    xr, xo = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    spk_r, mem_r, g_r = _run_explicit(ref, xr, ref.named_parameters())
    spk_o, mem_o, g_o = _run_explicit(ours, xo, ours.named_parameters())
    assert_close(spk_o, spk_r); assert_close(mem_o, mem_r)
    assert_close(xo.grad, xr.grad)
    assert set(g_o) == set(g_r)
    for n in g_o: assert_close(g_o[n], g_r[n], msg=n)


def test_hidden_matches_snntorch_and_tutorial():
    "snnTorch's delta tutorial setting: init_hidden=True, output=True, 0-d inputs."
    cur = torch.ones(100) * 0.5; cur[50:] = 1.2
    ref = snntorch.DeltaLeaky(beta=0.8, delta_threshold=0.3, init_hidden=True, output=True)
    ours = DeltaLeaky(beta=0.8, delta_threshold=0.3, init_hidden=True, output=True)
    snntorch.utils.reset(ref); utils.reset(ours)
    for x in cur:
        spk_r, (mem_r, _) = ref(x)
        spk_o, mem_o = ours(x)                                  # a tensor, not snnTorch's tuple
        assert_close(spk_o, spk_r); assert_close(mem_o, mem_r)
    only_spk = DeltaLeaky(beta=0.8, delta_threshold=0.3, init_hidden=True)
    assert isinstance(only_spk(torch.ones(2)), torch.Tensor)
    assert_close(ours.mem_prev, ref.mem_prev)


def test_step_function_by_hand():
    spk, mem = delta_leaky_step(torch.tensor([1.0, 0.1]), torch.tensor([0.0, 2.0]), 0.5, 0.4)
    assert_close(mem, torch.tensor([1.0, 1.1])); assert_close(spk, torch.tensor([1.0, 1.0]))      # rise and fall
    spk, _ = delta_leaky_step(torch.tensor([0.5]), torch.tensor([1.0]), 0.5, 0.0)
    assert spk.item() == 0.0                                    # |ΔU| = 0 is not above 0: H(0) = 0


def test_sequence_and_sequential():
    neuron = DeltaLeaky(beta=0.9, delta_threshold=0.1)
    x = torch.randn(7, 2, 3)
    spk_seq, mem_seq, mem_prev_seq = neuron.sequence(x)
    ref = snntorch.DeltaLeaky(beta=0.9, delta_threshold=0.1)
    mem, rec = (None, None), []
    for x_t in x.unbind(0):
        spk, mem = ref(x_t, mem); rec.append((spk, mem[0], mem[1]))
    for ours, theirs in zip((spk_seq, mem_seq, mem_prev_seq), zip(*rec)): assert_close(ours, torch.stack(theirs))
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), DeltaLeaky(beta=0.9, delta_threshold=0.1, init_hidden=True))
    a = torch.stack([net(x_t) for x_t in x.unbind(0)])
    utils.reset(net)
    b = torch.stack([net(x_t) for x_t in x.unbind(0)])
    assert_close(a, b)                                          # reset starts from rest again


def test_sequence_of_a_net_returns_what_each_step_returns():
    "A net ending in DeltaLeaky(init_hidden=True, output=True) steps as (spk, mem): sequence() returns (spk_seq, mem_seq)."
    from snnedu.sequence import sequence
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), DeltaLeaky(beta=0.9, delta_threshold=0.1, init_hidden=True, output=True))
    x = torch.randn(6, 2, 3)
    utils.reset(net); steps = [net(x_t) for x_t in x.unbind(0)]
    for fused in (True, False):
        utils.reset(net); out = sequence(net, x, fused=fused)
        assert len(out) == 2
        for ours, loop in zip(out, zip(*steps)): assert_close(ours, torch.stack(loop))

def test_state_dict_and_devices(tmp_path):
    ours = DeltaLeaky(beta=0.7, delta_threshold=0.2, learn_beta=True)
    ref = snntorch.DeltaLeaky(beta=0.4, delta_threshold=0.2, learn_beta=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    assert ours.reset_mechanism == "none" and abs(ours.beta.item() - 0.4) < 1e-7
    torch.save(ours.state_dict(), tmp_path / "d.pt")
    fresh = DeltaLeaky(beta=0.1, learn_beta=True); fresh.load_state_dict(torch.load(tmp_path / "d.pt"))
    assert_close(fresh.beta, ours.beta)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        spk, (mem, _) = DeltaLeaky(beta=0.5, delta_threshold=0.1)(torch.ones(2, dtype=dtype))
        assert spk.dtype == mem.dtype == dtype


def test_signature_and_top_level():
    assert snn.DeltaLeaky is DeltaLeaky
    assert str(inspect.signature(DeltaLeaky)) == str(inspect.signature(snntorch.DeltaLeaky))
    assert isinstance(DeltaLeaky(beta=0.5), snn.Leaky)


BAD = [(lambda: DeltaLeaky(beta=0.9, delta_threshold=-1.0), ValueError, "delta_threshold must be >= 0"),
       (lambda: DeltaLeaky(beta=0.9, delta_threshold=float("nan")), ValueError, "delta_threshold must be >= 0"),
       (lambda: DeltaLeaky(beta=0.9, delta_threshold="0.2"), TypeError, "delta_threshold must be a number"),
       (lambda: DeltaLeaky(beta=0.9, delta_threshold=torch.tensor(-0.5)), ValueError, "delta_threshold must be >= 0"),
       (lambda: DeltaLeaky(beta=0.9, threshold=2.0), ValueError, "does not use threshold=2.0"),
       (lambda: DeltaLeaky(beta=0.9, learn_threshold=True), ValueError, "does not use learn_threshold"),
       (lambda: DeltaLeaky(beta=0.9, reset_mechanism="subtract"), ValueError, "never resets"),
       (lambda: DeltaLeaky(beta=0.9, inhibition=True), ValueError, "does not use inhibition"),
       (lambda: DeltaLeaky(beta=0.9, reset_delay=False), ValueError, "does not use reset_delay"),
       (lambda: DeltaLeaky(0.3), TypeError, "pass beta by keyword"),
       (lambda: DeltaLeaky(beta=0.9, nonsense=1), TypeError, "pass beta by keyword"),
       (lambda: DeltaLeaky(beta=1.5), ValueError, "beta must be in [0, 1]"),
       (lambda: DeltaLeaky(beta=0.9)(torch.ones(3), (torch.ones(3), torch.ones(3), torch.ones(3))), TypeError, "the pair (mem, mem_prev)"),
       (lambda: DeltaLeaky(beta=0.9)(torch.ones(3), (torch.ones(2), None)), ValueError, "mem has shape (2,)"),
       (lambda: DeltaLeaky(beta=0.9, init_hidden=True)(torch.ones(3), torch.ones(3)), TypeError, "keeps its own state")]


@pytest.mark.parametrize("make, error, message", BAD)
def test_bad_input(make, error, message):
    with pytest.raises(error) as info: make()
    assert message in str(info.value)


# ---- snnTorch 1.0.0's own tests (tests/test_snntorch/test_deltaleaky.py), import changed ----

@pytest.fixture(scope="module")
def step_input():
    return torch.Tensor([1.0, 0.1, 2.0, 0.1]).unsqueeze(-1)


def test_snntorch_spike_condition(step_input):
    delta = DeltaLeaky(beta=0.5, delta_threshold=0.2, init_hidden=True)
    delta.mem = torch.zeros_like(step_input[0])
    delta.mem_prev = torch.zeros_like(step_input[0])
    spikes = [delta(step_input[i])[0] for i in range(len(step_input))]
    assert sum(spikes) > 0, "Spikes were not generated"


def test_snntorch_threshold_sensitivity(step_input):
    def count_spikes(neuron):
        neuron.mem = torch.zeros_like(step_input[0])
        neuron.mem_prev = torch.zeros_like(step_input[0])
        return sum([neuron(step_input[i])[0] for i in range(len(step_input))])
    low = count_spikes(DeltaLeaky(beta=0.5, delta_threshold=0.1, init_hidden=True))
    high = count_spikes(DeltaLeaky(beta=0.5, delta_threshold=1.0, init_hidden=True))
    assert low >= high, "Higher threshold produced more spikes, should be less"
