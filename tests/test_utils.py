"""snnedu.utils: reset/detach reach every neuron of a network (nested too) and nothing else; after reset a network
replays like snnTorch's after its reset; data_subset / valid_split give snnTorch's subsets and splits."""
import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close
from torch.utils.data import TensorDataset

import snnedu
from snnedu import utils

snntorch = pytest.importorskip('snntorch')
import snntorch.utils as rutils  # noqa: E402

def neurons(lib):
    "One hidden-state neuron of every kind both libraries have, each shaped for a (B, 4) input."
    return [lib.Leaky(beta=0.9, init_hidden=True), lib.Synaptic(alpha=0.8, beta=0.7, init_hidden=True),
            lib.Alpha(alpha=0.9, beta=0.8, init_hidden=True), lib.Lapicque(beta=0.9, init_hidden=True),
            lib.RLeaky(beta=0.9, linear_features=4, init_hidden=True), lib.RSynaptic(alpha=0.8, beta=0.9, linear_features=4, init_hidden=True)]

def nested_net(lib, seed=0):
    torch.manual_seed(seed)
    ns = neurons(lib)
    return nn.Sequential(nn.Linear(3, 4), ns[0], nn.Sequential(nn.Linear(4, 4), ns[1], nn.ModuleList([ns[2]])),
                         ns[3], nn.Sequential(nn.Sequential(ns[4], ns[5])))

def run(net, x_seq):
    out = []
    for x in x_seq:
        h = net[1](net[0](x)); h = net[2][1](net[2][0](h)); h = net[2][2][0](h); h = net[3](h)
        h = net[4][0][0](h); h = net[4][0][1](h)
        out.append(h)
    return torch.stack(out)

def states(net):
    return [getattr(m, n) for m in net.modules() if hasattr(m, '_state_names') for n in m._state_names]

def test_reset_reaches_nested_neurons_and_replays():
    net, x = nested_net(snnedu), torch.rand(6, 2, 3) * 3
    first = run(net, x)
    assert any(s.abs().sum() > 0 for s in states(net))
    utils.reset(net)
    assert all(s.abs().sum() == 0 for s in states(net))
    assert_close(run(net, x), first)

def test_reset_matches_snntorch_flat_network():
    "snnTorch's reset sees direct children only: compare on a flat Sequential, same weights."
    torch.manual_seed(0)
    ours = nn.Sequential(nn.Linear(3, 4), snnedu.Leaky(beta=0.8, init_hidden=True), nn.Linear(4, 4),
                         snnedu.Synaptic(alpha=0.7, beta=0.9, init_hidden=True))
    theirs = nn.Sequential(nn.Linear(3, 4), snntorch.Leaky(beta=0.8, init_hidden=True), nn.Linear(4, 4),
                           snntorch.Synaptic(alpha=0.7, beta=0.9, init_hidden=True))
    theirs.load_state_dict(ours.state_dict(), strict=False)
    x = torch.rand(5, 2, 3) * 2
    for _ in range(2):
        assert_close(torch.stack([ours(x_t) for x_t in x]), torch.stack([theirs(x_t) for x_t in x]))
        utils.reset(ours); rutils.reset(theirs)

def test_reset_touches_only_this_network():
    a, b = nested_net(snnedu, 0), nested_net(snnedu, 1)
    x = torch.rand(3, 2, 3) * 3
    run(a, x); run(b, x)
    before = [s.clone() for s in states(b)]
    utils.reset(a)
    for s, s0 in zip(states(b), before): assert torch.equal(s, s0)

def test_reset_leaves_parameters_and_buffers():
    net = nested_net(snnedu)
    run(net, torch.rand(2, 2, 3))
    params = copy.deepcopy(net.state_dict())
    utils.reset(net)
    for k, v in net.state_dict().items(): assert torch.equal(v, params[k]), k

def test_reset_single_neuron_and_explicit_mode():
    lif = snnedu.Leaky(beta=0.5)
    spk, mem = lif(torch.ones(2))
    utils.reset(lif)
    assert_close(lif(torch.ones(2))[1], mem)                  # starts again from rest

def test_detach_keeps_values_cuts_graph():
    net, x = nested_net(snnedu), torch.rand(4, 2, 3) * 3
    run(net, x).sum().backward()
    values = [s.clone() for s in states(net)]
    assert any(s.requires_grad for s in states(net))
    utils.detach(net)
    assert not any(s.requires_grad for s in states(net))
    for s, v in zip(states(net), values): assert torch.equal(s, v)
    run(net, x).sum().backward()                              # a second chunk backpropagates on its own

