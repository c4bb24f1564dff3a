"""snnedu.sequence: the fused multi-step path equals the step loop (values and gradients, every option), gradcheck,
the network engine equals the quickstart step loop, snnTorch 1.0.0 as oracle, and the bad-input catalogue."""
import itertools
import re

import numpy as np

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.testing import assert_close

from snnedu import surrogate
from snnedu.neurons.base import SpikingNeuron
from snnedu.neurons.leaky import Leaky
from snnedu.neurons.synaptic import Synaptic
from snnedu.neurons.alpha import Alpha
from snnedu.neurons.lapicque import Lapicque
from snnedu.neurons.base import neuron_sequence, sequence_loop
from snnedu.neurons.leaky import LeakySequence, _leaky_forward_inplace, _leaky_forward_steps, leaky_sequence
from snnedu.neurons.synaptic import SynapticSequence
from snnedu.neurons.scan import spike_backward, spike_backward_into
from snnedu.sequence import sequence

MECHS, DELAYS = ("subtract", "zero", "none"), (True, False)

def make_input(T, B=3, N=4, dtype=torch.float32, seed=0, scale=0.8, shift=0.4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, B, N, generator=g, dtype=torch.float64) * scale + shift).to(dtype)

def run(fn, neuron_kw, x, mem0, dtype, weights_seed=1):
    "Fresh neuron, run `fn`, loss touching spikes and membrane; returns outputs and every gradient."
    lif = Leaky(**neuron_kw).to(dtype)
    x = x.clone().requires_grad_()
    mem0 = mem0.clone().requires_grad_()
    spk_seq, mem_seq = fn(lif, x, mem0)
    g = torch.Generator().manual_seed(weights_seed)
    w1, w2 = (torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype) for _ in range(2))
    loss = (spk_seq * w1).sum() + (mem_seq * w2).sum()
    params = [p for p in lif.parameters()]
    grads = torch.autograd.grad(loss, [x, mem0, *params])
    return (spk_seq.detach(), mem_seq.detach(), *grads)

def assert_same(a, b, **tol):
    "Outputs and gradients agree; float32 parameter gradients are sums over T·B in another order, so allow for rounding."
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert_close(u, v, **(tol or (dict(rtol=2e-5, atol=1e-4) if u.dtype == torch.float32 else {})))

def _leaky_fused(lif, x, m, inplace=True):
    "`leaky_sequence` with `lif`'s parameters: `(spk_seq, mem_seq)`."
    f = lif._firing(x[0])
    spk_seq, _, mem_seq = leaky_sequence(x, m, lif.beta.to(x.dtype), f["threshold"], f["spike_fn"], f["reset_mechanism"],
                                         lif.reset_delay, f["graded_spikes_factor"], inplace=inplace)
    return spk_seq, mem_seq

fused = lambda lif, x, m: _leaky_fused(lif, x, m)
fused_steps = lambda lif, x, m: _leaky_fused(lif, x, m, inplace=False)
loop = lambda lif, x, m: sequence_loop(lif, x, m)

# ---------------------------------------------------------------------------------------------------------------
# The fused path equals the loop.

@pytest.mark.parametrize("mech,delay,T,dtype", list(itertools.product(MECHS, DELAYS, (1, 2, 37), (torch.float32, torch.float64))))
def test_fused_equals_loop_all_learnable(mech, delay, T, dtype):
    kw = dict(beta=torch.tensor([0.9, 0.5, 1.0, 0.0]), threshold=torch.tensor([1.0, 0.8, 1.2, 1.0]), learn_beta=True,
              learn_threshold=True, graded_spikes_factor=2.5, learn_graded_spikes_factor=True, reset_mechanism=mech, reset_delay=delay)
    x, m0 = make_input(T, dtype=dtype), make_input(1, dtype=dtype, seed=5)[0].abs() * 1.5
    ref = run(loop, kw, x, m0, dtype)
    for impl in (fused, fused_steps):
        assert_same(run(impl, kw, x, m0, dtype), ref)

@pytest.mark.parametrize("mech,delay", list(itertools.product(MECHS, DELAYS)))
def test_fused_equals_loop_plain_scalar_params(mech, delay):
    kw = dict(beta=0.8, reset_mechanism=mech, reset_delay=delay)
    x, m0 = make_input(20), torch.zeros(3, 4)
    assert_same(run(fused, kw, x, m0, torch.float32), run(loop, kw, x, m0, torch.float32))

SURROGATES = {
    "atan": surrogate.atan, "fast_sigmoid": surrogate.fast_sigmoid, "sigmoid": surrogate.sigmoid,
    "spike_rate_escape": surrogate.spike_rate_escape, "straight_through_estimator": surrogate.straight_through_estimator,
    "triangular": surrogate.triangular, "heaviside": surrogate.heaviside, "SFS": surrogate.SFS, "LSO": surrogate.LSO,
    "custom": lambda: surrogate.custom_surrogate(lambda x, grad, spk: grad * torch.exp(-x.abs())),
}

@pytest.mark.parametrize("name,delay", list(itertools.product(SURROGATES, DELAYS)))
def test_fused_equals_loop_every_surrogate(name, delay):
    kw = dict(beta=torch.tensor([0.9, 0.7, 0.5, 0.95]), spike_grad=SURROGATES[name](), learn_beta=True, learn_threshold=True,
              reset_delay=delay)
    x, m0 = make_input(15, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64)
    assert_same(run(fused, kw, x, m0, torch.float64), run(loop, kw, x, m0, torch.float64))

