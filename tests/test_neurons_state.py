"""StateLeaky and LinearLeaky against snnTorch 1.0.0 (values and gradients), plus snnTorch's own tests of them.

The second half adapts snnTorch's tests/test_snntorch/test_stateleaky.py and test_linearleaky.py
(github.com/jeshraghian/snntorch, MIT licence) with only the import changed; the chunking tests run at a
smaller size (T=4096, B=256 there: minutes on a CPU), with the same assertions.
"""
import importlib
import inspect
import warnings

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snnedu as snn
from snnedu.neurons.leaky import Leaky
from snnedu.neurons.state import LinearLeaky, StateLeaky, causal_conv, decay_kernel, state_leaky_mem

snntorch = pytest.importorskip("snntorch")

W = torch.linspace(0.5, 1.5, 3)


def _outs(module, x):
    x = x.clone().requires_grad_(True)
    out = module(x)
    out = out if isinstance(out, tuple) else (out,)
    loss = sum((o * W[: o.shape[-1]] if o.shape[-1] == 3 else o).sum() for o in out)
    if loss.requires_grad: loss.backward()
    grads = {n: p.grad for n, p in module.named_parameters() if p.requires_grad}
    return [o.detach() for o in out], x.grad, grads


STATE_GRID = [dict(beta=0.9), dict(beta=0.5, threshold=0.3), dict(beta=torch.tensor([0.9, 0.5, 0.1])),
              dict(beta=0.8, learn_beta=True), dict(beta=torch.tensor([0.95, 0.7, 0.3]), learn_beta=True, learn_threshold=True),
              dict(beta=0.7, kernel_truncation_steps=1), dict(beta=0.7, kernel_truncation_steps=4),
              dict(beta=0.7, kernel_truncation_steps=50), dict(beta=0.9, output=False), dict(beta=0.9, output=False, learn_beta=True),
              dict(beta=0.9, surrogate_disable=True), dict(beta=1.0), dict(beta=0.0),
              dict(beta=0.6, spike_grad="fast_sigmoid"), dict(beta=0.6, state_quant="quant")]


def _resolve(kw):
    kw = dict(kw)
    if kw.get("spike_grad") == "fast_sigmoid": kw["spike_grad"] = snntorch.surrogate.fast_sigmoid(slope=10)
    if kw.get("state_quant") == "quant": kw["state_quant"] = importlib.import_module("snntorch.functional.quant").state_quant(num_bits=4, uniform=True)
    return kw


