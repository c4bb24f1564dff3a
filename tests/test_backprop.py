"""snnedu.backprop: BPTT / TBPTT equal snnTorch 1.0.0's numbers; RTRL's gradients equal BPTT's; bad input is explained.

snnTorch's own `tests/test_backprop.py` (github.com/jeshraghian/snntorch, v1.0.0) has its only test commented out
and keeps just the imports; `test_snntorch_suite_imports` is that file with the import changed. Older versions of
that test call a pre-1.0 API (`TBPTT(net, data=..., target=..., batch_size=...)`) that snnTorch 1.0.0 itself rejects.
"""
import inspect
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st_h
from torch import nn
from torch.testing import assert_close

import snnedu as snn
import snnedu.functional as SF
from snnedu import backprop

st = pytest.importorskip('snntorch')
with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    from snntorch import backprop as rbackprop
import snntorch.functional as RF

def test_snntorch_suite_imports():
    import snnedu.backprop as bp          # snnTorch: `import snntorch.backprop as bp`
    assert callable(bp.BPTT) and callable(bp.TBPTT) and callable(bp.RTRL)

# ---- twins: the same network in snnedu and in snnTorch ------------------------------------------------------------
LAST = {  # last neuron, built with output=True: snnedu class, snnTorch class, kwargs
    'leaky': (snn.Leaky, st.Leaky, dict(beta=0.8)),
    'synaptic': (snn.Synaptic, st.Synaptic, dict(alpha=0.7, beta=0.8)),
    'alpha': (snn.Alpha, st.Alpha, dict(alpha=0.9, beta=0.8)),
}

def nets(last='leaky', seed=0, dtype=torch.float32):
    ours_cls, ref_cls, kw = LAST[last]
    torch.manual_seed(seed)
    ours = nn.Sequential(nn.Linear(4, 5), snn.Leaky(beta=0.9, init_hidden=True), nn.Linear(5, 3),
                         ours_cls(**kw, init_hidden=True, output=True)).to(dtype)
    ref = nn.Sequential(nn.Linear(4, 5), st.Leaky(beta=0.9, init_hidden=True), nn.Linear(5, 3),
                        ref_cls(**kw, init_hidden=True, output=True)).to(dtype)
    with torch.no_grad():
        for i in (0, 2):
            ref[i].weight.copy_(ours[i].weight); ref[i].bias.copy_(ours[i].bias)
    return ours, ref

def linear_weights(net): return [p.detach().clone() for i in (0, 2) for p in (net[i].weight, net[i].bias)]

def static_loader(n=12, batch_size=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 4, generator=g) * 3, torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)

def seq_loader(T=6, n=8, batch_size=4, seed=2, time_first=True):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, T, 4, generator=g) * 3, torch.randint(0, 3, (n,), generator=g)    # dataset of (T, 4) samples
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)
    if not time_first: return loader                                                      # batches (B, T, 4)
    return [(d.transpose(0, 1).contiguous(), t) for d, t in loader]                       # batches (T, B, 4)

LOSSES = {  # name: (snnedu loss, snnTorch loss)
    'ce_rate_loss': (SF.ce_rate_loss, RF.ce_rate_loss),
    'ce_count_loss': (SF.ce_count_loss, RF.ce_count_loss),
    'mse_count_loss': (lambda: SF.mse_count_loss(0.8, 0.1), lambda: RF.mse_count_loss(0.8, 0.1)),
    'mse_membrane_loss': (SF.mse_membrane_loss, RF.mse_membrane_loss),
    'ce_max_membrane_loss': (SF.ce_max_membrane_loss, RF.ce_max_membrane_loss),
}

def train_both(helper, ours, ref, loader, loss, reg=False, epochs=2, lr=0.1, **kw):
    out = []
    for net, lib, bp in ((ours, 0, backprop), (ref, 1, rbackprop)):
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        criterion = LOSSES[loss][lib]()
        regularization = (SF.l1_rate_sparsity(1e-3) if lib == 0 else RF.l1_rate_sparsity(1e-3)) if reg else False
        out.append([getattr(bp, helper)(net, loader, opt, criterion, regularization=regularization, **kw).detach().item() for _ in range(epochs)])
    return out