@pytest.mark.parametrize("mech,delay", list(itertools.product(MECHS, DELAYS)))
def test_surrogate_disable_gives_the_loops_gradients(mech, delay):
    kw = dict(beta=0.9, surrogate_disable=True, learn_beta=True, reset_mechanism=mech, reset_delay=delay)
    x, m0 = make_input(10), torch.zeros(3, 4)
    assert_same(run(fused, kw, x, m0, torch.float32), run(loop, kw, x, m0, torch.float32))

@pytest.mark.parametrize("mech,delay", list(itertools.product(MECHS, DELAYS)))
def test_threshold_ties(mech, delay):
    "mem == threshold exactly does not spike (H(0) = 0) and does not reset: both paths agree."
    x = torch.tensor([[1.0, 0.5], [0.5, 0.75], [0.5, 0.5], [1.0, 0.0]]).unsqueeze(1)   # (T=4, B=1, N=2); β = 0.5
    kw = dict(beta=0.5, reset_mechanism=mech, reset_delay=delay, learn_threshold=True)
    a, b = run(loop, kw, x, torch.zeros(1, 2), torch.float32), run(fused, kw, x, torch.zeros(1, 2), torch.float32)
    assert_same(a, b)
    assert a[0][0].sum() == 0          # step 0: mem = 1.0 = θ exactly, no spike

@pytest.mark.parametrize("only", ["spk", "mem"])
def test_gradient_through_one_output_only(only):
    "An unused output sends None to backward (set_materialize_grads(False)); both cases match the loop."
    def grads(fn):
        lif = Leaky(beta=0.9, learn_beta=True, learn_threshold=True)
        x = make_input(12).requires_grad_()
        spk_seq, mem_seq = fn(lif, x, torch.zeros(3, 4))
        (spk_seq if only == "spk" else mem_seq).pow(2).sum().backward()
        return x.grad, lif.beta.grad, lif.threshold.grad
    assert_same(grads(fused), grads(loop))

@pytest.mark.parametrize("mech,g", list(itertools.product(MECHS, (1.0, 2.5))))
def test_inplace_forward_is_bit_identical_to_the_step_function(mech, g):
    x = make_input(50, B=8, N=16, scale=1.0)
    m0, b, th, gg = torch.zeros(8, 16), torch.tensor(0.9), torch.tensor(1.0), torch.tensor(g)
    fast = _leaky_forward_inplace(x, m0, b, th, gg, mech, True, True)
    steps = _leaky_forward_steps(x, m0, b, th, gg, surrogate.atan(), mech, True, True, True)
    for a, b in zip(fast[:2], steps[:2]):
        assert torch.equal(a, b)

@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 12), B=st.integers(1, 3), N=st.integers(1, 5), beta=st.floats(0, 1), scale=st.floats(0.1, 3),
       mech=st.sampled_from(MECHS), delay=st.booleans(), seed=st.integers(0, 10_000))
def test_fused_equals_loop_random(T, B, N, beta, scale, mech, delay, seed):
    kw = dict(beta=beta, reset_mechanism=mech, reset_delay=delay, learn_beta=True, learn_threshold=True)
    x = make_input(T, B, N, dtype=torch.float64, seed=seed, scale=scale)
    m0 = torch.zeros(B, N, dtype=torch.float64)
    assert_same(run(fused, kw, x, m0, torch.float64), run(loop, kw, x, m0, torch.float64))

# ---------------------------------------------------------------------------------------------------------------
# gradcheck of the hand-derived backward (float64, smooth spike function so finite differences see it).

smooth = lambda u: torch.sigmoid(4 * u)

@pytest.mark.parametrize("mech,delay", list(itertools.product(MECHS, DELAYS)))
def test_gradcheck(mech, delay):
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(7, 2, 3, generator=g, dtype=torch.float64) * 1.2).requires_grad_()
    params = [torch.rand(2, 3, generator=g, dtype=torch.float64) * 1.5, torch.tensor([0.9, 0.5, 0.7], dtype=torch.float64),
              torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.5, dtype=torch.float64)]
    params = [p.requires_grad_() for p in params]
    f = lambda x, m, b, th, gg: LeakySequence.apply(x, m, b, th, gg, smooth, mech, delay, True, False)
    assert torch.autograd.gradcheck(f, (x, *params))

def test_gradcheck_with_surrogate_away_from_spikes():
    "With the real H and atan, inputs that never reach threshold: finite differences of mem equal the backward."
    x = (torch.rand(6, 2, 3, dtype=torch.float64) * 0.2).requires_grad_()
    m = torch.rand(2, 3, dtype=torch.float64).mul(0.3).requires_grad_()
    b = torch.tensor([0.9, 0.5, 0.7], dtype=torch.float64, requires_grad=True)
    f = lambda x, m, b: LeakySequence.apply(x, m, b, torch.tensor(5.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64),
                                            surrogate.atan(), "subtract", True)[2]
    assert torch.autograd.gradcheck(f, (x, m, b))

# ---------------------------------------------------------------------------------------------------------------
# Dispatch, state contract, other neurons.

def _fusable(neuron):
    x = torch.zeros(2, 1, 3)
    return neuron._fused_sequence(x, *neuron._load_states(x[0])) is not None

