"""neurons.leaky: parity of `Leaky` with snnTorch 1.0.0 over a grid, golden traces, the quickstart network."""
import inspect
import itertools

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snntorch

import snnedu as snn
from snnedu import surrogate
from snnedu.neurons.leaky import Leaky, leaky_step
from test_neurons_base import SURROGATES, compare_parity, make_inputs, ste_quant

def test_signature_matches_reference():
    assert inspect.signature(Leaky) == inspect.signature(snntorch.Leaky)
    assert list(inspect.signature(Leaky.forward).parameters) == list(inspect.signature(snntorch.Leaky.forward).parameters)

SHAPES = {'dense': ((4, 5), (5,)), 'conv': ((2, 3, 4, 4), (3, 1, 1))}   # input shape, per-neuron parameter shape

def build_pair(shape_name, per_neuron, learn, sur, hidden, **kw):
    shape, pshape = SHAPES[shape_name]
    n = pshape[0]
    if per_neuron:
        beta = torch.linspace(0.3, 0.95, n).reshape(pshape)
        thr = torch.linspace(0.6, 1.3, n).reshape(pshape)
    else:
        beta, thr = torch.tensor(0.85), torch.tensor(1.0)
    g = torch.tensor(1.5) if learn else torch.tensor(1.0)
    args = dict(beta=beta, threshold=thr, graded_spikes_factor=g, learn_beta=learn, learn_threshold=learn,
                learn_graded_spikes_factor=learn, init_hidden=hidden, output=hidden, **kw)
    ours_sg, ref_sg = SURROGATES[sur]
    ours = Leaky(spike_grad=ours_sg(), **{k: v.clone() if torch.is_tensor(v) else v for k, v in args.items()})
    ref = snntorch.Leaky(spike_grad=ref_sg(), **{k: v.clone() if torch.is_tensor(v) else v for k, v in args.items()})
    return ours, ref, shape

LEARNABLE = ('beta', 'threshold', 'graded_spikes_factor')
GRID = list(itertools.product(['subtract', 'zero', 'none'], [True, False], ['default', 'fast_sigmoid', 'sigmoid'],
                              [False, True], [False, True], ['dense', 'conv'], [False, True]))

@pytest.mark.parametrize('reset, delay, sur, per_neuron, learn, shape_name, hidden', GRID)
def test_parity_grid(reset, delay, sur, per_neuron, learn, shape_name, hidden):
    ours, ref, shape = build_pair(shape_name, per_neuron, learn, sur, hidden, reset_mechanism=reset, reset_delay=delay)
    xs = make_inputs(shape, steps=8, seed=sum(map(ord, f'{reset}{delay}{sur}')))
    compare_parity(ours, ref, xs, hidden, learnable=LEARNABLE if learn else ())

@pytest.mark.parametrize('reset, delay', list(itertools.product(['subtract', 'zero', 'none'], [True, False])))
def test_parity_inhibition(reset, delay):
    with pytest.warns(UserWarning):
        ours = Leaky(beta=0.9, inhibition=True, reset_mechanism=reset, reset_delay=delay, learn_threshold=True)
    with pytest.warns(UserWarning):
        ref = snntorch.Leaky(beta=0.9, inhibition=True, reset_mechanism=reset, reset_delay=delay, learn_threshold=True)
    compare_parity(ours, ref, make_inputs((3, 6), steps=8, seed=3), hidden=False, learnable=('threshold',))

@pytest.mark.parametrize('reset, delay, hidden', list(itertools.product(['subtract', 'zero', 'none'], [True, False], [False, True])))
def test_parity_state_quant(reset, delay, hidden):
    kw = dict(beta=0.8, state_quant=ste_quant, reset_mechanism=reset, reset_delay=delay, learn_beta=True,
              init_hidden=hidden, output=hidden)
    compare_parity(Leaky(**kw), snntorch.Leaky(**kw), make_inputs((3, 4), steps=8, seed=5), hidden, learnable=('beta',))

@pytest.mark.parametrize('sur', ['atan4', 'ste'])
def test_parity_more_surrogates(sur):
    ours = Leaky(beta=0.7, spike_grad=SURROGATES[sur][0](), learn_beta=True, learn_threshold=True)
    ref = snntorch.Leaky(beta=0.7, spike_grad=SURROGATES[sur][1](), learn_beta=True, learn_threshold=True)
    compare_parity(ours, ref, make_inputs((3, 4), steps=10, seed=7), hidden=False, learnable=('beta', 'threshold'))