# ---- parity with snnTorch ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('loss', list(LOSSES))
@pytest.mark.parametrize('last', list(LAST))
def test_bptt_static_matches_snntorch(loss, last):
    ours, ref = nets(last)
    a, b = train_both('BPTT', ours, ref, static_loader(), loss, num_steps=4, time_var=False)
    assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-5, atol=1e-6)
    for p, q in zip(linear_weights(ours), linear_weights(ref)): assert_close(p, q, rtol=1e-5, atol=1e-6)

@pytest.mark.parametrize('time_first', [True, False])
def test_bptt_time_varying_matches_snntorch(time_first):
    ours, ref = nets()
    a, b = train_both('BPTT', ours, ref, seq_loader(time_first=time_first), 'ce_rate_loss', reg=True, time_first=time_first)
    assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-5, atol=1e-6)
    for p, q in zip(linear_weights(ours), linear_weights(ref)): assert_close(p, q, rtol=1e-5, atol=1e-6)

@pytest.mark.parametrize('loss', ['ce_rate_loss', 'mse_membrane_loss'])
@pytest.mark.parametrize('K', [1, 2, 3])
def test_tbptt_static_matches_snntorch(loss, K):
    ours, ref = nets()
    num_steps = 6                                             # K = 1, 2, 3 divide it: snnTorch's mean loss is ours too
    a, b = train_both('TBPTT', ours, ref, static_loader(), loss, num_steps=num_steps, time_var=False, K=K)
    assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-5, atol=1e-6)
    for p, q in zip(linear_weights(ours), linear_weights(ref)): assert_close(p, q, rtol=1e-5, atol=1e-6)

@pytest.mark.parametrize('count', [np.int64, torch.tensor], ids=['numpy', 'tensor'])
def test_counts_may_be_numpy_or_tensor_integers(count):
    "num_steps and K from a config array or tensor (snnTorch accepts them): the same training as with Python ints."
    ours, ref = nets()
    a, b = train_both('TBPTT', ours, ref, static_loader(), 'ce_rate_loss', num_steps=count(6), time_var=False, K=count(2))
    assert_close(torch.tensor(a), torch.tensor(b), rtol=1e-5, atol=1e-6)
    for p, q in zip(linear_weights(ours), linear_weights(ref)): assert_close(p, q, rtol=1e-5, atol=1e-6)

def test_tbptt_remainder_chunk():
    "K=3 over 5 steps: weights as snnTorch; the mean loss weights the 2-step chunk by 2/5 (snnTorch divides it by 2)."
    ours, ref = nets()
    loader = [next(iter(static_loader()))]
    a, b = train_both('TBPTT', ours, ref, loader, 'ce_rate_loss', epochs=1, num_steps=5, time_var=False, K=3)
    for p, q in zip(linear_weights(ours), linear_weights(ref)): assert_close(p, q, rtol=1e-5, atol=1e-6)
    ours, _ = nets()                                          # the chunks' losses with the weights before each update
    frozen = torch.optim.SGD(ours.parameters(), lr=0.0)
    x, y = loader[0]
    snn.utils.reset(ours)
    spk = torch.stack([ours(x)[0] for _ in range(5)])
    want = (3 * SF.ce_rate_loss()(spk[:3], y) + 2 * SF.ce_rate_loss()(spk[3:], y)) / 5
    assert_close(backprop.TBPTT(ours, loader, frozen, SF.ce_rate_loss(), num_steps=5, time_var=False, K=3), want.detach())