@pytest.mark.parametrize("T", [1, 2, 13])
@pytest.mark.parametrize("kw", STATE_GRID, ids=[str(i) for i in range(len(STATE_GRID))])
def test_stateleaky_matches_snntorch(kw, T):
    kw = _resolve(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, ours = snntorch.StateLeaky(channels=3, **kw), StateLeaky(channels=3, **kw)
    ours.load_state_dict(ref.state_dict())
    torch.manual_seed(T)
    x = torch.randn(T, 4, 3) * 1.5
    (r_out, r_gx, r_g), (o_out, o_gx, o_g) = _outs(ref, x), _outs(ours, x)
    for a, b in zip(r_out, o_out): assert_close(b, a)
    assert_close(o_gx, r_gx)
    test_names = set(o_g)
    assert test_names <= set(r_g)           # snnTorch also has a dead `beta` parameter with learn_beta
    for n in test_names: assert_close(o_g[n], r_g[n], msg=n)


@pytest.mark.parametrize("kw", [dict(), dict(bias=False), dict(learn_beta=True, kernel_truncation_steps=3), dict(output=False)])
def test_linearleaky_matches_snntorch(kw):
    torch.manual_seed(0)
    ref = snntorch.LinearLeaky(beta=0.85, in_features=5, out_features=3, **kw)
    torch.manual_seed(0)                    # same seed, same weights: construction draws the same random numbers
    ours = LinearLeaky(beta=0.85, in_features=5, out_features=3, **kw)
    assert_close(ours.linear.weight, ref.linear.weight)
    x = torch.randn(11, 2, 5)
    (r_out, r_gx, r_g), (o_out, o_gx, o_g) = _outs(ref, x), _outs(ours, x)
    for a, b in zip(r_out, o_out): assert_close(b, a)
    assert_close(o_gx, r_gx)
    for n in o_g: assert_close(o_g[n], r_g[n], msg=n)


def test_graded_spikes_factor_applied_once():
    "snnTorch 1.0.0 scales StateLeaky spikes by g twice (g**2); we scale once (documented difference)."
    ref, ours = snntorch.StateLeaky(beta=0.9, channels=3, graded_spikes_factor=2.0), StateLeaky(beta=0.9, channels=3, graded_spikes_factor=2.0)
    x = torch.randn(6, 2, 3) * 2
    assert_close(ours(x)[0] * 2.0, ref(x)[0])
    assert set(ours(x)[0].unique().tolist()) <= {0.0, 2.0}


def test_equals_leaky_without_reset():
    "StateLeaky(beta) is Leaky(beta=exp(-1/tau), reset 'none'); the kernel beta**k is Leaky(beta)."
    beta = torch.tensor([0.2, 0.6, 0.97])
    x = torch.randn(30, 2, 3)
    sl = StateLeaky(beta=beta, channels=3, threshold=0.5)
    lif = Leaky(beta=torch.exp(-1 / sl.tau), reset_mechanism="none", threshold=0.5)
    mem, spk_rec, mem_rec = None, [], []
    for x_t in x.unbind(0):
        spk, mem = lif(x_t, mem)
        spk_rec.append(spk); mem_rec.append(mem)
    spk_seq, mem_seq = sl(x)
    assert_close(mem_seq, torch.stack(mem_rec)); assert_close(spk_seq, torch.stack(spk_rec))
    lif = Leaky(beta=beta, reset_mechanism="none")
    mem, mem_rec = None, []
    for x_t in x.unbind(0):
        _, mem = lif(x_t, mem); mem_rec.append(mem)
    assert_close(causal_conv(x, beta.reshape(-1, 1) ** torch.arange(30)), torch.stack(mem_rec))


def test_gradcheck_float64():
    x = torch.randn(7, 2, 3, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor([3.0, 1.5, 8.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, tau: state_leaky_mem(x, tau, 4), (x, tau))
    assert torch.autograd.gradcheck(lambda x, tau: state_leaky_mem(x, tau), (x, tau))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes(dtype):
    sl = StateLeaky(beta=torch.tensor([0.9, 0.5]), channels=2)
    x = torch.rand(5, 3, 2, dtype=dtype)
    spk, mem = sl(x)
    assert spk.dtype == mem.dtype == dtype
    assert_close(mem.float(), sl(x.float())[1], atol=0.05, rtol=0.02)
    ll = LinearLeaky(beta=0.9, in_features=2, out_features=4, dtype=torch.float64)      # snnTorch raises in conv1d here
    assert ll(torch.rand(5, 3, 2, dtype=torch.float64))[1].dtype == torch.float64


def test_sequence_protocol_and_repeat_calls():
    sl = StateLeaky(beta=0.8, channels=3, output=False)
    x = torch.randn(6, 2, 3)
    spk_seq, mem_seq = sl.sequence(x)
    assert_close(mem_seq, sl(x)); assert_close(mem_seq, sl(x))            # no state carried between calls
    assert_close(spk_seq, (mem_seq > 1).float())
    ll = LinearLeaky(beta=0.8, in_features=2, out_features=3)
    assert [t.shape for t in ll.sequence(torch.rand(4, 1, 2))] == [(4, 1, 3), (4, 1, 3)]


def test_state_dict_roundtrip_and_snntorch_checkpoint(tmp_path):
    ours = StateLeaky(beta=torch.tensor([0.9, 0.5]), channels=2, learn_beta=True)
    with torch.no_grad(): ours.tau.mul_(1.5)
    torch.save(ours.state_dict(), tmp_path / "sl.pt")
    fresh = StateLeaky(beta=torch.tensor([0.1, 0.1]), channels=2, learn_beta=True)
    fresh.load_state_dict(torch.load(tmp_path / "sl.pt"))
    x = torch.randn(5, 1, 2)
    assert_close(fresh(x)[1], ours(x)[1])
    ref = snntorch.StateLeaky(beta=torch.tensor([0.3, 0.6]), channels=2, learn_beta=True)
    fresh.load_state_dict(ref.state_dict())                                 # strict: the stale `beta` is skipped
    assert_close(fresh.beta, ref.beta)
    assert fresh.reset_mechanism == "none"
    assert [n for n, _ in fresh.named_parameters()] == ["tau"]


def test_top_level_and_signatures():
    assert snn.StateLeaky is StateLeaky and snn.LinearLeaky is LinearLeaky
    for ours, ref in ((StateLeaky, snntorch.StateLeaky), (LinearLeaky, snntorch.LinearLeaky)):
        assert str(inspect.signature(ours)) == str(inspect.signature(ref))
    assert isinstance(StateLeaky(0.9, 2), snn.LIF)


BAD = [(lambda: StateLeaky(0.9, 3, kernel_truncation_steps=0), ValueError, "kernel_truncation_steps must be a positive integer"),
       (lambda: StateLeaky(0.9, 3, kernel_truncation_steps=-2), ValueError, "kernel_truncation_steps must be a positive integer"),
       (lambda: StateLeaky(0.9, 3, kernel_truncation_steps=2.5), TypeError, "kernel_truncation_steps must be a positive integer or None"),
       (lambda: StateLeaky(0.9, 0), ValueError, "channels must be a positive integer"),
       (lambda: StateLeaky(0.9, "3"), TypeError, "channels must be a positive integer"),
       (lambda: StateLeaky(torch.tensor([0.9, 0.8]), 3), ValueError, "shape (3,) for channels=3"),
       (lambda: StateLeaky(-0.1, 3), ValueError, "beta must be in [0, 1]"),
       (lambda: StateLeaky(0.9, 3)(torch.rand(4, 2, 5)), ValueError, "(T, B, channels) = (T, B, 3)"),
       (lambda: StateLeaky(0.9, 3)(torch.rand(4, 3)), ValueError, "add a batch dimension"),
       (lambda: StateLeaky(0.9, 3)(torch.rand(0, 2, 3)), ValueError, "got shape (0, 2, 3)"),
       (lambda: StateLeaky(0.9, 3)(torch.ones(4, 2, 3, dtype=torch.long)), TypeError, "floating-point"),
       (lambda: StateLeaky(0.9, 3)([1.0]), TypeError, "must be a tensor"),
       (lambda: LinearLeaky(0.9, 4, 3)(torch.rand(4, 2, 3)), ValueError, "(T, B, in_features) = (T, B, 4)"),
       (lambda: LinearLeaky(0.9, 0, 3), ValueError, "in_features must be a positive integer"),
       (lambda: StateLeaky(0.9, 3).fire_inhibition(1, torch.zeros(1, 3)), NotImplementedError, "no inhibition"),
       (lambda: StateLeaky(0.9, 3).mem_reset(torch.zeros(1, 3)), NotImplementedError, "never resets")]


@pytest.mark.parametrize("make, error, message", BAD)
def test_bad_input(make, error, message):
    with pytest.raises(error) as info: make()
    assert message in str(info.value)


# ---- snnTorch 1.0.0's own tests (tests/test_snntorch/test_stateleaky.py, test_linearleaky.py), import changed ----

def _ramp(timesteps=5, batch=1, channels=1):
    return (torch.arange(0, timesteps).float().view(timesteps, 1, 1) / timesteps).expand(timesteps, batch, channels)


@pytest.mark.parametrize("batch, channels", [(1, 1), (1, 4), (2, 1), (2, 4)])
def test_snntorch_stateleaky_channel_configurations(batch, channels):
    lif = StateLeaky(beta=0.9, channels=channels, output=False)
    x = _ramp(5, batch, channels)
    output = lif.forward(x)
    assert x.shape == output.shape and (x <= 1).all() and (output > 1).any()


def test_snntorch_stateleaky_multi_beta_forward():
    lif = StateLeaky(beta=torch.tensor([0.9] * 4), channels=4, learn_beta=True, output=False)
    x = _ramp(5, 1, 4)
    output = lif.forward(x)
    assert x.shape == output.shape and (output > 1).any()
    assert isinstance(lif.tau, nn.Parameter)


def _chunking(make_module, project, channels=8, batch_size=32, chunk_size=8, timesteps=256):
    x = torch.arange(1, timesteps * batch_size * channels + 1, dtype=torch.float32).view(batch_size, channels, timesteps).permute(2, 0, 1)
    module, weight = make_module(channels)
    module.zero_grad()
    spk_full, _ = project(module, x)
    spk_full.sum().backward()
    grad_full = weight.grad.clone()
    module.zero_grad()
    chunks = []
    for b in range(0, batch_size, chunk_size):
        spk, _ = project(module, x[:, b:b + chunk_size, :])
        chunks.append(spk); spk.sum().backward()
        assert weight.grad is not None
    assert spk_full.shape == torch.cat(chunks, dim=1).shape
    assert torch.allclose(spk_full, torch.cat(chunks, dim=1), atol=1e-6)
    assert torch.allclose(grad_full, weight.grad, atol=1e-6)


def test_snntorch_stateleaky_chunking_with_gd():
    def make(c):
        m = nn.ModuleDict(dict(linear=nn.Linear(c, c, bias=False), lif=StateLeaky(beta=torch.full((c,), 0.9), channels=c)))
        return m, m["linear"].weight
    _chunking(make, lambda m, x: m["lif"](m["linear"](x)))


def test_snntorch_linearleaky_chunking_with_gd_internal_linear():
    def make(c):
        m = LinearLeaky(beta=torch.full((c,), 0.9), in_features=c, out_features=c, output=True, bias=False)
        return m, m.linear.weight
    _chunking(make, lambda m, x: m(x))


@pytest.mark.parametrize("cls", ["StateLeaky", "LinearLeaky"])
def test_snntorch_kernel_truncation_impulse(cls):
    beta = torch.tensor([0.9, 0.8, 0.7])
    x = torch.zeros(10, 1, 3); x[0, 0, :] = 1.0
    def make(**kw):
        if cls == "StateLeaky": return StateLeaky(beta=beta, channels=3, output=False, **kw)
        m = LinearLeaky(beta=beta, in_features=3, out_features=3, output=False, **kw)
        with torch.no_grad(): m.linear.weight.copy_(torch.eye(3)); m.linear.bias.zero_()
        return m
    out_full, out_trunc = make().forward(x), make(kernel_truncation_steps=4).forward(x)
    expected_full = torch.exp(-torch.arange(10).view(10, 1, 1) / (1 / (1 - beta)).view(1, 1, 3))
    expected_trunc = expected_full.clone(); expected_trunc[4:] = 0.0
    assert torch.allclose(out_full, expected_full, atol=1e-6)
    assert torch.allclose(out_trunc, expected_trunc, atol=1e-6)
    assert not torch.allclose(out_full[4:], out_trunc[4:], atol=1e-8)


def test_snntorch_fail_fast_unimplemented_apis():
    for lif in (StateLeaky(beta=0.9, channels=2, output=False), LinearLeaky(beta=0.9, in_features=2, out_features=2, output=False)):
        with pytest.raises(NotImplementedError): lif.fire_inhibition(batch_size=1, mem=torch.zeros(1, 2))
        with pytest.raises(NotImplementedError): lif.mem_reset(torch.zeros(1, 2))


@pytest.mark.parametrize("kw", [dict(spike_grad=lambda x: x), dict(surrogate_disable=True), dict(learn_threshold=True),
                                dict(graded_spikes_factor=2.0), dict(learn_graded_spikes_factor=True)])
def test_snntorch_warn_on_inert_spike_settings(kw):
    with pytest.warns(UserWarning): StateLeaky(beta=0.9, channels=2, output=False, **kw)
    with pytest.warns(UserWarning): LinearLeaky(beta=0.9, in_features=2, out_features=2, output=False, **kw)


def test_snntorch_linearleaky_shapes_and_equivalence():
    y = LinearLeaky(beta=0.9, in_features=3, out_features=5, output=False)(torch.randn(7, 3, 3))
    assert y.shape == (7, 3, 5)
    torch.manual_seed(0)
    x = torch.randn(8, 2, 4)
    beta = torch.full((4,), 0.9)
    ext = nn.Linear(4, 4)
    ref = StateLeaky(beta=beta, channels=4, output=True)
    ut = LinearLeaky(beta=beta, in_features=4, out_features=4, output=True)
    with torch.no_grad(): ut.linear.weight.copy_(ext.weight); ut.linear.bias.copy_(ext.bias)
    (spk_ref, mem_ref), (spk_ut, mem_ut) = ref(ext(x)), ut(x)
    assert torch.allclose(mem_ref, mem_ut, atol=1e-6) and torch.allclose(spk_ref, spk_ut, atol=1e-6)


def test_mixed_network_matches_snntorch():
    "A snnTorch-style network mixing Leaky (hidden state), LinearLeaky, StateLeaky, BatchNormTT1d and GradedSpikes."
    def run(snn):
        torch.manual_seed(19)
        leaky = snn.Leaky(beta=torch.full((4,), 0.65), threshold=0.35, init_hidden=True, output=True, learn_beta=True, learn_threshold=True)
        lin = snn.LinearLeaky(beta=torch.full((3,), 0.8), in_features=4, out_features=3, output=True, learn_beta=True, learn_threshold=True)
        st = snn.StateLeaky(beta=torch.full((3,), 0.75), channels=3, output=True, learn_beta=True, learn_threshold=True)
        bn, gs = snn.BatchNormTT1d(3, 5), snn.GradedSpikes(3, None)
        x = torch.linspace(0, 1, 60).reshape(5, 3, 4)
        for _ in range(2):                                       # twice: the reset must give the same numbers again
            leaky.reset_mem()
            ls, lm = (torch.stack(r) for r in zip(*[leaky(x_t) for x_t in x.unbind(0)]))
            s1, m1 = lin(ls)
            s2, m2 = st(s1)
            b = torch.stack([bn[t](m1[t]) for t in range(5)])
        (lm.sum() + m1.sum() + m2.sum() + b.sum() + gs(s2.unsqueeze(-1)).sum()).backward()   # (..., N, 1): snnTorch's layout
        grads = {f"{i}.{n}": p.grad for i, m in enumerate((leaky, lin, st, bn, gs)) for n, p in m.named_parameters() if p.grad is not None}
        return [ls, lm, s1, m1, s2, m2, b, gs(s2.unsqueeze(-1))], grads
    ours, g_ours = run(snn)
    ref, g_ref = run(snntorch)
    for a, b in zip(ours, ref): assert_close(a, b)
    assert set(g_ours) <= set(g_ref)
    bad = [n for n in g_ours if not torch.allclose(g_ours[n], g_ref[n], rtol=1.3e-6, atol=1e-5)]
    assert not bad, [(n, g_ours[n], g_ref[n]) for n in bad]