def test_fusable_dispatch():
    assert _fusable(Leaky(beta=0.9))
    assert _fusable(Leaky(beta=0.9, surrogate_disable=True))
    assert not _fusable(Leaky(beta=0.9, spike_grad=lambda u: (u > 0).float()))       # unknown callable: the loop
    assert not _fusable(Leaky(beta=0.9, state_quant=lambda u: u))
    with pytest.warns(UserWarning): assert not _fusable(Leaky(beta=0.9, inhibition=True))
    assert _fusable(Synaptic(alpha=0.8, beta=0.9)) and _fusable(Synaptic(alpha=0.8, beta=0.9, reset_delay=False))
    assert _fusable(Alpha(alpha=0.9, beta=0.8)) and _fusable(Lapicque(beta=0.9))

@pytest.mark.parametrize("kw", [dict(inhibition=True), dict(spike_grad=lambda u: surrogate.atan()(u)),
                                dict(state_quant=lambda u: torch.round(u * 8) / 8)])
def test_loop_fallback_matches_forward(kw):
    "Options the fused path does not implement run the loop: same numbers as calling forward."
    def go(fn):
        lif = Leaky(beta=0.9, **kw)
        return fn(lif, make_input(9, B=2, N=5, scale=1.5), torch.zeros(2, 5))
    with pytest.warns(UserWarning) if kw.get("inhibition") else _nullcontext():
        assert_same(go(neuron_sequence), go(loop))

class _nullcontext:
    def __enter__(self): return self
    def __exit__(self, *a): return False

def test_hidden_mode_keeps_last_state_and_continues():
    x = make_input(10)
    a = Leaky(beta=0.9, init_hidden=True)
    spk1, mem1 = neuron_sequence(a, x[:5]); spk2, mem2 = neuron_sequence(a, x[5:])
    assert_close(a.mem, mem2[-1])
    b = Leaky(beta=0.9, init_hidden=True)
    ref = [b(x_t) for x_t in x]
    assert_close(torch.cat([spk1, spk2]), torch.stack(ref))
    a.reset_mem()
    assert_close(neuron_sequence(a, x)[0], torch.stack(ref))

def test_explicit_mode_from_stored_state_like_forward():
    "No state passed: like forward, the neuron continues from the state it keeps (zeros on first use)."
    x = make_input(6)
    a, b = Leaky(beta=0.9), Leaky(beta=0.9)
    neuron_sequence(a, x); neuron_sequence(a, x)
    mem = None
    for x_t in torch.cat([x, x]): spk, mem = b(x_t, mem)
    assert_close(a.mem, mem)

@pytest.mark.parametrize("make", [lambda: Synaptic(alpha=0.8, beta=0.9), lambda: Alpha(alpha=0.9, beta=0.8),
                                  lambda: Lapicque(beta=0.9), lambda: Synaptic(alpha=0.8, beta=0.9, init_hidden=True)])
def test_other_neurons_equal_forward(make):
    x = make_input(8, scale=1.5)
    a, b = make(), make()
    out = neuron_sequence(a, x)
    recs = []
    for x_t in x:
        o = b(x_t)
        spk = o[0] if isinstance(o, tuple) else o
        recs.append((spk, *(getattr(b, n) for n in b._state_names)))
    ref = tuple(torch.stack(r) for r in zip(*recs))
    assert len(out) == 1 + len(b._state_names)
    assert_same(out, ref)

def test_sso_runs_and_gives_finite_gradients():
    lif = Leaky(beta=0.9, spike_grad=surrogate.SSO())
    x = make_input(10).requires_grad_()
    spk_seq, mem_seq = neuron_sequence(lif, x)
    spk_seq.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

def test_no_grad_and_params_only():
    lif = Leaky(beta=0.9, learn_beta=True)
    with torch.no_grad():
        spk_seq, _ = neuron_sequence(lif, make_input(5))
    assert not spk_seq.requires_grad
    spk_seq, mem_seq = neuron_sequence(Leaky(beta=0.9), make_input(5))
    assert not spk_seq.requires_grad
    lif = Leaky(beta=0.9, learn_beta=True)
    neuron_sequence(lif, make_input(5))[1].sum().backward()
    assert lif.beta.grad is not None

def test_expanded_and_noncontiguous_inputs():
    x = make_input(6, B=2, N=3)
    for variant in (x[:1].expand(6, 2, 3), x.transpose(1, 2).contiguous().transpose(1, 2)):
        assert_same(neuron_sequence(Leaky(beta=0.9), variant), loop(Leaky(beta=0.9), variant, torch.zeros(2, 3)))

def test_spike_backward_matches_autograd_for_every_surrogate():
    u = torch.linspace(-2, 2, 41, dtype=torch.float64)
    grad = torch.linspace(0.5, 1.5, 41, dtype=torch.float64)
    for name, make in SURROGATES.items():
        fn = make()
        ui = u.clone().requires_grad_()
        fn(ui).backward(grad)
        assert_close(spike_backward(fn, u, grad), ui.grad, msg=name)

# ---------------------------------------------------------------------------------------------------------------
# snnTorch 1.0.0 as oracle.