def test_snntorch_rtrl_is_our_tbptt_k1():
    ours, ref = nets()
    opt_a, opt_b = torch.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(ref.parameters(), lr=0.1)
    a = backprop.TBPTT(ours, static_loader(), opt_a, SF.ce_rate_loss(), num_steps=4, time_var=False, K=1)
    b = rbackprop.RTRL(ref, static_loader(), opt_b, RF.ce_rate_loss(), num_steps=4, time_var=False)
    assert_close(a, b.detach().reshape(()), rtol=1e-5, atol=1e-6)
    for p, q in zip(linear_weights(ours), linear_weights(ref)): assert_close(p, q, rtol=1e-5, atol=1e-6)

def test_snntorch_tbptt_time_varying_crashes_ours_works():
    ours, ref = nets()
    with pytest.raises(UnboundLocalError):                    # snnTorch issues #172 / #191
        rbackprop.TBPTT(ref, seq_loader(), torch.optim.SGD(ref.parameters(), lr=0.1), RF.ce_rate_loss(), K=2)
    a = backprop.TBPTT(ours, seq_loader(), torch.optim.SGD(ours.parameters(), lr=0.0), SF.ce_rate_loss(), K=6)
    b = backprop.BPTT(ours, seq_loader(), torch.optim.SGD(ours.parameters(), lr=0.0), SF.ce_rate_loss())
    assert_close(a, b)

def test_time_varying_targets_restart_each_batch():
    "mse_membrane_loss(time_var_targets=True): each chunk gets its slice of the (T, B) targets, in every batch."
    ours, _ = nets()
    g = torch.Generator().manual_seed(3)
    batches = [(torch.rand(4, 2, 4, generator=g), torch.randint(0, 3, (4, 2), generator=g)) for _ in range(2)]
    frozen = torch.optim.SGD(ours.parameters(), lr=0.0)
    got = backprop.TBPTT(ours, batches, frozen, SF.mse_membrane_loss(time_var_targets=True), K=2)
    want = 0
    for x, y in batches:
        snn.utils.reset(ours)
        mem = torch.stack([ours(xt)[1] for xt in x])
        want = want + sum(SF.mse_membrane_loss(time_var_targets=True)(mem[a:a + 2], y[a:a + 2]) for a in (0, 2)) / 2
    assert_close(got, (want / 2).detach())

def test_signatures_match_snntorch():
    for name in ('BPTT', 'TBPTT', 'RTRL'):
        ref = list(inspect.signature(getattr(rbackprop, name)).parameters.values())
        ours = list(inspect.signature(getattr(backprop, name)).parameters.values())
        assert [(p.name, p.default) for p in ours[:len(ref)]] == [(p.name, p.default) for p in ref], name
        assert all(p.default is not p.empty for p in ours[len(ref):]), name     # extras are trailing, with defaults

# ---- RTRL: real-time recurrent learning ----------------------------------------------------------------------------
def rtrl_net(kind, seed=0):
    torch.manual_seed(seed)
    hidden = {'leaky': lambda: snn.Leaky(beta=0.9, init_hidden=True, learn_beta=True, learn_threshold=True),
              'synaptic': lambda: snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True),
              'rleaky': lambda: snn.RLeaky(beta=0.9, linear_features=5, init_hidden=True),
              'zero_reset': lambda: snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism='zero'),
              'alpha': lambda: snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True),
              'rsynaptic': lambda: snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=5, init_hidden=True),
              'slstm': lambda: snn.SLSTM(5, 5, init_hidden=True)}[kind]()
    return nn.Sequential(nn.Linear(4, 5), hidden, nn.Linear(5, 3), snn.Leaky(beta=0.8, init_hidden=True, output=True)).double()

class Recorder(torch.optim.SGD):
    "SGD that also sums the gradients it is given at each step."
    def __init__(self, params, lr):
        self.params = list(params); super().__init__(self.params, lr=lr)
        self.total = [torch.zeros_like(p) for p in self.params]
    def step(self, closure=None):
        for t, p in zip(self.total, self.params): t += p.grad
        return super().step(closure)

