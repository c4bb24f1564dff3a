"""neurons.lapicque: parameter resolution, parity with snnTorch 1.0.0, the learn_beta fix."""
import inspect
import itertools
import math

import pytest
import torch
from torch.testing import assert_close

import snntorch

from snnedu.neurons.lapicque import Lapicque, lapicque_rc, lapicque_step
from test_neurons_base import SURROGATES, compare_parity, make_inputs, ste_quant

def test_signature_matches_reference():
    assert inspect.signature(Lapicque) == inspect.signature(snntorch.Lapicque)
    assert list(inspect.signature(Lapicque.forward).parameters) == list(inspect.signature(snntorch.Lapicque.forward).parameters)

PARAMS = {  # how the neuron is specified (all scalar: the reference cannot take a tensor beta)
    'beta': dict(beta=0.8),
    'beta_R': dict(beta=0.7, R=2.0),
    'beta_C': dict(beta=0.9, C=3.0),
    'R_C': dict(R=2.0, C=4.0),
    'beta_dt': dict(beta=0.9, time_step=0.5),
    'R_C_dt': dict(R=5e6, C=2e-9, time_step=1e-3),
}

@pytest.mark.parametrize('spec', list(PARAMS))
def test_buffers_match_reference(spec):
    ours, ref = Lapicque(**PARAMS[spec]), snntorch.Lapicque(**PARAMS[spec])
    so, sr = ours.state_dict(), ref.state_dict()
    assert sorted(so) == sorted(sr)         # (key order differs in two cases; loading does not care)
    for k in sr: assert_close(so[k], sr[k].to(so[k].dtype), msg=k)

GRID = list(itertools.product(list(PARAMS), ['subtract', 'zero', 'none'], ['default', 'fast_sigmoid', 'sigmoid'],
                              [False, True], ['dense', 'conv'], [False, True]))
SHAPES = {'dense': (4, 5), 'conv': (2, 3, 4, 4)}

@pytest.mark.parametrize('spec, reset, sur, learn_thr, shape_name, hidden', GRID)
def test_parity_grid(spec, reset, sur, learn_thr, shape_name, hidden):
    kw = dict(PARAMS[spec], reset_mechanism=reset, learn_threshold=learn_thr, init_hidden=hidden, output=hidden)
    ours, ref = Lapicque(spike_grad=SURROGATES[sur][0](), **kw), snntorch.Lapicque(spike_grad=SURROGATES[sur][1](), **kw)
    # physical units: input gains of 5e5 amplify rounding (snnTorch orders the products differently and passes spike
    # gradients in float32 even for float64 inputs) -> compare in float64 with rtol 1e-4
    dtype, scale = (torch.float64, 1e-6) if spec == 'R_C_dt' else (torch.float32, 2.5)
    ours, ref = ours.to(dtype), ref.to(dtype)
    xs = make_inputs(SHAPES[shape_name], steps=8, seed=sum(map(ord, f'{spec}{reset}{sur}')), scale=scale, dtype=dtype)
    compare_parity(ours, ref, xs, hidden, learnable=('threshold',) if learn_thr else (), rtol=1e-4 if spec == 'R_C_dt' else 1e-5)

@pytest.mark.parametrize('spec', ['beta', 'beta_R', 'beta_C', 'beta_dt'])
def test_learn_beta_first_backward_matches_reference_and_second_works(spec):
    ours = Lapicque(learn_beta=True, **PARAMS[spec])
    xs = make_inputs((3, 4), steps=6, seed=9, scale=2.0)
    if spec in ('beta_R', 'beta_C'):   # snnTorch cannot even build these with learn_beta (register_buffer on a Parameter)
        with pytest.raises(KeyError): snntorch.Lapicque(learn_beta=True, **PARAMS[spec])
    else:
        ref = snntorch.Lapicque(learn_beta=True, **PARAMS[spec])
        compare_parity(ours, ref, xs, hidden=False, learnable=('beta',))
        with pytest.raises(RuntimeError, match='backward through the graph a second time'):
            ref.reset_mem(); sum(ref(x)[1].sum() for x in xs).backward()
        ours.beta.grad = None
    ours.reset_mem()
    sum(ours(x)[1].sum() for x in xs).backward()            # the second backward works here
    assert ours.beta.grad is not None and torch.isfinite(ours.beta.grad).all() and ours.beta.grad.abs().sum() > 0

def test_learn_beta_with_R_and_C_trains_and_keeps_state_dict_current():
    n = Lapicque(R=2.0, C=4.0, learn_beta=True)
    assert_close(n.beta.detach(), torch.tensor([math.exp(-1 / 8)]))
    with torch.no_grad(): n.beta.fill_(0.5)
    n(torch.ones(2))
    assert_close(n.state_dict()['C'], torch.tensor([1 / (2.0 * math.log(2))]))

def test_learnable_beta_with_optimizer():
    n = Lapicque(beta=0.8, learn_beta=True)
    opt = torch.optim.SGD(n.parameters(), lr=0.01)
    for _ in range(3):
        n.reset_mem(); opt.zero_grad()
        loss = sum(n(x)[1].sum() for x in make_inputs((2, 3), steps=4))
        loss.backward(); opt.step()
    assert n.beta.item() != 0.8