@pytest.mark.parametrize("mech,delay", list(itertools.product(MECHS, DELAYS)))
def test_matches_snntorch(mech, delay):
    snntorch = pytest.importorskip("snntorch")
    x = make_input(30, B=2, N=6, scale=1.0)
    ref_lif = snntorch.Leaky(beta=0.85, reset_mechanism=mech, reset_delay=delay)
    xr = x.clone().requires_grad_()
    mem, spk_rec, mem_rec = ref_lif.init_leaky(), [], []
    for x_t in xr.unbind(0):
        spk, mem = ref_lif(x_t, mem); spk_rec.append(spk); mem_rec.append(mem)
    spk_ref, mem_ref = torch.stack(spk_rec), torch.stack(mem_rec)
    (spk_ref.sum() + mem_ref.pow(2).sum()).backward()
    xs = x.clone().requires_grad_()
    spk_seq, mem_seq = neuron_sequence(Leaky(beta=0.85, reset_mechanism=mech, reset_delay=delay), xs)
    (spk_seq.sum() + mem_seq.pow(2).sum()).backward()
    assert_close(spk_seq, spk_ref); assert_close(mem_seq, mem_ref); assert_close(xs.grad, xr.grad)

# ---------------------------------------------------------------------------------------------------------------
# The network engine.

def quickstart(seed=0, **kw):
    torch.manual_seed(seed)
    lif = lambda **k: Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid(slope=25), init_hidden=True, **k, **kw)
    return nn.Sequential(nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), lif(), nn.Conv2d(12, 64, 5), nn.MaxPool2d(2), lif(),
                         nn.Flatten(), nn.Linear(64 * 4 * 4, 10), lif(output=True))

def step_loop(net, x_seq):
    outs = [net(x_t) for x_t in x_seq.unbind(0)]
    return tuple(torch.stack(o) for o in zip(*outs)) if isinstance(outs[0], tuple) else torch.stack(outs)

@pytest.mark.parametrize("static", [True, False])
def test_quickstart_sequence_equals_step_loop(static):
    g = torch.Generator().manual_seed(0)
    data = torch.rand(3, 1, 28, 28, generator=g) * 3
    x_seq = data.expand(10, *data.shape) if static else torch.rand(10, 3, 1, 28, 28, generator=g) * 3
    res = []
    for runner in (step_loop, sequence):
        net = quickstart()
        spk_seq, mem_seq = runner(net, x_seq)
        torch.nn.functional.cross_entropy(spk_seq.flatten(0, 1), torch.arange(30) % 10).backward()
        res.append((spk_seq, mem_seq, *[p.grad for p in net.parameters()]))
    assert res[0][1].abs().sum() > 0 and all(g.abs().sum() > 0 for g in res[0][2:])   # not vacuous
    assert_same(*res)

def seed_net(seed=0):
    "The seed README's net: 8/16 channels."
    torch.manual_seed(seed)
    lif = lambda **k: Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid(slope=25), init_hidden=True, **k)
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.MaxPool2d(2), lif(), nn.Conv2d(8, 16, 5), nn.MaxPool2d(2), lif(),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10), lif(output=True))

@pytest.mark.parametrize("how", ["steps", "expand"])
def test_static_image_equals_step_loop(how):
    "A static image (`steps=T`, or a stride-0 `expand`): conv1 and pool1 run once, yet values and every gradient, the image's too, match the loop."
    g = torch.Generator().manual_seed(1)
    data = torch.rand(4, 1, 28, 28, generator=g) * 3
    res = []
    for runner in ("loop", how):
        net, x = seed_net(), data.clone().requires_grad_()
        if runner == "loop": spk_seq, mem_seq = step_loop(net, x.expand(12, *x.shape))
        elif runner == "steps": spk_seq, mem_seq = sequence(net, x, steps=12)
        else: spk_seq, mem_seq = sequence(net, x.expand(12, *x.shape))
        torch.nn.functional.cross_entropy(spk_seq.flatten(0, 1), torch.arange(48) % 10).backward()
        res.append((spk_seq, mem_seq, x.grad, *[p.grad for p in net.parameters()]))
    assert res[0][1].abs().sum() > 0 and all(g.abs().sum() > 0 for g in res[0][2:])   # membrane and every gradient non-zero
    assert_same(*res)

class _ConvCalls(torch.overrides.TorchFunctionMode):
    "Records the input shape of every convolution and max-pooling call (a hook would make `sequence` step the layer)."
    def __init__(self): super().__init__(); self.calls = []
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.conv2d, torch.nn.functional.max_pool2d): self.calls.append((func.__name__, tuple(args[0].shape)))
        return func(*args, **(kwargs or {}))

@pytest.mark.parametrize("how", ["steps", "expand"])
def test_static_image_runs_the_layers_before_the_first_neuron_once(how):
    net, x = seed_net(), torch.rand(4, 1, 28, 28)
    with _ConvCalls() as mode: sequence(net, x, steps=12) if how == "steps" else sequence(net, x.expand(12, *x.shape))
    assert mode.calls == [("conv2d", (4, 1, 28, 28)), ("max_pool2d", (4, 8, 24, 24)),      # conv1, pool1: once
                          ("conv2d", (48, 8, 12, 12)), ("max_pool2d", (48, 16, 8, 8))]   # conv2 sees all 12 steps, folded

def test_static_image_through_stateless_and_stepped_layers():
    "No neuron at all: the frame's output seen T times. A Dropout after the static layers is still stepped, a fresh mask each step."
    x = torch.rand(3, 4)
    lin = nn.Linear(4, 5)
    out = sequence(nn.Sequential(lin, nn.ReLU()), x, steps=6)
    assert out.shape == (6, 3, 5); assert_close(out, torch.relu(lin(x)).expand(6, 3, 5))
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), Leaky(beta=0.9, init_hidden=True))
    torch.manual_seed(7); a = step_loop(net(), x.expand(5, 3, 4))
    torch.manual_seed(7); b = sequence(net(), x, steps=5)
    assert_close(a, b)
    assert not torch.equal(b[0], b[1]) or not torch.equal(b[1], b[2])      # the mask changes over time