@pytest.mark.parametrize('kind', ['leaky', 'synaptic', 'rleaky', 'zero_reset', 'alpha', 'rsynaptic', 'slstm'])
def test_rtrl_gradient_equals_bptt(kind):
    "lr = 0: the sum of RTRL's per-step gradients is T x the BPTT gradient of ce_rate_loss (a mean over T steps)."
    T = 6
    batch = [(d.double(), t) for d, t in seq_loader(T=T, n=4)][:1]
    net = rtrl_net(kind)
    rec = Recorder(net.parameters(), lr=0.0)
    backprop.RTRL(net, batch, rec, SF.ce_rate_loss())
    net_b = rtrl_net(kind)
    rec_b = Recorder(net_b.parameters(), lr=0.0)
    backprop.BPTT(net_b, batch, rec_b, SF.ce_rate_loss())
    assert any(t.abs().sum() > 0 for t in rec_b.total)
    for a, b in zip(rec.total, rec_b.total): assert_close(a / T, b, rtol=1e-9, atol=1e-12)

@settings(max_examples=12, deadline=None)
@given(beta=st_h.floats(0.3, 0.95), T=st_h.integers(1, 5), B=st_h.integers(1, 3), seed=st_h.integers(0, 10_000),
       time_first=st_h.booleans())
def test_rtrl_gradient_equals_bptt_random(beta, T, B, seed, time_first):
    "Property: for random networks, inputs and lengths, RTRL's summed gradients are T x BPTT's (mse_membrane_loss)."
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(T, B, 4, generator=g, dtype=torch.float64) * 3, torch.randint(0, 3, (B,), generator=g)
    batch = [(x if time_first else x.transpose(0, 1), y)]
    def net():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(4, 5), snn.Leaky(beta=beta, init_hidden=True), nn.Linear(5, 3),
                             snn.Leaky(beta=beta, init_hidden=True, output=True)).double()
    a, b = net(), net()
    ra, rb = Recorder(a.parameters(), lr=0.0), Recorder(b.parameters(), lr=0.0)
    backprop.RTRL(a, batch, ra, SF.mse_membrane_loss(), time_first=time_first)
    backprop.BPTT(b, batch, rb, SF.mse_membrane_loss(), time_first=time_first)
    for u, v in zip(ra.total, rb.total): assert_close(u / T, v, rtol=1e-9, atol=1e-12)

def test_float64_network():
    ours, _ = nets(dtype=torch.float64)
    loader = [(x.double(), y) for x, y in static_loader()]
    loss = backprop.TBPTT(ours, loader, torch.optim.SGD(ours.parameters(), lr=0.1), SF.ce_rate_loss(), num_steps=4, time_var=False, K=2)
    assert loss.dtype == torch.float64 and torch.isfinite(loss)
    ref, _ = nets()
    loss32 = backprop.TBPTT(ref, static_loader(), torch.optim.SGD(ref.parameters(), lr=0.1), SF.ce_rate_loss(), num_steps=4, time_var=False, K=2)
    assert_close(loss.float(), loss32, rtol=1e-4, atol=1e-5)

def test_rtrl_is_not_truncated_bptt():
    "With memory (beta > 0) the one-step truncation (snnTorch's RTRL) gives other gradients than RTRL."
    batch = [(d.double(), t) for d, t in seq_loader(T=6, n=4)][:1]
    net, net_t = rtrl_net('leaky'), rtrl_net('leaky')
    rec, rec_t = Recorder(net.parameters(), lr=0.0), Recorder(net_t.parameters(), lr=0.0)
    backprop.RTRL(net, batch, rec, SF.ce_rate_loss())
    backprop.TBPTT(net_t, batch, rec_t, SF.ce_rate_loss(), K=1)
    assert (rec.total[0] - rec_t.total[0]).abs().max() > 1e-6

