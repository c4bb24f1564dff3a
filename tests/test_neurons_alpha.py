"""neurons.alpha: parity of `Alpha` with snnTorch 1.0.0 (including learnable alpha, which crashes there)."""
import inspect
import itertools

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snntorch

from snnedu.neurons.alpha import Alpha, alpha_factor, alpha_step
from test_neurons_base import SURROGATES, compare_parity, make_inputs, ste_quant

def test_signature_matches_reference():
    assert inspect.signature(Alpha) == inspect.signature(snntorch.Alpha)
    assert list(inspect.signature(Alpha.forward).parameters) == list(inspect.signature(snntorch.Alpha.forward).parameters)

def test_reference_learn_alpha_still_crashes():
    "Documents why the grid below patches the oracle: snnTorch 1.0.0 cannot build Alpha(learn_alpha=True)."
    with pytest.raises(TypeError): snntorch.Alpha(alpha=0.9, beta=0.8, learn_alpha=True)
    assert isinstance(Alpha(alpha=0.9, beta=0.8, learn_alpha=True).alpha, nn.Parameter)

SHAPES = {'dense': ((4, 5), (5,)), 'conv': ((2, 3, 4, 4), (3, 1, 1))}

def build_pair(shape_name, per_neuron, learn, sur, hidden, **kw):
    shape, pshape = SHAPES[shape_name]
    n = pshape[0]
    if per_neuron:
        alpha, beta = torch.linspace(0.7, 0.95, n).reshape(pshape), torch.linspace(0.3, 0.6, n).reshape(pshape)
        thr = torch.linspace(0.3, 0.8, n).reshape(pshape)
    else:
        alpha, beta, thr = torch.tensor(0.9), torch.tensor(0.6), torch.tensor(0.5)
    args = dict(alpha=alpha, beta=beta, threshold=thr, learn_beta=learn, learn_threshold=learn,
                init_hidden=hidden, output=hidden, **kw)
    fresh = lambda: {k: v.clone() if torch.is_tensor(v) else v for k, v in args.items()}
    ours = Alpha(spike_grad=SURROGATES[sur][0](), learn_alpha=learn, **fresh())
    ref = snntorch.Alpha(spike_grad=SURROGATES[sur][1](), **fresh())
    if learn:   # the oracle's own learn_alpha crashes: give it the Parameter by hand
        alpha_ref = ref.alpha.detach().clone()
        del ref._buffers['alpha']
        ref.alpha = nn.Parameter(alpha_ref)
    return ours, ref, shape

GRID = list(itertools.product(['zero', 'subtract', 'none'], ['default', 'fast_sigmoid', 'sigmoid'],
                              [False, True], [False, True], ['dense', 'conv'], [False, True]))

@pytest.mark.parametrize('reset, sur, per_neuron, learn, shape_name, hidden', GRID)
def test_parity_grid(reset, sur, per_neuron, learn, shape_name, hidden):
    ours, ref, shape = build_pair(shape_name, per_neuron, learn, sur, hidden, reset_mechanism=reset)
    xs = make_inputs(shape, steps=10, seed=sum(map(ord, f'{reset}{sur}')), scale=1.5)
    compare_parity(ours, ref, xs, hidden, learnable=('alpha', 'beta', 'threshold') if learn else ())

@pytest.mark.parametrize('reset', ['zero', 'subtract', 'none'])
def test_parity_inhibition_and_quant(reset):
    with pytest.warns(UserWarning):
        ours, ref = (cls(alpha=0.9, beta=0.5, threshold=0.3, inhibition=True, reset_mechanism=reset) for cls in (Alpha, snntorch.Alpha))
    compare_parity(ours, ref, make_inputs((3, 6), steps=8, seed=2), hidden=False)
    kw = dict(alpha=0.9, beta=0.5, threshold=0.3, state_quant=ste_quant, reset_mechanism=reset, learn_beta=True)
    compare_parity(Alpha(**kw), snntorch.Alpha(**kw), make_inputs((3, 6), steps=8, seed=2), hidden=False, learnable=('beta',))

def test_spikes_happen_in_grid_inputs():
    "The grid is only meaningful if neurons fire and reset: check a representative case does."
    ours, _, shape = build_pair('dense', False, False, 'default', False, reset_mechanism='subtract')
    outs = [ours(x) for x in make_inputs(shape, steps=10, scale=1.5)]
    assert 0 < sum(o[0].sum().item() for o in outs) < 10 * 20