def test_steps_takes_one_frame_and_a_positive_whole_number():
    net = nn.Sequential(nn.Linear(4, 2), Leaky(beta=0.9, init_hidden=True))
    for bad in (0, -3):
        with pytest.raises(ValueError, match=re.escape("steps must be a positive integer (the number of time steps), got")):
            sequence(net, torch.rand(3, 4), steps=bad)
    for bad in (2.5, True, "5", 3.0, torch.tensor(2.0), torch.tensor([2, 3])):
        with pytest.raises(TypeError, match=re.escape("steps must be a positive integer (the number of time steps), got")):
            sequence(net, torch.rand(3, 4), steps=bad)
    for good in (np.int64(4), torch.tensor(4), torch.tensor([4])):                   # as snnTorch's counts: NumPy ints, 1-element tensors
        assert sequence(net, torch.rand(3, 4), steps=good).shape == (4, 3, 2)
    with pytest.raises(TypeError, match=re.escape("x_seq must be one frame: a tensor shaped (B, ...)")): sequence(net, [[0.1] * 4], steps=3)
    with pytest.raises(TypeError, match="floating-point"): sequence(net, torch.ones(3, 4, dtype=torch.long), steps=3)
    assert sequence(net, torch.rand(3, 4), steps=1).shape == (1, 3, 2)

def test_mlp_with_stepped_layers_and_nesting():
    "BatchNorm in training mode and Dropout are stepped (same numbers as the loop); nested Sequentials are flattened."
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16)),
                             Leaky(beta=0.9, init_hidden=True), nn.Linear(16, 5), nn.ReLU(), Leaky(beta=0.8, init_hidden=True))
    x_seq = make_input(7, B=4, N=12).reshape(7, 4, 3, 4)
    a, b = net(), net()
    out_a, out_b = step_loop(a, x_seq), sequence(b, x_seq)
    assert_close(out_a, out_b)
    out_a.sum().backward(); out_b.sum().backward()
    assert_same([p.grad for p in a.parameters()], [p.grad for p in b.parameters()])
    assert_close(a[1][1].running_mean, b[1][1].running_mean)

def test_dropout_in_training_is_stepped_in_order():
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), Leaky(beta=0.9, init_hidden=True))
    x_seq = make_input(5, B=2, N=4)
    torch.manual_seed(7); a = step_loop(net(), x_seq)
    torch.manual_seed(7); b = sequence(net(), x_seq)
    assert_close(a, b)

class ClampedLeaky(Leaky):
    "Overrides forward (clamps the membrane at -0.5): the fused path would bypass it."
    def forward(self, input_, mem=None):
        spk, mem = super().forward(input_, mem)
        self.mem = mem.clamp(min=-0.5)
        return self._output(spk, self.mem)

class NoisyLinear(nn.Linear):
    "Its own forward draws weight noise: neither folded nor run once on a static frame."
    def forward(self, x): return nn.functional.linear(x, self.weight + 0.5 * torch.randn_like(self.weight), self.bias)

def _lif(**kw): return Leaky(beta=0.8, threshold=0.25, init_hidden=True, **kw)

def _halved_output(neuron):
    "A forward hook that halves what `neuron` passes on: it must run at every step."
    neuron.register_forward_hook(lambda m, inp, out: out * 0.5)
    return neuron

def _shared_neuron_net():
    lif = Leaky(beta=0.9, init_hidden=True)
    return nn.Sequential(nn.Linear(4, 4), lif, nn.Linear(4, 4), lif)

def _hooked_nested(net):
    net[1].register_forward_pre_hook(lambda m, inp: (inp[0] + 0.3,))
    return net

EDGE_NETS = {   # name: (net builder, input, steps); every one differed from the loop (or raised) before its rule
    "subclass_forward_neuron": (lambda: ClampedLeaky(beta=0.9, init_hidden=True), lambda: torch.randn(8, 2, 4) * 2, None),
    "subclass_forward_in_net": (lambda: nn.Sequential(nn.Linear(6, 4), ClampedLeaky(beta=0.9, init_hidden=True, output=True)),
                                lambda: torch.randn(8, 2, 6) * 3, None),
    "hooked_neuron": (lambda: nn.Sequential(nn.Linear(6, 4), _halved_output(_lif()), nn.Linear(4, 3), _lif()),
                      lambda: torch.rand(6, 2, 6) * 3, None),
    "hooked_nested_sequential": (lambda: _hooked_nested(nn.Sequential(nn.Linear(6, 4), nn.Sequential(nn.ReLU(), _lif()))),
                                 lambda: torch.rand(6, 2, 6) * 2, None),
    "subclass_linear_static": (lambda: nn.Sequential(NoisyLinear(6, 8), _lif(output=True)), lambda: torch.rand(2, 6), 5),
    "subclass_linear_folded": (lambda: nn.Sequential(nn.Linear(6, 6), _lif(), NoisyLinear(6, 4), _lif()),
                               lambda: torch.rand(5, 2, 6) * 3, None),
    "batchnorm_no_running_stats": (lambda: nn.Sequential(nn.Linear(6, 4), _lif(), nn.Linear(4, 4),
                                                         nn.BatchNorm1d(4, track_running_stats=False)).eval(),
                                   lambda: torch.randn(5, 2, 6) * 2, None),
    "inplace_dropout_static": (lambda: nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5, inplace=True), _lif()).train(),
                               lambda: torch.rand(2, 6) * 2, 4),
    "inplace_dropout_after_neuron": (lambda: nn.Sequential(nn.Linear(6, 4), _lif(), nn.Dropout(0.5, inplace=True),
                                                           nn.Linear(4, 3), _lif()).train(), lambda: torch.rand(4, 2, 6) * 3, None),
    "flatten_minus2": (lambda: nn.Sequential(nn.Linear(6, 4), _lif(), nn.Flatten(-2)), lambda: torch.rand(4, 2, 6) * 3, None),
    "flatten_minus3": (lambda: nn.Sequential(nn.Linear(6, 4), _lif(), nn.Flatten(-3)), lambda: torch.rand(4, 2, 3, 6) * 3, None),
    "adaptive_maxpool_indices": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), _lif(), nn.AdaptiveMaxPool2d(2, return_indices=True)),
                                 lambda: torch.rand(4, 2, 1, 8, 8) * 3, None),
    "shared_neuron_instance": (_shared_neuron_net, lambda: torch.rand(6, 2, 4) * 3, None),
    "unbatched_input": (lambda: nn.Sequential(nn.Linear(6, 4), _lif(), nn.Linear(4, 3), _lif()), lambda: torch.rand(5, 6) * 3, None),
}