def test_sensitivity_matches_finite_differences_free_dynamics():
    "No reset (threshold never reached): J = dU_t/dW is exact calculus, checked against torch.autograd.functional.jacobian."
    torch.manual_seed(0)
    lin, lif = nn.Linear(3, 2).double(), snn.Leaky(beta=0.7, threshold=1e3, init_hidden=True).double()
    net, x = nn.Sequential(lin, lif), torch.rand(5, 2, 3, dtype=torch.float64)
    sens = backprop.Sensitivity(net, [lin.weight])
    snn.utils.reset(net)
    for xt in x: sens.step(xt, lambda out: out.sum())
    def mem_after(w): 
        mem = torch.zeros(2, 2, dtype=torch.float64)
        for xt in x: mem = 0.7 * mem + xt @ w.T + lin.bias
        return mem
    jac = torch.autograd.functional.jacobian(mem_after, lin.weight.detach())      # (2, 2, 2, 3)
    assert_close(sens.J, jac.reshape(2, 2, 6))

def test_rtrl_learns_online():
    net = rtrl_net('leaky').float()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    losses = [float(backprop.RTRL(net, seq_loader(T=5), opt, SF.mse_membrane_loss())) for _ in range(8)]
    assert losses[-1] < 0.8 * losses[0]

def test_rtrl_refuses_what_it_cannot_follow():
    opt = torch.optim.SGD(rtrl_net('leaky').parameters(), lr=0.1)
    bn = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), snn.Leaky(beta=0.9, init_hidden=True, output=True))
    with pytest.raises(ValueError, match='BatchNorm1d'): backprop.RTRL(bn, seq_loader(), opt, SF.ce_rate_loss())
    with pytest.raises(ValueError, match='no spiking neurons'): backprop.RTRL(nn.Linear(4, 3), seq_loader(), opt, SF.ce_rate_loss())
    with pytest.raises(ValueError, match='max_numel'): backprop.RTRL(rtrl_net('leaky').float(), seq_loader(), opt, SF.ce_rate_loss(), max_numel=10)

# ---- regularisers newer than snnTorch 1.0.0 (kl_rate_sparsity, temporal_sparsity) ----------------------------------
@pytest.mark.parametrize('reg', [lambda: SF.kl_rate_sparsity(target_rate=0.2, Lambda=0.05), lambda: SF.temporal_sparsity(Lambda=0.05)],
                         ids=['kl_rate_sparsity', 'temporal_sparsity'])
def test_bptt_with_newer_regularizers_equals_hand_loop(reg):
    "BPTT(regularization=...) takes one step of loss + reg(spk_rec), exactly as a hand-written loop."
    batch = [d for d in seq_loader(T=6, n=4, batch_size=4)][:1]
    a, _ = nets(); b, _ = nets()
    BPTT_loss = backprop.BPTT(a, batch, torch.optim.SGD(a.parameters(), lr=0.5), SF.ce_rate_loss(), regularization=reg())
    opt = torch.optim.SGD(b.parameters(), lr=0.5)
    snn.utils.reset(b)
    x, y = batch[0]
    spk_rec = torch.stack([b(x[t])[0] for t in range(x.shape[0])])
    loss = SF.ce_rate_loss()(spk_rec, y) + reg()(spk_rec)
    opt.zero_grad(); loss.backward(); opt.step()
    assert_close(BPTT_loss, loss.detach())
    for u, v in zip(linear_weights(a), linear_weights(b)): assert_close(u, v)
    assert reg()(spk_rec) != 0     # the penalty took part

def test_rtrl_refuses_whole_recording_regularizers():
    net = rtrl_net('leaky')
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for reg in (SF.kl_rate_sparsity(), SF.temporal_sparsity()):
        with pytest.raises(ValueError, match='use BPTT or TBPTT'): backprop.RTRL(net, seq_loader(), opt, SF.ce_rate_loss(), regularization=reg)

def test_newer_regularizers_behave_as_snntorch_dev_tests():
    "What snnTorch's development-branch tests/test_snntorch/functional/test_reg.py checks (not in 1.0.0)."
    spk = torch.zeros(10, 5, 20); spk[0] = 1.0                                   # 10 % firing
    kl = SF.kl_rate_sparsity(target_rate=0.05, Lambda=1e-3)(spk)
    assert torch.isfinite(kl) and kl > 0
    ts = SF.temporal_sparsity(Lambda=1e-3)
    assert_close(ts(torch.ones(10, 5, 20)), torch.tensor(0.0))
    alt = torch.zeros(10, 5, 20); alt[::2] = 1.0
    assert ts(alt) > 0