def test_learn_alpha_gets_gradient_and_trains_twice():
    n = Alpha(alpha=0.9, beta=0.5, threshold=0.3, learn_alpha=True)
    for _ in range(2):
        n.reset_mem()
        loss = sum(n(x)[3].sum() for x in make_inputs((2, 3), steps=5))
        loss.backward()
    assert n.alpha.grad is not None and n.alpha.grad.abs() > 0

def test_alpha_factor_value():
    assert_close(alpha_factor(torch.tensor(0.9), torch.tensor(0.8)), torch.tensor(1.89453), atol=1e-5, rtol=0)
    assert_close(alpha_factor(0.9, 0.8), torch.log(torch.tensor(0.8)) / (torch.log(torch.tensor(0.8)) - torch.log(torch.tensor(0.9))))

def test_gradcheck_float64():
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    ab = torch.tensor([0.9, 0.6], dtype=torch.float64, requires_grad=True)
    def f(x, ab):
        e = i = m = torch.zeros_like(x); outs = []
        for t in range(4):
            spk, e, i, m = alpha_step(x * (t + 1), e, i, m, ab[0], ab[1], 0.3, spike_fn=lambda u: torch.sigmoid(3 * u),
                                      reset_mechanism='subtract')
            outs.append(spk + e + i + m)
        return torch.stack(outs)
    assert torch.autograd.gradcheck(f, (x, ab))

@pytest.mark.parametrize('kwargs, exc, text', [
    (dict(alpha=0.8, beta=0.9), ValueError, 'Alpha needs alpha > beta'),
    (dict(alpha=0.8, beta=0.8), ValueError, 'alpha > beta'),
    (dict(alpha=torch.tensor([0.9, 0.7]), beta=torch.tensor([0.5, 0.8])), ValueError, 'alpha > beta'),
    (dict(alpha=1.1, beta=0.5), ValueError, 'alpha must be in [0, 1]'),
    (dict(alpha=0.9, beta=-0.5), ValueError, 'beta must be in [0, 1]'),
    (dict(alpha=None, beta=0.5), TypeError, 'alpha must be a real number'),
    (dict(alpha=0.9, beta=0.5, reset_mechanism='soft'), ValueError, "reset_mechanism must be"),
])
def test_bad_inputs(kwargs, exc, text):
    with pytest.raises(exc) as e: Alpha(**kwargs)
    assert text in str(e.value)

def test_state_rules():
    n = Alpha(alpha=0.9, beta=0.5)
    with pytest.raises(ValueError, match='syn_inh has shape'): n(torch.ones(2, 3), None, torch.zeros(2))
    h = Alpha(alpha=0.9, beta=0.5, init_hidden=True)
    with pytest.raises(TypeError, match='not with mem'): h(torch.ones(2), mem=torch.zeros(2))
    states = n.init_alpha()
    assert len(states) == 3
    assert list(n.state_dict()) == list(snntorch.Alpha(alpha=0.9, beta=0.5).state_dict())


# ---------------------------------------------------------------- issue 19 item 4: a learnable alpha meeting beta

@pytest.mark.parametrize('alpha,beta', [(0.8, 0.8), (0.8, 0.8 - 1e-7), (0.7, 0.8), (1.0, 1.0), (0.5, 0.0), (1.0, 0.9999)])
def test_learnable_alpha_meeting_beta_stays_finite(alpha, beta):
    "snnTorch (and snnedu before): alpha == beta gives tau_alpha = inf and a NaN membrane; now tau_alpha is capped."
    n = Alpha(alpha=0.9, beta=0.5, learn_alpha=True, learn_beta=True)
    with torch.no_grad(): n.alpha.fill_(alpha); n.beta.fill_(beta)
    x = torch.rand(20, 2, 3)
    out, total = None, 0
    for x_t in x:
        out = n(x_t, *(out[1:] if out else ()))
        total = total + out[0].sum() + out[-1].sum()
    assert all(torch.isfinite(s).all() for s in out)
    total.backward()
    assert torch.isfinite(n.alpha.grad) and torch.isfinite(n.beta.grad)

def test_alpha_factor_equals_snntorch_formula_below_the_cap():
    a, b = torch.tensor([0.9, 0.99, 0.5, 0.3]), torch.tensor([0.8, 0.5, 0.2, 0.0])
    assert_close(alpha_factor(a, b), torch.log(a) / (torch.log(b) - torch.log(a)) + 1)
    assert alpha_factor(torch.tensor(0.9), torch.tensor(0.9)).item() == 1000.0