@pytest.mark.parametrize("name", list(EDGE_NETS))
def test_edge_cases_equal_the_step_loop(name):
    "Each rule of `sequence` (overridden forward, hooks, own-forward layers, batch statistics, in-place layers, Flatten"
    "reaching the batch, pooling indices, a module used twice, unbatched input): the loop's values and gradients."
    make, make_x, steps = EDGE_NETS[name]
    torch.manual_seed(1); x = make_x()
    res = []
    for runner in ("loop", "sequence"):
        torch.manual_seed(0); net = make()
        xi = x.clone().requires_grad_()
        torch.manual_seed(3)
        out = step_loop(net, xi.expand(steps, *xi.shape) if steps else xi) if runner == "loop" else sequence(net, xi, steps=steps)
        outs = out if isinstance(out, tuple) else (out,)
        w = torch.randn(outs[0].shape, generator=torch.Generator().manual_seed(2))
        loss = (outs[0] * w).sum() + sum(o.pow(2).sum() for o in outs[1:] if o.is_floating_point())
        params = [p for p in net.parameters() if p.requires_grad]
        res.append((*outs, *torch.autograd.grad(loss, [xi, *params])))
    assert res[0][0].abs().sum() > 0 and res[0][len(outs)].abs().sum() > 0       # output and input gradient not vacuous
    assert_same(*res)

def test_probe_monitors_record_the_loops_steps():
    "Monitors on neurons and linear layers: per layer, `sequence` records what the step loop records, step by step."
    from snnedu.functional.probe import InputMonitor, OutputMonitor
    from snnedu import utils
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), _lif(), nn.Linear(4, 3), _lif())
    def records(run):
        mons = [OutputMonitor(net, instance=Leaky), InputMonitor(net, instance=nn.Linear)]
        utils.reset(net)
        with torch.no_grad(): run()
        for mon in mons: mon.remove_hooks()
        return [(name, r) for mon in mons for name in mon.monitored_layers for r in mon[name]]
    x, frame = torch.rand(5, 2, 6) * 3, torch.rand(2, 6) * 3
    for ref, got in ((records(lambda: step_loop(net, x)), records(lambda: sequence(net, x))),
                     (records(lambda: step_loop(net, frame.expand(5, 2, 6))), records(lambda: sequence(net, frame, steps=5)))):
        assert len(ref) == 20 and [n for n, _ in got] == [n for n, _ in ref]      # 4 layers x 5 steps, in per-layer order
        for (_, r), (_, g) in zip(ref, got): assert_close(g, r)

def test_gradient_monitor_records_the_loops_steps():
    "A backward hook (GradOutputMonitor) on every layer: `sequence` steps them, so each sees the loop's T gradients."
    from snnedu.functional.probe import GradOutputMonitor
    from snnedu import utils
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), _lif(), nn.Linear(4, 3), _lif())
    x = torch.rand(5, 2, 6) * 3
    res = []
    for run in (step_loop, sequence):
        mon = GradOutputMonitor(net, instance=(nn.Linear, Leaky))
        utils.reset(net)
        with pytest.warns(UserWarning, match="no inputs require gradients"): run(net, x).sum().backward()
        res.append({name: mon[name] for name in mon.monitored_layers}); mon.remove_hooks()
    assert all(len(v) == 5 for v in res[1].values()) and res[0]["0"][0].abs().sum() > 0
    for name in res[0]: assert_close(res[1][name], res[0][name])

def test_stdp_learner_after_sequence_equals_the_loop():
    "STDPLearner pairs the synapse's inputs with the neuron's outputs it records: after `sequence` its update is the loop's."
    from snnedu.functional.stdp_learner import STDPLearner
    x = torch.rand(8, 2, 6) * 3
    deltas = []
    for runner in (step_loop, sequence):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 4), _lif(), nn.Linear(4, 3), _lif())
        learner = STDPLearner(net[2], net[3], tau_pre=2.0, tau_post=3.0)
        with torch.no_grad(): runner(net, x)
        deltas.append(learner.step(on_grad=False))
    assert deltas[0].abs().sum() > 0
    assert_close(*deltas)