# ---- the population-coding tutorial's call, with offline data ------------------------------------------------------
def test_population_coding_tutorial_call():
    """snnTorch's tutorial_pop, step by step, with `import snnedu` and offline digits (8x8) instead of FashionMNIST:
    `backprop.BPTT(net, train_loader, num_steps=..., optimizer=..., criterion=..., time_var=False, device=...)`, for a
    plain and a population-coded network, each evaluated (net.eval(), no_grad, utils.reset) after every epoch."""
    from snnedu import data, surrogate, utils
    torch.manual_seed(0)
    device = torch.device('cpu')
    train_loader = torch.utils.data.DataLoader(data.digits(train=True), batch_size=128, shuffle=True)
    test_loader = torch.utils.data.DataLoader(data.digits(train=False), batch_size=128, shuffle=True)
    num_inputs, num_hidden, num_outputs, num_steps, beta, grad = 8 * 8, 128, 10, 1, 0.9, surrogate.fast_sigmoid()
    def make(outputs):
        return nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_hidden), snn.Leaky(beta=beta, spike_grad=grad, init_hidden=True),
                             nn.Linear(num_hidden, outputs), snn.Leaky(beta=beta, spike_grad=grad, init_hidden=True, output=True)).to(device)
    def test_accuracy(loader, net, population_code=False):
        with torch.no_grad():
            total = acc = 0
            net.eval()
            for x, y in loader:
                utils.reset(net)
                spk_rec, _ = net(x.to(device))
                kw = dict(population_code=True, num_classes=10) if population_code else {}
                acc += SF.accuracy_rate(spk_rec.unsqueeze(0), y.to(device), **kw) * spk_rec.size(1)
                total += spk_rec.size(1)
        return acc / total
    results = {}
    for pop in (False, True):
        net = make(500 if pop else num_outputs)
        loss_fn = SF.mse_count_loss(correct_rate=1.0, incorrect_rate=0.0, **(dict(population_code=True, num_classes=10) if pop else {}))
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.9, 0.999))
        losses, accs = [], []
        for epoch in range(4):
            avg_loss = backprop.BPTT(net, train_loader, num_steps=num_steps, optimizer=optimizer, criterion=loss_fn,
                                     time_var=False, device=device)
            losses.append(avg_loss.item()); f"{avg_loss:.4f}"   # the tutorial formats it
            accs.append(test_accuracy(test_loader, net, population_code=pop))
        assert all(math.isfinite(l) for l in losses)
        if pop: assert losses[-1] < 0.8 * losses[0], losses     # the plain net at T = 1 hardly fires: its loss may stall
        results[pop] = accs[-1]
    assert results[True] > 0.5 and results[True] > results[False], results   # the tutorial's point: population coding helps at T = 1

