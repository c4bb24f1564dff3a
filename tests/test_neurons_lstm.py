"""SLSTM and SConv2dLSTM against snnTorch 1.0.0 (weights copied) and against nn.LSTMCell; the input != hidden
memory fix; bad input."""
import inspect
import warnings

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snnedu as snn
from snnedu import surrogate
from snnedu.neurons.lstm import SConv2dLSTM, SLSTM, conv_lstm_cell, lstm_neuron_step

snntorch = pytest.importorskip("snntorch")

T = 6


def _make(cls_name, *args, **kw):
    "(snnTorch neuron, ours) with identical parameters: snnTorch's weights scaled x3 (so h reaches threshold), loaded into ours."
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(snntorch, cls_name)(*args, **kw)
        ours = getattr(snn, cls_name)(*args, **kw)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name != "threshold": p.mul_(3)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _run(neuron, x_seq, hidden):
    out, states = [], [torch.zeros(0), torch.zeros(0)]
    for x in x_seq:
        res = neuron(x) if hidden else neuron(x, *states)
        states = list(res[1:])
        out.append(res)
    return [torch.stack(s) for s in zip(*out)]


def _compare(ref, ours, x_shape, hidden):
    torch.manual_seed(1)
    x = (torch.randn(T, *x_shape)).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    res_ref, res_ours = _run(ref, x_ref, hidden), _run(ours, x, hidden)
    for a, b, name in zip(res_ours, res_ref, ["spk", "syn", "mem"]):
        assert_close(a, b, msg=name, atol=2e-6, rtol=1e-5)
    assert res_ours[0].sum() > 0 and (res_ours[0] == 0).any()
    weights = [torch.linspace(0.5, 1.5, r.numel()).view_as(r) for r in res_ref]
    loss = lambda res: sum((r * w).sum() for r, w in zip(res, weights))
    p_ref = {n: p for n, p in ref.named_parameters() if p.requires_grad}
    p_ours = {n: p for n, p in ours.named_parameters() if p.requires_grad}
    assert set(p_ours) == set(p_ref)
    g_ref = torch.autograd.grad(loss(res_ref), [x_ref, *p_ref.values()])
    g_ours = torch.autograd.grad(loss(res_ours), [x, *(p_ours[n] for n in p_ref)])
    for name, a, b in zip(["input", *p_ref], g_ours, g_ref):
        assert_close(a, b, msg=name, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("hidden", [False, True], ids=["explicit", "hidden"])
@pytest.mark.parametrize("reset_mechanism", ["none", "subtract", "zero"])
@pytest.mark.parametrize("learn_threshold", [False, True])
def test_slstm_parity_equal_sizes(reset_mechanism, hidden, learn_threshold):
    ref, ours = _make("SLSTM", 4, 4, threshold=0.2, reset_mechanism=reset_mechanism, learn_threshold=learn_threshold,
                      init_hidden=hidden, output=hidden)
    _compare(ref, ours, (3, 4), hidden)


@pytest.mark.parametrize("hidden", [False, True], ids=["explicit", "hidden"])
@pytest.mark.parametrize("reset_mechanism", ["none", "subtract", "zero"])
@pytest.mark.parametrize("pool", [{}, {"max_pool": 2}, {"avg_pool": 2}], ids=["no_pool", "max_pool", "avg_pool"])
@pytest.mark.parametrize("kernel_size", [3, (3, 1)])
def test_sconv2dlstm_parity(reset_mechanism, hidden, pool, kernel_size):
    ref, ours = _make("SConv2dLSTM", 2, 3, kernel_size, threshold=0.2, reset_mechanism=reset_mechanism,
                      learn_threshold=True, init_hidden=hidden, output=hidden, **pool)
    _compare(ref, ours, (2, 2, 4, 4), hidden)


EXTRAS = [dict(bias=False), dict(spike_grad=surrogate.fast_sigmoid(slope=10)), dict(surrogate_disable=True),
          dict(threshold=torch.tensor([0.1, 0.2, 0.3, 0.4]))]


@pytest.mark.parametrize("extra", EXTRAS, ids=[str(sorted(e)) for e in EXTRAS])
def test_slstm_options_parity(extra):
    kw = dict(threshold=0.2, reset_mechanism="subtract")
    kw.update(extra)
    ref, ours = _make("SLSTM", 4, 4, **kw)
    x = torch.randn(T, 3, 4)
    for a, b in zip(_run(ours, x, False), _run(ref, x, False)): assert_close(a, b)


def test_state_quant_parity():
    from snntorch.functional import quant
    ref, ours = _make("SLSTM", 4, 4, threshold=0.2, state_quant=quant.state_quant(num_bits=4, threshold=0.2))
    x = torch.randn(T, 3, 4)
    for a, b in zip(_run(ours, x, False), _run(ref, x, False)): assert_close(a, b)


def _lstm_oracle(cell, x_seq, threshold, reset_mechanism):
    "nn.LSTMCell stepped by hand, with the reset applied to h as documented."
    h = c = torch.zeros(x_seq.shape[1], cell.hidden_size)
    out = []
    for x in x_seq:
        r = (h > threshold).float()
        h, c = cell(x, (h, c))
        if reset_mechanism == "subtract": h = h - r * threshold
        elif reset_mechanism == "zero": h = (1 - r) * h
        out.append(((h > threshold).float(), c, h))
    return [torch.stack(s) for s in zip(*out)]


@pytest.mark.parametrize("hidden", [False, True], ids=["explicit", "hidden"])
@pytest.mark.parametrize("reset_mechanism", ["none", "subtract", "zero"])
@pytest.mark.parametrize("sizes", [(3, 5), (6, 2)])
def test_slstm_keeps_memory_when_sizes_differ(sizes, reset_mechanism, hidden):
    torch.manual_seed(0)
    ours = SLSTM(*sizes, threshold=0.1, reset_mechanism=reset_mechanism, init_hidden=hidden, output=hidden)
    with torch.no_grad():
        for p in ours.lstm_cell.parameters(): p.mul_(3)
    x = torch.randn(T, 2, sizes[0])
    res = _run(ours, x, hidden)
    expected = _lstm_oracle(ours.lstm_cell, x, 0.1, reset_mechanism)
    for a, b in zip(res, expected): assert_close(a, b)
    assert res[0].sum() > 0


def test_reference_slstm_is_memoryless_when_sizes_differ():
    "Documents the snnTorch 1.0.0 bug we fix: its state restarts from zero at every call."
    ref, ours = _make("SLSTM", 3, 5)
    x = torch.randn(2, 3)
    spk, syn, mem = ref(x)
    spk2, syn2, mem2 = ref(x, syn, mem)
    assert_close(mem2, mem)                                         # the same as a first step: no memory
    spk, syn, mem = ours(x)
    assert not torch.allclose(ours(x, syn, mem)[2], mem)


def test_lstm_neuron_step_with_lstmcell_and_conv_cell():
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 2)
    x = torch.randn(4, 3)
    h, c = cell(x, (torch.zeros(4, 2), torch.zeros(4, 2)))
    spk, syn, mem = lstm_neuron_step(x, torch.zeros(4, 2), torch.zeros(4, 2), cell, threshold=0.0)
    assert_close((syn, mem), (c, h)); assert_close(spk, (h > 0).float())
    conv = nn.Conv2d(1 + 2, 8, 3, padding=1)
    x, h0, c0 = torch.randn(2, 1, 5, 5), torch.randn(2, 2, 5, 5), torch.randn(2, 2, 5, 5)
    z = conv(torch.cat([x, h0], 1))
    i, f, o, g = z[:, 0:2].sigmoid(), z[:, 2:4].sigmoid(), z[:, 4:6].sigmoid(), z[:, 6:8].tanh()
    c = f * c0 + i * g
    assert_close(conv_lstm_cell(x, (h0, c0), conv), (o * c.tanh(), c))


