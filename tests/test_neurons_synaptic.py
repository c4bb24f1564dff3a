"""neurons.synaptic: parity of `Synaptic` with snnTorch 1.0.0 over a grid, plus its own checks."""
import inspect
import itertools

import pytest
import torch
from torch.testing import assert_close

import snntorch

from snnedu.neurons.synaptic import Synaptic, synaptic_step
from test_neurons_base import SURROGATES, compare_parity, make_inputs, ste_quant

def test_signature_matches_reference():
    assert inspect.signature(Synaptic) == inspect.signature(snntorch.Synaptic)
    assert list(inspect.signature(Synaptic.forward).parameters) == list(inspect.signature(snntorch.Synaptic.forward).parameters)

SHAPES = {'dense': ((4, 5), (5,)), 'conv': ((2, 3, 4, 4), (3, 1, 1))}

def build_pair(shape_name, per_neuron, learn, sur, hidden, **kw):
    shape, pshape = SHAPES[shape_name]
    n = pshape[0]
    if per_neuron:
        alpha, beta = torch.linspace(0.2, 0.9, n).reshape(pshape), torch.linspace(0.3, 0.95, n).reshape(pshape)
        thr = torch.linspace(0.6, 1.3, n).reshape(pshape)
    else:
        alpha, beta, thr = torch.tensor(0.7), torch.tensor(0.85), torch.tensor(1.0)
    args = dict(alpha=alpha, beta=beta, threshold=thr, learn_alpha=learn, learn_beta=learn, learn_threshold=learn,
                init_hidden=hidden, output=hidden, **kw)
    fresh = lambda: {k: v.clone() if torch.is_tensor(v) else v for k, v in args.items()}
    return Synaptic(spike_grad=SURROGATES[sur][0](), **fresh()), snntorch.Synaptic(spike_grad=SURROGATES[sur][1](), **fresh()), shape

GRID = list(itertools.product(['subtract', 'zero', 'none'], [True, False], ['default', 'fast_sigmoid', 'sigmoid'],
                              [False, True], [False, True], ['dense', 'conv'], [False, True]))

@pytest.mark.parametrize('reset, delay, sur, per_neuron, learn, shape_name, hidden', GRID)
def test_parity_grid(reset, delay, sur, per_neuron, learn, shape_name, hidden):
    ours, ref, shape = build_pair(shape_name, per_neuron, learn, sur, hidden, reset_mechanism=reset, reset_delay=delay)
    xs = make_inputs(shape, steps=8, seed=sum(map(ord, f'{reset}{delay}{sur}')), scale=0.8)
    compare_parity(ours, ref, xs, hidden, learnable=('alpha', 'beta', 'threshold') if learn else ())

@pytest.mark.parametrize('reset, delay', list(itertools.product(['subtract', 'zero', 'none'], [True, False])))
def test_parity_inhibition_and_quant(reset, delay):
    for extra in (dict(inhibition=True), dict(state_quant=ste_quant)):
        kw = dict(alpha=0.8, beta=0.9, reset_mechanism=reset, reset_delay=delay, learn_alpha=True, **extra)
        with pytest.warns(UserWarning) if 'inhibition' in extra else _nothing():
            ours, ref = Synaptic(**kw), snntorch.Synaptic(**kw)
        compare_parity(ours, ref, make_inputs((3, 6), steps=8, seed=4, scale=0.8), hidden=False, learnable=('alpha',))

class _nothing:
    def __enter__(self): return self
    def __exit__(self, *a): return False

def test_zero_reset_keeps_syn_and_zeroes_whole_membrane():
    spk, syn, mem = synaptic_step(torch.tensor([0.5]), torch.tensor([1.0]), torch.tensor([1.5]), 0.5, 0.5, reset_mechanism='zero')
    assert_close(syn, torch.tensor([1.0])) and assert_close(mem, torch.tensor([0.0]))

def test_gradcheck_float64():
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    def f(x, alpha):
        syn = mem = torch.zeros_like(x); outs = []
        for t in range(4):
            spk, syn, mem = synaptic_step(x * (t + 1), syn, mem, alpha, 0.8, 0.5, spike_fn=lambda u: torch.sigmoid(3 * u),
                                          reset_delay=False)
            outs.append(spk + syn + mem)
        return torch.stack(outs)
    assert torch.autograd.gradcheck(f, (x, alpha))

def test_bad_inputs():
    with pytest.raises(ValueError, match=r'alpha must be in \[0, 1\]'): Synaptic(alpha=-0.2, beta=0.5)
    with pytest.raises(TypeError, match='alpha must be a real number'): Synaptic(alpha='a', beta=0.5)
    with pytest.raises(ValueError, match='syn has shape'): Synaptic(alpha=0.5, beta=0.5)(torch.ones(2, 3), torch.zeros(3, 2))
    with pytest.raises(TypeError, match='not with syn, mem'):
        Synaptic(alpha=0.5, beta=0.5, init_hidden=True)(torch.ones(2), torch.zeros(2), torch.zeros(2))

def test_reset_mem_and_alias():
    n = Synaptic(alpha=0.5, beta=0.5)
    n(torch.ones(2, 3))
    syn, mem = n.init_synaptic()
    assert syn.shape == mem.shape == (2, 3) and syn.abs().sum() == 0
    assert list(n.state_dict()) == list(snntorch.Synaptic(alpha=0.5, beta=0.5).state_dict())
