"""Truncated backpropagation through time (TBPTT) with hidden-state neurons: memory stays flat over 2,000 steps.

The pattern (hidden-state network `net`, sequence `x_seq` of shape (T, B, N), chunks of K steps):

    utils.reset(net)                                   # new sequence: zero every neuron's state
    for x_chunk in x_seq.split(K):                     # (K, B, N) each
        loss = sum(loss_fn(net(x), target) for x in x_chunk)
        opt.zero_grad(); loss.backward(); opt.step()
        utils.detach(net)                              # keep the state's values, cut the graph behind them

Without `utils.detach(net)` the graph of chunk k still reaches back into chunk k-1 (whose buffers were freed by
backward, so the second `backward()` fails, and the graph, if kept, grows with every step). The measure used
here is the size of the autograd graph behind each chunk's loss (nodes reachable from `loss.grad_fn`): exact,
deterministic, and proportional to the memory the graph holds.
"""
import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snnedu as snn
from snnedu import utils

T, K, B = 2000, 50, 4

def graph_size(t):
    "Number of autograd nodes reachable from `t.grad_fn`."
    seen, todo = set(), [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen: continue
        seen.add(node)
        todo.extend(n for n, _ in node.next_functions)
    return len(seen)

def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), snn.RLeaky(beta=0.9, V=0.5, all_to_all=False, init_hidden=True),
                         nn.Linear(8, 3), snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True, output=True))

def x_seq(steps=T):
    return torch.rand(steps, B, 6, generator=torch.Generator().manual_seed(0)) * 1.5

def chunk_loss(net, x_chunk):
    return sum((net(x)[2] - 0.5).pow(2).mean() for x in x_chunk) / len(x_chunk)   # output membrane (B, 3) near 0.5


def test_tbptt_2000_steps_graph_stays_flat():
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=1e-5)
    utils.reset(net)
    sizes = []
    for x_chunk in x_seq().split(K):
        loss = chunk_loss(net, x_chunk)
        sizes.append(graph_size(loss))
        opt.zero_grad(); loss.backward(); opt.step()
        utils.detach(net)
    assert len(sizes) == T // K
    # chunk 0 starts from zero states (no graph behind them); from chunk 1 on every chunk has the same graph
    assert len(set(sizes[1:])) == 1, sizes
    assert sizes[-1] <= sizes[0] + 10
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_without_detach_the_graph_grows():
    "The counterpart that shows the measure can fail: no detach -> every chunk drags all previous steps along."
    net = make_net()
    utils.reset(net)
    sizes = []
    for x_chunk in x_seq(4 * K).split(K):
        loss = chunk_loss(net, x_chunk)
        sizes.append(graph_size(loss))
    assert sizes[1] > 1.5 * sizes[0] and sizes[3] > sizes[2] > sizes[1], sizes


def test_without_detach_second_backward_fails():
    net = make_net()
    utils.reset(net)
    chunks = x_seq(2 * K).split(K)
    chunk_loss(net, chunks[0]).backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        chunk_loss(net, chunks[1]).backward()


def test_detach_keeps_values():
    "utils.detach cuts the graph only: the forward trajectory is the same as without it."
    a, b = make_net(), make_net()
    utils.reset(a); utils.reset(b)
    xs = x_seq(3 * K)
    out_a, out_b = [], []
    for x_chunk in xs.split(K):
        out_a += [a(x)[0] for x in x_chunk]; utils.detach(a)
        out_b += [b(x)[0] for x in x_chunk]
    assert_close(torch.stack(out_a), torch.stack(out_b))
    assert all(getattr(m, s).grad_fn is None for m in a.modules() if hasattr(m, "_state_names") for s in m._state_names)


def test_reset_between_sequences_restarts():
    "utils.reset at a new sequence: the second sequence's output equals a fresh network's."
    a, b = make_net(), make_net()
    xs = x_seq(20)
    with torch.no_grad():
        utils.reset(a)
        for x in xs: a(x)
        utils.reset(a)
        utils.reset(b)
        assert_close(torch.stack([a(x)[0] for x in xs]), torch.stack([b(x)[0] for x in xs]))