def test_hidden_mode_and_reset():
    slstm = SLSTM(3, 5, init_hidden=True)
    out = slstm(torch.randn(2, 3))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    assert slstm.mem.shape == (2, 5) and slstm.mem.abs().sum() > 0
    other = SLSTM(3, 5, init_hidden=True); other(torch.randn(2, 3))
    slstm.reset_mem()
    assert slstm.mem.abs().sum() == 0 and slstm.syn.abs().sum() == 0 and other.mem.abs().sum() > 0
    SLSTM.reset_hidden()
    assert other.mem.abs().sum() == 0
    with pytest.raises(TypeError, match="keeps its own state"): slstm(torch.randn(2, 3), torch.zeros(2, 5))
    assert len(slstm.init_slstm()) == 2
    sconv = SConv2dLSTM(1, 2, 3, init_hidden=True, output=True)
    assert len(sconv(torch.rand(1, 1, 4, 4))) == 3 and len(sconv.init_sconv2dlstm()) == 2


def test_unbatched_and_dtypes():
    slstm = SLSTM(3, 5, threshold=0.01)
    spk, syn, mem = slstm(torch.randn(3))
    assert spk.shape == syn.shape == mem.shape == (5,)
    x64 = torch.randn(2, 3, dtype=torch.float64)
    assert all(t.dtype == torch.float64 for t in SLSTM(3, 5)(x64))
    assert all(t.dtype == torch.float64 for t in SLSTM(3, 5).double()(x64))
    assert all(t.dtype == torch.float64 for t in SConv2dLSTM(1, 2, 3)(torch.rand(1, 1, 4, 4, dtype=torch.float64)))