def test_sequence_on_a_neuron_and_on_any_module():
    x = make_input(5)
    assert_close(sequence(Leaky(beta=0.9, init_hidden=True), x), step_loop(Leaky(beta=0.9, init_hidden=True), x))
    spk_seq, mem_seq = sequence(Leaky(beta=0.9), x)            # explicit mode returns (spk, mem) like forward
    class Custom(nn.Module):
        def __init__(self): super().__init__(); self.lin, self.lif = nn.Linear(4, 4), Leaky(beta=0.9, init_hidden=True)
        def forward(self, x): return self.lif(self.lin(x))
    torch.manual_seed(0); c1 = Custom()
    torch.manual_seed(0); c2 = Custom()
    assert_close(sequence(c1, x), step_loop(c2, x))

def test_gradient_into_a_channels_last_layer_is_channels_last():
    "A folded layer's channels-last output passes its gradient back channels-last (the pooling/conv backward then copies nothing); values unchanged."
    from snnedu.sequence import _GradChannelsLast, _channels_last
    y = torch.randn(6, 4, 3, 3).contiguous(memory_format=torch.channels_last).requires_grad_()
    z = _GradChannelsLast.apply(y)
    assert torch.equal(z, y) and _channels_last(z)
    g = torch.randn(6, 4, 3, 3)                                  # a plain (contiguous) gradient from the layer after
    z.backward(g)
    assert torch.equal(y.grad, g) and _channels_last(y.grad)
    assert not _channels_last(torch.randn(6, 4, 3, 3)) and not _channels_last(torch.randn(6, 1, 1, 1))

def test_time_folding_rules():
    from snnedu.sequence import _time_foldable
    assert _time_foldable(nn.Conv2d(1, 2, 3), 4) and _time_foldable(nn.Flatten(), 4) and _time_foldable(nn.Flatten(-3), 4)
    assert not _time_foldable(nn.Flatten(0), 4) and not _time_foldable(nn.Flatten(-4), 4) and not _time_foldable(nn.Dropout(), 2)
    assert not _time_foldable(nn.BatchNorm1d(3), 2) and _time_foldable(nn.BatchNorm1d(3).eval(), 2)
    assert not _time_foldable(nn.BatchNorm1d(3, track_running_stats=False).eval(), 2)
    assert not _time_foldable(nn.MaxPool2d(2, return_indices=True), 4) and not _time_foldable(nn.AdaptiveMaxPool2d(2, return_indices=True), 4)
    assert not _time_foldable(nn.Linear(3, 3), 1)                                   # unbatched: no batch to fold into
    class OwnForward(nn.Linear):
        def forward(self, x): return super().forward(x)
    class SameForward(nn.Linear): pass
    assert not _time_foldable(OwnForward(3, 3), 2) and _time_foldable(SameForward(3, 3), 2)
    lin = nn.Linear(3, 3); hook = lin.register_forward_pre_hook(lambda m, inp: None)
    assert not _time_foldable(lin, 2); hook.remove(); assert _time_foldable(lin, 2)
    assert not _time_foldable(Leaky(beta=0.5), 2)

# ---------------------------------------------------------------------------------------------------------------
# Bad input.