# ---- bad input -----------------------------------------------------------------------------------------------------
x4, y4 = torch.rand(4, 4), torch.randint(0, 3, (4,))
BAD = [  # kwargs for BPTT/TBPTT, exception, words of the message
    (dict(dataloader=[x4]), TypeError, 'dataloader must yield (data, targets) pairs of tensors'),
    (dict(dataloader=[(x4, y4, y4)]), TypeError, 'TensorDataset'),
    (dict(dataloader=[{'x': x4, 'y': y4}]), TypeError, 'batch 0 is a dict'),
    (dict(dataloader=[(x4.tolist(), y4)]), TypeError, 'pairs of tensors'),
    (dict(dataloader=5), TypeError, 'iterable of (data, targets)'),
    (dict(dataloader=[]), ValueError, 'no batches'),
    (dict(criterion=nn.CrossEntropyLoss()), TypeError, 'criterion must be one of'),
    (dict(criterion=SF.ce_rate_loss(reduction='none')), ValueError, "reduction='mean'"),
    (dict(regularization=lambda s: s.sum()), TypeError, 'regularization must be one of'),
    (dict(optimizer=None), TypeError, 'optimizer must be a torch.optim'),
    (dict(net=lambda x: x), TypeError, 'net must be a torch.nn.Module'),
    (dict(num_steps=True), TypeError, 'num_steps must be a positive int'),
    (dict(num_steps=-2), ValueError, 'num_steps must be a positive int'),
    (dict(num_steps=False), ValueError, 'num_steps must be given'),
    (dict(time_var=True), ValueError, 'num_steps should not be given'),
    (dict(time_first=False), ValueError, 'time_first=False only applies'),
    (dict(num_steps=0), ValueError, 'num_steps must be a positive int'),
    (dict(K=0), ValueError, 'K must be a positive int'),
    (dict(K=2.5), TypeError, 'K must be a positive int'),
    (dict(K=5), ValueError, 'K must be less than or equal to num_steps'),
    (dict(dataloader=torch.utils.data.TensorDataset(x4, y4)), TypeError, 'DataLoader(dataset, batch_size=...)'),
    (dict(net=nn.Sequential(snn.LinearLeaky(0.9, 4, 3))), TypeError, 'holds LinearLeaky, which takes the whole sequence'),
]

@pytest.mark.parametrize('bad,exc,words', BAD, ids=[w for _, _, w in BAD])
def test_bad_input(bad, exc, words):
    net, _ = nets()
    kw = dict(net=net, dataloader=[(x4, y4)], optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
              criterion=SF.ce_rate_loss(), num_steps=3, time_var=False, K=1)
    kw.update(bad)
    with pytest.raises(exc) as e: backprop.TBPTT(**kw)
    assert words in str(e.value)

def test_bad_network_outputs():
    opt = torch.optim.SGD(nets()[0].parameters(), lr=0.1)
    spikes_only = nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(TypeError, match='output=True'):
        backprop.BPTT(spikes_only, [(x4, y4)], opt, SF.mse_membrane_loss(), num_steps=2, time_var=False)
    assert backprop.BPTT(spikes_only, [(x4, y4)], opt, SF.ce_rate_loss(), num_steps=2, time_var=False).shape == ()
    class Dicty(nn.Module):
        def forward(self, x): return {'spk': x}
    with pytest.raises(TypeError, match='it returned a dict'):
        backprop.BPTT(Dicty(), [(x4, y4)], opt, SF.ce_rate_loss(), num_steps=2, time_var=False)
    with pytest.raises(ValueError, match='K=7 is longer than the sequence'):
        backprop.TBPTT(spikes_only, [(torch.rand(3, 4, 4), y4)], opt, SF.ce_rate_loss(), K=7)
    with pytest.raises(ValueError, match=r'\(T, B, ...\)'):
        backprop.BPTT(spikes_only, [(torch.rand(4), y4)], opt, SF.ce_rate_loss())
    with pytest.raises(ValueError, match='init_hidden=True'):
        backprop.RTRL(nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.9)), [(x4, y4)], opt, SF.ce_rate_loss(), num_steps=2, time_var=False)

# ---- every public name of snntorch.backprop ------------------------------------------------------------------------
# Names in dir(snntorch.backprop) that are the reference's own imports, not its API (snnedu does not re-export them).
BACKPROP_IMPORTS = {'SF': 'snntorch.functional, imported by the module', 'snn': 'snntorch itself', 'torch': 'torch',
                    'utils': 'snntorch.utils', 'warn': 'warnings.warn (for its DeprecationWarning)'}

def test_every_public_name_of_snntorch_backprop():
    public = {n for n in dir(rbackprop) if not n.startswith('_')}
    assert set(BACKPROP_IMPORTS) <= public, 'a listed difference is not a name of snntorch.backprop: update the list'
    missing = [n for n in sorted(public - set(BACKPROP_IMPORTS)) if not hasattr(backprop, n)]
    assert not missing, f'snnedu.backprop lacks {missing}'