def test_gradcheck_float64():
    sconv = SConv2dLSTM(1, 1, 3, spike_grad=surrogate.straight_through_estimator()).double()
    x = torch.randn(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, c: sconv(x, c, torch.zeros_like(c))[1:], (x, c0))


def test_bad_input():
    with pytest.raises(ValueError, match="pass max_pool or avg_pool, not both"): SConv2dLSTM(1, 4, 3, max_pool=2, avg_pool=2)
    with pytest.raises(ValueError, match="max_pool must be 0"): SConv2dLSTM(1, 4, 3, max_pool=-1)
    with pytest.raises(ValueError, match="avg_pool must be 0"): SConv2dLSTM(1, 4, 3, avg_pool=1.5)
    with pytest.raises(ValueError, match=r"input_ must have shape \(B, 3\)"): SLSTM(3, 5)(torch.rand(2, 4))
    with pytest.raises(ValueError, match=r"input_ must have shape \(B, 3\)"): SLSTM(3, 5)(torch.rand(2, 2, 3))
    with pytest.raises(ValueError, match=r"syn has shape \(2, 3\)"):
        SLSTM(3, 5)(torch.rand(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"input_ must have shape \(B, 2, H, W\)"): SConv2dLSTM(2, 4, 3)(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="reset_mechanism must be"): SLSTM(3, 5, reset_mechanism="soft")
    with pytest.warns(UserWarning, match="ignores inhibition=True"): SLSTM(3, 5, inhibition=True)
    with pytest.raises(ValueError, match="kernel_size must be odd"): SConv2dLSTM(1, 2, 2)
    with pytest.raises(TypeError, match="kernel_size must be an integer"): SConv2dLSTM(1, 2, "3")
    with pytest.raises(ValueError, match="both"): snntorch.SConv2dLSTM(1, 4, 3, max_pool=2, avg_pool=2)


def test_state_dict_and_signatures_match_snntorch():
    for cls, args in (("SLSTM", (3, 5)), ("SConv2dLSTM", (2, 3, 3))):
        ref, ours = _make(cls, *args)
        assert set(ours.state_dict()) == set(ref.state_dict())
        sig = lambda f: [(p.name, p.default) for p in inspect.signature(f).parameters.values()]
        assert sig(getattr(snn, cls)) == sig(getattr(snntorch, cls))
        assert sig(getattr(snn, cls).forward) == sig(getattr(snntorch, cls).forward)