def test_parity_out_of_range_learnable_beta_is_clamped():
    ours, ref = Leaky(beta=0.9, learn_beta=True), snntorch.Leaky(beta=0.9, learn_beta=True)
    with torch.no_grad(): ours.beta.fill_(1.3); ref.beta.fill_(1.3)
    compare_parity(ours, ref, make_inputs((2, 3), steps=6), hidden=False, learnable=('beta',))

def test_parity_surrogate_disable():
    ours, ref = Leaky(beta=0.9, surrogate_disable=True), snntorch.Leaky(beta=0.9, surrogate_disable=True)
    compare_parity(ours, ref, make_inputs((2, 3), steps=6), hidden=False)

def test_golden_graded_spikes():
    "census 2.1: graded factor 2.5, beta 0.9, x = 1.2: spikes of 2.5, reset still by threshold."
    n = Leaky(beta=0.9, graded_spikes_factor=2.5)
    mems, spks = [], []
    mem = None
    for _ in range(3):
        spk, mem = n(torch.tensor([1.2]), mem)
        mems.append(mem.item()); spks.append(spk.item())
    assert spks == [2.5, 2.5, 2.5]
    assert_close(torch.tensor(mems), torch.tensor([1.2, 1.28, 1.352]))

def test_golden_beta_clamp_and_grad():
    "census 2.1: dmem_1/dx_0 = beta; default surrogate slope at U = threshold is exactly 1."
    x0 = torch.tensor([0.3], requires_grad=True)
    n = Leaky(beta=0.9)
    _, mem = n(x0)
    _, mem = n(torch.tensor([0.0]), mem)
    mem.backward()
    assert_close(x0.grad, torch.tensor([0.9]))
    u = torch.tensor([1.0], requires_grad=True)
    surrogate.atan()(u - 1.0).backward()
    assert u.grad.item() == 1.0

def test_leaky_step_matches_module_and_accepts_floats():
    x, mem = torch.rand(3, 4), torch.rand(3, 4) * 2
    n = Leaky(beta=0.6, threshold=0.7)
    assert_close(n(x, mem), leaky_step(x, mem, 0.6, 0.7))
    assert_close(leaky_step(x, mem, torch.tensor(0.6), torch.tensor(0.7)), leaky_step(x, mem, 0.6, 0.7))

def test_dtype_and_device_follow_input():
    n = Leaky(beta=torch.tensor([0.5, 0.6]), learn_beta=True)
    spk, mem = n(torch.ones(3, 2, dtype=torch.float64))
    assert spk.dtype == mem.dtype == torch.float64
    mem.sum().backward()
    assert n.beta.grad.dtype == torch.float32

def test_quickstart_network_trains_first_conv():
    "The seed quickstart from snnTorch's README, with `import snnedu as snn`."
    torch.manual_seed(0)
    spike_grad, beta, num_steps = snn.surrogate.fast_sigmoid(slope=25), 0.5, 25
    net = nn.Sequential(nn.Conv2d(1, 12, 5), nn.MaxPool2d(2),
                        snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                        nn.Conv2d(12, 64, 5), nn.MaxPool2d(2),
                        snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                        nn.Flatten(), nn.Linear(64 * 4 * 4, 10),
                        snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True))
    data = torch.rand(2, 1, 28, 28) * 3
    for m in net.modules():
        if isinstance(m, snn.SpikingNeuron): m.reset_mem()
    spk_rec, mem_rec = [], []
    for _ in range(num_steps):
        spk_out, mem_out = net(data)
        spk_rec.append(spk_out); mem_rec.append(mem_out)
    spk_rec, mem_rec = torch.stack(spk_rec), torch.stack(mem_rec)
    assert spk_rec.shape == mem_rec.shape == (num_steps, 2, 10)
    loss = nn.functional.cross_entropy(mem_rec.sum(0), torch.tensor([0, 1]))
    loss.backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0

def test_quickstart_matches_reference_numbers():
    "Same network, same weights, snnTorch vs snnedu neurons: identical spikes and output membranes."
    torch.manual_seed(0)
    def make(lib):
        sg = lib.surrogate.fast_sigmoid(slope=25)
        return nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), lib.Leaky(beta=0.5, spike_grad=sg, init_hidden=True),
                             nn.Flatten(), nn.Linear(4 * 12 * 12, 10), lib.Leaky(beta=0.5, spike_grad=sg, init_hidden=True, output=True))
    ours, ref = make(snn), make(snntorch)
    ref.load_state_dict(ours.state_dict())
    data = torch.rand(2, 1, 28, 28) * 3
    for _ in range(5):
        (s1, m1), (s2, m2) = ours(data), ref(data)
        assert_close(s1, s2); assert_close(m1, m2)