def test_per_neuron_beta():
    beta = torch.tensor([0.5, 0.9])
    n = Lapicque(beta=beta)
    _, mem = n(torch.ones(3, 2))
    assert_close(mem[0], -torch.log(beta))      # input gain = -ln(beta) when R = 1

def test_golden_trace():
    mem, out = None, []
    n = Lapicque(beta=0.5)
    for x in [1.0, 0.0, 0.0, 2.0, 0.0]:
        spk, mem = n(torch.tensor([x]), mem)
        out.append(mem.item())
    assert_close(torch.tensor(out), torch.tensor([0.69315, 0.21269, 0.06527, 1.40632, -0.56847]), atol=1e-5, rtol=0)

def test_zero_reset_zeroes_the_input_too():
    _, mem = lapicque_step(torch.tensor([0.5]), torch.tensor([2.0]), 1.0, 2.0, reset_mechanism='zero')
    assert mem.item() == 0.0

def test_lapicque_rc():
    R, C = lapicque_rc(torch.tensor(0.5), C=torch.tensor(2.0), time_step=1.0)
    assert_close(R, torch.tensor(1 / (2 * math.log(2))))
    assert lapicque_rc(None, torch.tensor(1.0), torch.tensor(2.0)) == (torch.tensor(1.0), torch.tensor(2.0))

def test_gradcheck_float64():
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    C = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    def f(x, C):
        mem = torch.zeros_like(x); outs = []
        for t in range(4):
            spk, mem = lapicque_step(x * (t + 1), mem, 2.0, C, 0.5, 0.4, spike_fn=lambda u: torch.sigmoid(3 * u))
            outs.append(spk + mem)
        return torch.stack(outs)
    assert torch.autograd.gradcheck(f, (x, C))

@pytest.mark.parametrize('kwargs, exc, text', [
    (dict(), ValueError, 'got none of them'),
    (dict(R=2.0), ValueError, 'got only R'),
    (dict(C=2.0), ValueError, 'got only C'),
    (dict(beta=0.5, R=1.0, C=2.0), ValueError, 'at most one of R and C'),
    (dict(beta=1.0), ValueError, '0 < beta < 1'),
    (dict(beta=1.5), ValueError, '0 < beta < 1'),
    (dict(beta=torch.tensor([0.5, 0.0])), ValueError, '0 < beta < 1'),
    (dict(beta='0.5'), TypeError, 'beta must be a real number'),
    (dict(R=-1.0, C=2.0), ValueError, 'R must be > 0'),
    (dict(R=1.0, C='2'), TypeError, 'C must be a real number'),
    (dict(beta=0.5, time_step=0), ValueError, 'time_step must be > 0'),
    (dict(beta=0.5, reset_mechanism='none!'), ValueError, 'reset_mechanism must be'),
])
def test_bad_inputs(kwargs, exc, text):
    with pytest.raises(exc) as e: Lapicque(**kwargs)
    assert text in str(e.value)

def test_inhibition_and_quant_parity():
    with pytest.warns(UserWarning):
        ours, ref = Lapicque(beta=0.8, inhibition=True), snntorch.Lapicque(beta=0.8, inhibition=True)
    compare_parity(ours, ref, make_inputs((3, 5), steps=6, scale=2.0), hidden=False)
    kw = dict(beta=0.8, state_quant=ste_quant, learn_threshold=True)
    compare_parity(Lapicque(**kw), snntorch.Lapicque(**kw), make_inputs((3, 5), steps=6, scale=2.0), hidden=False, learnable=('threshold',))

def test_init_alias():
    n = Lapicque(beta=0.5)
    n(torch.ones(2, 2))
    assert n.init_lapicque().abs().sum() == 0


# ---------------------------------------------------------------- issue 19 item 4: learnable beta clamped like Leaky's

@pytest.mark.parametrize('beta', [1.0, 1.3, -0.2, 0.0])
@pytest.mark.parametrize('given', ['none', 'R', 'C'])
def test_learnable_beta_outside_the_interval_is_clamped(beta, given):
    "beta >= 1 made ln(1/beta) <= 0: C < 0 (growth 1.26^t at 1.3) or C = inf with NaN gradients (at 1.0); beta <= 0: log of <= 0."
    kw = {'none': {}, 'R': {'R': 2.0}, 'C': {'C': 0.5}}[given]
    def run(b):
        n = Lapicque(beta=0.9, learn_beta=True, **kw)
        with torch.no_grad(): n.beta.fill_(b)
        # beta <= 0 is clamped to the smallest positive float: finite, but the Euler factor 1 + ln(beta) = -86 is
        # snnTorch's unstable scheme (any beta < e^-2), so that case runs a few steps only
        x, mem, rec = torch.full((200 if beta >= 1 else 5, 3), 0.05), None, []
        for x_t in x:
            _, mem = n(x_t, mem)
            rec.append(mem)
        rec = torch.stack(rec)
        rec.sum().backward()
        return rec, n.beta.grad
    rec, grad = run(beta)
    fi = torch.finfo(torch.float32)
    ref, _ = run(min(max(beta, fi.tiny), 1 - fi.eps))            # what the clamp promises
    assert torch.isfinite(rec).all() and torch.isfinite(grad)
    assert_close(rec, ref)
    if beta >= 1: assert rec.abs().max() < 200 * 0.05 * 100      # no runaway growth
