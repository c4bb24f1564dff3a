"""torch.compile of networks of snnedu neurons: same spikes, states and gradients as eager mode.

Hidden-state neurons replace their state buffers at every call; dynamo traces that as a side effect (graph breaks are
allowed, wrong numbers are not). The fast checks use backend="eager"/"aot_eager" (no C compiler); one inductor check
runs when a C compiler is present and SNNEDU_TEST_INDUCTOR=1 (it takes ~50 s on 2 cores).
"""
import os
import shutil

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snnedu as snn
from snnedu import utils

def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), snn.Leaky(beta=0.9, init_hidden=True, learn_beta=True),
                         nn.Linear(6, 6), snn.RLeaky(beta=0.8, linear_features=6, init_hidden=True),
                         nn.Linear(6, 2), snn.Synaptic(alpha=0.8, beta=0.7, init_hidden=True, output=True))

def run(model, net, steps=4):
    "Spikes and output membranes over `steps` steps, plus the gradient of their sum w.r.t. the first weight."
    utils.reset(net)
    x = torch.linspace(-0.5, 2, 12).reshape(3, 4)
    spk, mem = zip(*[(o[0], o[2]) for o in (model(x) for _ in range(steps))])
    spk, mem = torch.stack(spk), torch.stack(mem)
    net.zero_grad()
    (mem.sum() + spk.sum()).backward()
    return spk.detach(), mem.detach(), net[0].weight.grad.clone(), net[1].beta.grad.clone()


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compile_matches_eager(backend):
    torch._dynamo.reset()
    eager_net = make_net(); ref = run(eager_net, eager_net)
    net = make_net()
    got = run(torch.compile(net, backend=backend), net)
    for a, b in zip(got, ref): assert_close(a, b)
    assert ref[1].abs().sum() > 0 and ref[2].abs().sum() > 0 and ref[3].abs().sum() > 0   # not a vacuous comparison


def test_compile_then_batch_change():
    "Compiled hidden-state network follows the batch-size policy (fresh zeros) like eager mode."
    torch._dynamo.reset()
    net, eager = make_net(), make_net()
    cnet = torch.compile(net, backend="aot_eager")
    with torch.no_grad():
        for m, n in ((cnet, net), (eager, eager)):
            utils.reset(n); m(torch.rand(3, 4, generator=torch.Generator().manual_seed(0)))
        x2 = torch.rand(5, 4, generator=torch.Generator().manual_seed(1))
        assert_close(cnet(x2)[2], eager(x2)[2])


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler")
@pytest.mark.skipif(os.environ.get("SNNEDU_TEST_INDUCTOR") != "1",
                    reason="inductor compiles C++ (~50 s on 2 cores); run with SNNEDU_TEST_INDUCTOR=1")
def test_compile_inductor_single_neuron():
    "One real inductor compile (kept small: a single explicit-state neuron step)."
    torch._dynamo.reset()
    lif = snn.Leaky(beta=0.9)
    step = torch.compile(lambda x, mem: lif(x, mem))
    x, mem = torch.linspace(0, 2, 8).reshape(2, 4), torch.zeros(2, 4)
    ref_mem, got_mem = mem, mem
    for _ in range(3):
        ref_spk, ref_mem = lif(x, ref_mem)
        got_spk, got_mem = step(x, got_mem)
        assert_close(got_spk, ref_spk); assert_close(got_mem, ref_mem)