def test_tbptt_chunks_equal_full_forward():
    "Detaching changes gradients, never values: chunked forward == one long forward."
    net, x = nested_net(snnedu), torch.rand(9, 2, 3) * 3
    full = run(net, x).detach()
    utils.reset(net)
    chunks = []
    for chunk in x.split(3):
        out = run(net, chunk); out.sum().backward(); chunks.append(out.detach()); utils.detach(net)
    assert_close(torch.cat(chunks), full)

@pytest.mark.parametrize('fn', [utils.reset, utils.detach])
@pytest.mark.parametrize('bad', [None, [nn.Linear(2, 2)], 'net', torch.zeros(2)])
def test_not_a_module(fn, bad):
    with pytest.raises(TypeError, match='net must be a torch.nn.Module'): fn(bad)

# ---------------------------------------------------------------- datasets
class VisionLike:
    "torchvision-style dataset: .data and .targets."
    def __init__(self, n=23, numpy=False):
        self.data = torch.arange(n * 2).reshape(n, 2) if not numpy else np.arange(n * 2).reshape(n, 2)
        self.targets = torch.arange(n) % 5 if not numpy else np.arange(n) % 5
    def __len__(self): return len(self.data)

@pytest.mark.parametrize('subset,idx', [(1, 0), (2, 0), (2, 1), (5, 3), (23, 22), (4, 0)])
@pytest.mark.parametrize('numpy', [False, True])
def test_data_subset_matches_snntorch(subset, idx, numpy):
    ours, theirs = utils.data_subset(VisionLike(numpy=numpy), subset, idx), rutils.data_subset(VisionLike(numpy=numpy), subset, idx)
    assert np.array_equal(np.asarray(ours.data), np.asarray(theirs.data))
    assert np.array_equal(np.asarray(ours.targets), np.asarray(theirs.targets))

def test_data_subset_tensor_dataset_and_lists():
    ds = utils.data_subset(TensorDataset(torch.arange(10), torch.arange(10) * 2), 3, 2)
    assert ds.tensors[0].tolist() == [6, 7, 8] and ds.tensors[1].tolist() == [12, 14, 16]
    v = VisionLike(); v.targets = v.targets.tolist()
    assert utils.data_subset(v, 5, 1).targets == [4, 0, 1, 2]

@pytest.mark.parametrize('split,seed', [(0.1, 0), (0.2, 3), (0.5, 1), (0.9, 7)])
@pytest.mark.parametrize('numpy', [False, True])
def test_valid_split_matches_snntorch(split, seed, numpy):
    (tr, va), (rtr, rva) = utils.valid_split(VisionLike(numpy=numpy), VisionLike(numpy=numpy), split, seed), \
        rutils.valid_split(VisionLike(numpy=numpy), VisionLike(numpy=numpy), split, seed)
    for a, b in ((tr.data, rtr.data), (tr.targets, rtr.targets), (va.data, rva.data), (va.targets, rva.targets)):
        assert np.array_equal(np.asarray(a), np.asarray(b))

def test_valid_split_tensor_dataset():
    x, y = torch.arange(20.).reshape(10, 2), torch.arange(10)
    tr, va = utils.valid_split(TensorDataset(x, y), TensorDataset(x, y), 0.3, seed=1)
    assert len(tr) == 7 and len(va) == 3
    assert sorted(tr.tensors[1].tolist() + va.tensors[1].tolist()) == list(range(10))
    assert_close(tr.tensors[0][:, 0] / 2, tr.tensors[1].float())      # rows stay paired

@pytest.mark.parametrize('call,exc,match', [
    (lambda: utils.data_subset(VisionLike(), 0), ValueError, 'subset must be an integer >= 1'),
    (lambda: utils.data_subset(VisionLike(), 2.5), ValueError, 'subset must be an integer >= 1'),
    (lambda: utils.data_subset(VisionLike(), 4, idx=4), ValueError, r'idx must be an integer in \[0, subset - 1\] = \[0, 3\]'),
    (lambda: utils.data_subset(VisionLike(), 4, idx=-1), ValueError, 'idx must be an integer'),
    (lambda: utils.data_subset([1, 2, 3], 2), TypeError, 'dataset must be a TensorDataset or have .data and .targets'),
    (lambda: utils.valid_split(VisionLike(), VisionLike(), 0), ValueError, r'split must be a fraction in \(0, 1\)'),
    (lambda: utils.valid_split(VisionLike(), VisionLike(), 1.0), ValueError, r'split must be a fraction in \(0, 1\)'),
    (lambda: utils.valid_split(VisionLike(), VisionLike(), '0.2'), ValueError, 'split must be a fraction'),
    (lambda: (lambda d: utils.valid_split(d, d, 0.2))(VisionLike()), ValueError, 'ds_val must be a second dataset'),
    (lambda: utils.valid_split(VisionLike(), TensorDataset(torch.zeros(3)), 0.2), TypeError, 'same kind'),
])
def test_dataset_bad_input(call, exc, match):
    with pytest.raises(exc, match=match): call()