@pytest.mark.parametrize("call,exc,msg", [
    (lambda: neuron_sequence(Leaky(beta=0.9), [0.1, 0.2]), TypeError, "x_seq must be a tensor shaped (T, B, ...)"),
    (lambda: neuron_sequence(Leaky(beta=0.9), torch.zeros(0, 3)), ValueError, "at least one time step"),
    (lambda: neuron_sequence(Leaky(beta=0.9), torch.tensor(1.0)), ValueError, "at least one time step"),
    (lambda: neuron_sequence(Leaky(beta=0.9), torch.zeros(4, 3, dtype=torch.long)), TypeError, "floating-point"),
    (lambda: neuron_sequence(Leaky(beta=0.9), torch.zeros(4, 3), torch.zeros(2)), ValueError, "mem has shape (2,)"),
    (lambda: neuron_sequence(Leaky(beta=0.9), torch.zeros(4, 3), torch.zeros(3), torch.zeros(3)), TypeError, "takes at most 1 states"),
    (lambda: neuron_sequence(Leaky(beta=0.9), torch.zeros(4, 3), [0.0] * 3), TypeError, "mem must be a tensor"),
    (lambda: neuron_sequence(nn.ReLU(), torch.zeros(4, 3)), TypeError, "neuron must be a snnedu spiking neuron"),
    (lambda: neuron_sequence(Leaky(beta=0.9, init_hidden=True), torch.zeros(4, 3), torch.zeros(3)), TypeError, "keeps its own state"),
    (lambda: sequence(nn.Sequential(nn.Linear(3, 3)), "x"), TypeError, "x_seq must be a tensor"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=None) as info: call()
    assert msg in str(info.value), str(info.value)

@pytest.mark.parametrize("name", list(SURROGATES))
def test_inplace_surrogate_backward_is_bit_identical(name):
    fn = SURROGATES[name]()
    for dtype in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(0)
        u, grad = torch.randn(4096, generator=g).to(dtype) * 2, torch.randn(4096, generator=g).to(dtype)
        got = spike_backward_into(fn, u.clone(), grad, torch.empty_like(u))
        assert_close(got, spike_backward(fn, u, grad), rtol=0, atol=0, equal_nan=True)

def test_large_sequences_agree():
    "A 17 MB sequence: the numbers are those of the loop."
    x = make_input(33, B=128, N=1024, scale=0.6)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a = neuron_sequence(Leaky(beta=0.9), xa); b = loop(Leaky(beta=0.9), xb, torch.zeros(128, 1024))
    assert_same(a, b)
    a[0].sum().backward(); b[0].sum().backward()
    assert_close(xa.grad, xb.grad)


# ---------------------------------------------------------------------------------------------------------------
# Synaptic's fused path.

def run_synaptic(fn, kw, x, dtype):
    neuron = Synaptic(**kw).to(dtype)
    x = x.clone().requires_grad_()
    syn0 = (x[0].detach() * 0.5).requires_grad_(); mem0 = (x[1].detach().abs()).requires_grad_()
    spk_seq, syn_seq, mem_seq = fn(neuron, x, syn0, mem0)
    g = torch.Generator().manual_seed(1)
    w = [torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype) for _ in range(3)]
    loss = (spk_seq * w[0]).sum() + (syn_seq * w[1]).sum() + (mem_seq * w[2]).sum()
    grads = torch.autograd.grad(loss, [x, syn0, mem0, *neuron.parameters()])
    return (spk_seq.detach(), syn_seq.detach(), mem_seq.detach(), *grads)

@pytest.mark.parametrize("mech,T,dtype,learn", list(itertools.product(MECHS, (1, 2, 23), (torch.float32, torch.float64), (False, True))))
def test_synaptic_fused_equals_loop(mech, T, dtype, learn):
    kw = dict(alpha=torch.tensor([0.8, 0.6, 0.9, 1.0]), beta=0.7, threshold=torch.tensor([1.0, 0.9, 1.1, 1.0]), reset_mechanism=mech,
              learn_alpha=learn, learn_beta=learn, learn_threshold=learn)
    x = make_input(max(T, 2), dtype=dtype)[:T] if T > 1 else make_input(2, dtype=dtype)
    ref = run_synaptic(lambda n, x, s, m: sequence_loop(n, x, s, m), kw, x, dtype)
    assert_same(run_synaptic(neuron_sequence, kw, x, dtype), ref)

@pytest.mark.parametrize("name", ["atan", "fast_sigmoid", "triangular", "custom"])
def test_synaptic_surrogates(name):
    kw = dict(alpha=0.8, beta=0.9, spike_grad=SURROGATES[name](), learn_alpha=True, learn_beta=True)
    x = make_input(12, dtype=torch.float64)
    assert_same(run_synaptic(neuron_sequence, kw, x, torch.float64),
                run_synaptic(lambda n, x, s, m: sequence_loop(n, x, s, m), kw, x, torch.float64))

@pytest.mark.parametrize("mech", MECHS)
def test_synaptic_gradcheck(mech):
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(6, 2, 3, generator=g, dtype=torch.float64) * 0.8).requires_grad_()
    args = [torch.rand(2, 3, generator=g, dtype=torch.float64) * 0.5, torch.rand(2, 3, generator=g, dtype=torch.float64),
            torch.tensor([0.8, 0.5, 0.9], dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64),
            torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.3, dtype=torch.float64)]
    args = [a.requires_grad_() for a in args]
    f = lambda x, s, m, a, b, th, gg: SynapticSequence.apply(x, s, m, a, b, th, gg, smooth, mech)
    assert torch.autograd.gradcheck(f, (x, *args))

def test_synaptic_hidden_mode_state():
    n = Synaptic(alpha=0.8, beta=0.9, init_hidden=True)
    spk_seq, syn_seq, mem_seq = neuron_sequence(n, make_input(7))
    assert_close(n.syn, syn_seq[-1]); assert_close(n.mem, mem_seq[-1])

def test_recurrent_neuron_equals_forward():
    "RLeaky keeps its last spike as a state: neuron_sequence returns (spk_seq, mem_seq), like forward returns (spk, mem)."
    from snnedu.neurons.recurrent import RLeaky
    x = make_input(8, B=2, N=4)
    torch.manual_seed(0); a = RLeaky(beta=0.9, linear_features=4)
    torch.manual_seed(0); b = RLeaky(beta=0.9, linear_features=4)
    spk = mem = None
    recs = []
    for x_t in x:
        spk, mem = b(x_t, spk, mem); recs.append((spk, mem))
    assert_same(neuron_sequence(a, x), tuple(torch.stack(r) for r in zip(*recs)))


def _first(out): return out[0] if isinstance(out, tuple) else out

def test_whole_sequence_layers_get_the_whole_sequence():
    "StateLeaky / LinearLeaky / AssociativeLeaky take (T, B, ...) at once: `sequence` hands them all of it, alone or in a net."
    from snnedu import AssociativeLeaky, LinearLeaky, StateLeaky
    from snnedu.sequence import sequence
    torch.manual_seed(0)
    x = torch.rand(7, 3, 5)
    for neuron in (StateLeaky(beta=0.8, channels=5), LinearLeaky(beta=0.8, in_features=5, out_features=4),
                   AssociativeLeaky(in_dim=5, d_value=2, d_key=3, num_spiking_neurons=6)):
        assert_close(_first(sequence(neuron, x)), _first(neuron(x)))
        linear = nn.Linear(5, 5)
        net = nn.Sequential(linear, neuron, nn.Identity())
        assert_close(_first(sequence(net, x)), _first(neuron(linear(x))))
