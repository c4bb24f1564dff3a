"""Every neuron's fused whole-sequence path equals its step loop (values, kept states, gradients of the input, the initial
states and every learnable parameter) over reset mechanisms, reset_delay, parameter shapes, surrogates and dtypes;
gradcheck in float64; and the guarantees of issue 19 item 3 (broadcast shapes, second-order gradients, the kept state,
a second call without reset)."""
import itertools

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.testing import assert_close

from snnedu import surrogate
from snnedu.neurons import Alpha, DeltaLeaky, Lapicque, Leaky, RLeaky, RSynaptic, Synaptic, scan
from snnedu.neurons.alpha import alpha_sequence
from snnedu.neurons.base import neuron_sequence
from snnedu.neurons.lapicque import lapicque_sequence
from snnedu.neurons.recurrent import recurrent_fn, rleaky_sequence, rsynaptic_sequence
from snnedu.neurons.synaptic import synaptic_sequence, synaptic_step
from snnedu.sequence import sequence

MECHS = ("subtract", "zero", "none")
B, N = 3, 4

def per_neuron(*values): return torch.tensor(values)

# name -> factory(mech, delay, learn, shape) ; shape in {"scalar", "neuron"}
def _p(shape, scalar, values): return scalar if shape == "scalar" else per_neuron(*values)

FACTORIES = {
    "Leaky": lambda mech, delay, learn, shape: Leaky(
        beta=_p(shape, 0.8, (0.9, 0.5, 1.0, 0.0)), threshold=_p(shape, 1.0, (1.0, 0.8, 1.2, 1.0)), reset_mechanism=mech,
        reset_delay=delay, learn_beta=learn, learn_threshold=learn, graded_spikes_factor=1.5 if learn else 1.0,
        learn_graded_spikes_factor=learn),
    "Synaptic": lambda mech, delay, learn, shape: Synaptic(
        alpha=_p(shape, 0.7, (0.8, 0.6, 0.9, 1.0)), beta=_p(shape, 0.8, (0.9, 0.5, 0.7, 0.95)), reset_mechanism=mech,
        reset_delay=delay, learn_alpha=learn, learn_beta=learn, learn_threshold=learn),
    "Lapicque": lambda mech, delay, learn, shape: Lapicque(
        beta=_p(shape, 0.8, (0.9, 0.5, 0.7, 0.95)), reset_mechanism=mech, learn_beta=learn, learn_threshold=learn),
    "Lapicque_RC": lambda mech, delay, learn, shape: Lapicque(
        R=_p(shape, 2.0, (1.0, 2.0, 3.0, 4.0)), C=1.5, time_step=0.5, reset_mechanism=mech, learn_threshold=learn),
    "Alpha": lambda mech, delay, learn, shape: Alpha(
        alpha=_p(shape, 0.9, (0.9, 0.8, 0.95, 0.7)), beta=_p(shape, 0.8, (0.7, 0.6, 0.5, 0.6)), reset_mechanism=mech,
        learn_alpha=learn, learn_beta=learn, learn_threshold=learn),
    "RLeaky_dense": lambda mech, delay, learn, shape: RLeaky(
        beta=_p(shape, 0.8, (0.9, 0.5, 0.7, 0.95)), linear_features=N, reset_mechanism=mech, reset_delay=delay,
        learn_beta=learn, learn_threshold=learn, learn_recurrent=True),
    "RLeaky_one_to_one": lambda mech, delay, learn, shape: RLeaky(
        beta=_p(shape, 0.8, (0.9, 0.5, 0.7, 0.95)), V=_p(shape, 0.5, (0.5, -0.3, 0.2, 1.0)), all_to_all=False,
        reset_mechanism=mech, reset_delay=delay, learn_beta=learn, learn_recurrent=learn),
    "RSynaptic_dense": lambda mech, delay, learn, shape: RSynaptic(
        alpha=_p(shape, 0.7, (0.8, 0.6, 0.9, 1.0)), beta=_p(shape, 0.8, (0.9, 0.5, 0.7, 0.95)), linear_features=N,
        reset_mechanism=mech, reset_delay=delay, learn_alpha=learn, learn_beta=learn, learn_threshold=learn),
}

def make_input(T, b=B, n=N, dtype=torch.float64, seed=0, scale=0.9, shift=0.4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, b, n, generator=g, dtype=torch.float64) * scale + shift).to(dtype)

def run(neuron, x, fused, start=None, weights_seed=1):
    "Outputs, kept states and every gradient (input, initial states, learnable parameters) of one sequence."
    x = x.clone().requires_grad_()
    names = neuron._state_names
    start = [s.clone().requires_grad_() for s in start] if start is not None else []
    out = neuron_sequence(neuron, x, *start, fused=fused)
    kept = [getattr(neuron, n) for n in names]
    g = torch.Generator().manual_seed(weights_seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum() for o in out)
    loss = loss + sum((k * torch.randn(k.shape, generator=g, dtype=torch.float64).to(k.dtype)).sum() for k in kept)
    params = [p for p in neuron.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [x, *start, *params], allow_unused=True)
    return [t.detach() for t in (*out, *kept)], grads

def assert_runs_equal(a, b, **tol):
    for u, v in zip(a[0], b[0]): assert_close(u, v, **tol)
    for u, v in zip(a[1], b[1]):
        if u is None or v is None: assert u is None and v is None or (u if v is None else v).abs().sum() == 0
        else: assert_close(u, v, **tol)

def both(name, mech, delay, learn, shape, T=9, dtype=torch.float64, start=True, x=None):
    x = make_input(T, dtype=dtype) if x is None else x
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        neuron = FACTORIES[name](mech, delay, learn, shape).to(dtype)
        s0 = None
        if start:
            g = torch.Generator().manual_seed(7)
            s0 = [(torch.rand(B, N, generator=g, dtype=torch.float64) * (1.0 if n != "spk" else 1.0)).round().to(dtype)
                  if n == "spk" else (torch.rand(B, N, generator=g, dtype=torch.float64) * 1.5).to(dtype) for n in neuron._state_names]
        results.append(run(neuron, x, fused, s0))
    return results

GRID = [(n, m, d, l, s) for n in FACTORIES for m in MECHS for d in (True, False) for l in (False, True) for s in ("scalar", "neuron")
        if not (d is False and n in ("Lapicque", "Lapicque_RC", "Alpha"))]      # these have no reset_delay option

@pytest.mark.parametrize("name,mech,delay,learn,shape", GRID)
def test_fused_equals_loop(name, mech, delay, learn, shape):
    assert_runs_equal(*both(name, mech, delay, learn, shape))

@pytest.mark.parametrize("learn,shape,T", list(itertools.product((False, True), ("scalar", "neuron"), (1, 9))))
def test_delta_leaky_fused_equals_loop(learn, shape, T):
    "DeltaLeaky (no reset; states mem and mem_prev) from a given membrane: values, kept states and gradients."
    x = make_input(T, scale=1.5)
    results = []
    for fused in (True, False):
        neuron = DeltaLeaky(beta=_p(shape, 0.8, (0.9, 0.5, 1.0, 0.0)), delta_threshold=0.3, learn_beta=learn,
                            graded_spikes_factor=1.5 if learn else 1.0, learn_graded_spikes_factor=learn).double()
        mem0 = torch.rand(B, N, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 1.5
        results.append(run(neuron, x, fused, [mem0]))
        for n in neuron._state_names: assert getattr(neuron, n)._base is None, n
    assert_runs_equal(*results)

ZERO_G = {"scalar 0": 0.0, "per neuron (1, 0, 2)": (1.0, 0.0, 2.0)}

@pytest.mark.parametrize("g,mech,delay,learn,compiled", list(itertools.product(ZERO_G, MECHS, (True, False), (False, True), (True, False))))
def test_leaky_zero_graded_factor_gradients_equal_the_loop(g, mech, delay, learn, compiled, monkeypatch):
    """g = 0 (spikes of no amplitude), for all neurons or some: the fused backward recomputes the 0/1 spikes from the
    membrane instead of dividing the spikes by g (0/0: NaN gradients, or wrong ones with reset_delay=False)."""
    monkeypatch.setattr(scan, "use_numba", compiled)
    x, results = make_input(9, n=3, scale=1.5), []
    for fused in (True, False):
        neuron = Leaky(beta=0.9, reset_mechanism=mech, reset_delay=delay, learn_beta=True, learn_threshold=True,
                       graded_spikes_factor=torch.tensor(ZERO_G[g]), learn_graded_spikes_factor=learn).double()
        mem0 = torch.rand(B, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 1.5
        results.append(run(neuron, x, fused, [mem0]))
    assert all(torch.isfinite(v).all() for v in results[0][1])
    assert_runs_equal(*results)

@pytest.mark.parametrize("g,mech", list(itertools.product(ZERO_G, MECHS)))
def test_synaptic_zero_graded_factor_gradients_equal_the_loop(g, mech):
    "`synaptic_sequence` with g = 0 (all or some neurons, learnable): every gradient is the step loop's, none NaN."
    x = make_input(9, n=3, scale=1.5).requires_grad_()
    s0, m0 = (torch.rand(B, 3, generator=torch.Generator().manual_seed(k), dtype=torch.float64).requires_grad_() for k in (1, 2))
    a, b, th, gg = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in ((0.8, 0.5, 0.9), 0.7, 1.0, ZERO_G[g]))
    spk, _, (syn, mem) = synaptic_sequence(x, s0, m0, a, b, th, surrogate.atan(), mech, True, gg)
    rec, syn_t, mem_t = [], s0, m0
    for x_t in x:
        spk_t, syn_t, mem_t = synaptic_step(x_t, syn_t, mem_t, a, b, th, surrogate.atan(), mech, True, gg)
        rec.append((spk_t, syn_t, mem_t))
    w = torch.linspace(-1, 1, 3, dtype=torch.float64)
    leaves = [x, s0, m0, a, b, th, gg]
    got = torch.autograd.grad(((spk + syn + mem) * w).sum(), leaves)
    want = torch.autograd.grad(sum(((s + i + m) * w).sum() for s, i, m in rec), leaves)
    for u, v in zip(got, want):
        assert torch.isfinite(u).all()
        assert_close(u, v)

def test_synaptic_sequence_takes_numbers_like_leaky_sequence():
    "Python numbers for alpha, beta, threshold and the graded factor (its defaults included), as `leaky_sequence` takes them."
    x, z = make_input(5), torch.zeros(B, N, dtype=torch.float64)
    as_tensor = lambda v: torch.tensor(v, dtype=torch.float64)
    for delay in (True, False):
        want = synaptic_sequence(x, z, z, as_tensor(0.5), as_tensor(0.9), as_tensor(1.0), reset_delay=delay,
                                 graded_spikes_factor=as_tensor(1.0))
        got = synaptic_sequence(x, z, z, 0.5, 0.9, reset_delay=delay)
        for u, v in zip((got[0], *got[1], *got[2]), (want[0], *want[1], *want[2])): assert_close(u, v, rtol=0, atol=0)
    assert synaptic_sequence(x.float(), z.float(), z.float(), 0.5, 0.9)[0].dtype == torch.float32

SURROGATES = {
    "atan": surrogate.atan, "fast_sigmoid": surrogate.fast_sigmoid, "sigmoid": surrogate.sigmoid,
    "spike_rate_escape": surrogate.spike_rate_escape, "straight_through_estimator": surrogate.straight_through_estimator,
    "triangular": surrogate.triangular, "heaviside": surrogate.heaviside, "SFS": surrogate.SFS, "LSO": surrogate.LSO,
    "custom": lambda: surrogate.custom_surrogate(lambda x, grad, spk: grad * torch.exp(-x.abs())),
}

@pytest.mark.parametrize("name,sg", list(itertools.product(["Synaptic", "Lapicque", "Alpha", "RLeaky_dense", "RSynaptic_dense"], SURROGATES)))
def test_every_surrogate(name, sg):
    x = make_input(8)
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        neuron = FACTORIES[name]("subtract", True, True, "neuron").double()
        neuron.spike_grad = SURROGATES[sg]()
        results.append(run(neuron, x, fused))
    assert_runs_equal(*results)

@pytest.mark.parametrize("name", ["Leaky", "Synaptic", "Alpha", "RLeaky_dense"])
def test_surrogate_disable(name):
    x = make_input(8)
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        neuron = FACTORIES[name]("zero", True, True, "neuron").double()
        neuron.spike_grad = surrogate.heaviside_step
        results.append(run(neuron, x, fused))
    assert_runs_equal(*results)

@pytest.mark.parametrize("name,dtype", list(itertools.product(["Leaky", "Synaptic", "Alpha", "RLeaky_one_to_one"],
                                                               [torch.float16, torch.bfloat16, torch.float32])))
def test_dtypes(name, dtype):
    "Low precision: the fused forward is the loop's arithmetic; gradients are summed in another order, so compare loosely."
    a, b = both(name, "subtract", True, True, "neuron", dtype=dtype, start=False)
    for u, v in zip(a[0], b[0]):
        assert u.dtype == dtype
        assert_close(u, v, atol=0, rtol=0) if name == "Leaky" else assert_close(u, v, atol=2e-2, rtol=2e-2)
    tol = dict(float16=3e-2, bfloat16=1e-1, float32=1e-4)[str(dtype).split(".")[1]]
    for u, v in zip(a[1], b[1]):
        if u is not None: assert_close(u.double(), v.double(), atol=tol * (1 + v.abs().max().item()), rtol=tol)

@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(FACTORIES)), T=st.integers(1, 10), mech=st.sampled_from(MECHS), delay=st.booleans(),
       learn=st.booleans(), shape=st.sampled_from(["scalar", "neuron"]), seed=st.integers(0, 10_000), scale=st.floats(0.1, 3))
def test_fused_equals_loop_random(name, T, mech, delay, learn, shape, seed, scale):
    if name in ("Lapicque", "Lapicque_RC", "Alpha"): delay = True
    assert_runs_equal(*both(name, mech, delay, learn, shape, x=make_input(T, seed=seed, scale=scale)))

def test_hidden_mode_repeated_calls_continue_like_the_loop():
    for name in FACTORIES:
        x = make_input(10)
        torch.manual_seed(0); a = FACTORIES[name]("subtract", True, False, "neuron").double(); a.init_hidden = True
        torch.manual_seed(0); b = FACTORIES[name]("subtract", True, False, "neuron").double(); b.init_hidden = True
        got = torch.cat([sequence(a, x[:4]), sequence(a, x[4:])])
        assert_close(got, torch.stack([b(x_t) for x_t in x]), msg=name)
        for n in a._state_names: assert_close(getattr(a, n), getattr(b, n), msg=f"{name}.{n}")

# ---------------------------------------------------------------------------------------------------------------
# gradcheck (float64) of every fused node, with a smooth spike function so finite differences see it.

smooth = lambda u: torch.sigmoid(4 * u)
def rand(*shape, seed=0, scale=1.0):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale).requires_grad_()
def t(v): return torch.tensor(v, dtype=torch.float64, requires_grad=True)

@pytest.mark.parametrize("mech,delay", list(itertools.product(MECHS, (True, False))))
def test_gradcheck_synaptic(mech, delay):
    f = lambda x, s, m, a, b, th: torch.cat([o.flatten() for o in (lambda r: (r[0], *r[1], *r[2]))(
        synaptic_sequence(x, s, m, a, b, th, smooth, mech, delay, torch.tensor(1.3, dtype=torch.float64)))])
    assert torch.autograd.gradcheck(f, (rand(5, 2, 3, scale=1.2), rand(2, 3, seed=1), rand(2, 3, seed=2),
                                        t([0.8, 0.5, 0.9]), t(0.7), t(1.0)))

@pytest.mark.parametrize("mech", MECHS)
def test_gradcheck_lapicque_alpha(mech):
    f = lambda x, m, R, C, th: torch.cat([lapicque_sequence(x, m, R, C, torch.tensor(1.0, dtype=torch.float64), th, smooth, mech)[0].flatten()])
    assert torch.autograd.gradcheck(f, (rand(5, 2, 3, scale=1.5), rand(2, 3, seed=1), t([2.0, 3.0, 4.0]), t(1.5), t(0.9)))
    g = lambda x, e, i, m, a, b: torch.cat([o.flatten() for o in (lambda r: (r[0], *r[2]))(alpha_sequence(x, e, i, m, a, b, torch.tensor(1.0, dtype=torch.float64), smooth, mech))])
    assert torch.autograd.gradcheck(g, (rand(5, 2, 3, scale=1.5), rand(2, 3, seed=1), rand(2, 3, seed=2), rand(2, 3, seed=3),
                                        t([0.9, 0.8, 0.95]), t(0.6)))

@pytest.mark.parametrize("mech,delay", list(itertools.product(MECHS, (True, False))))
def test_gradcheck_recurrent(mech, delay):
    torch.manual_seed(0)
    layer = nn.Linear(3, 3).double()
    fn, _ = recurrent_fn(layer)
    thr = torch.tensor(1.0, dtype=torch.float64)
    f = lambda x, s, m, b, W, bias: rleaky_sequence(x, s, m, b, fn, (W, bias), thr, smooth, mech, delay)[0]
    assert torch.autograd.gradcheck(f, (rand(5, 2, 3, scale=1.2), rand(2, 3, seed=1), rand(2, 3, seed=2), t(0.8),
                                        layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_()))
    g = lambda x, s, i, m, a, W: rsynaptic_sequence(x, s, i, m, a, t(0.9), lambda z, W: z @ W.T, (W,), thr, smooth, mech, delay)[0]
    assert torch.autograd.gradcheck(g, (rand(5, 2, 3, scale=1.2), rand(2, 3, seed=1), rand(2, 3, seed=2), rand(2, 3, seed=3), t(0.7),
                                        layer.weight.detach().clone().requires_grad_()))

# ---------------------------------------------------------------------------------------------------------------
# Issue 19 item 3: the fused path must not differ from the loop outside the tested options.

ALL = sorted(FACTORIES)

@pytest.mark.parametrize("name", ["Leaky", "Synaptic", "Lapicque", "Alpha", "RLeaky_one_to_one"])
def test_broadcast_parameter_shape_gives_the_loops_output_shape(name):
    """A decay parameter of shape (5, 1) with a batch of 1: every step works on (5, N), so the output is (T, 5, N), as in
    the loop. Lapicque's step reads R and C (beta only sets them at construction, as in snnTorch), so it gets R."""
    param = "R" if name == "Lapicque" else "beta"
    value = torch.linspace(0.3, 0.9, 5, dtype=torch.float64).reshape(5, 1)
    x = make_input(6, b=1)
    outs = []
    for fused, x_in in ((True, x), (False, x.expand(6, 5, N))):        # the loop on the broadcast input
        torch.manual_seed(0)
        neuron = FACTORIES[name]("subtract", True, False, "scalar").double()
        setattr(neuron, param, value)
        outs.append(neuron_sequence(neuron, x_in, fused=fused)[0])
    assert outs[0].shape == (6, 5, N)
    assert_close(*outs)

def _second_order(neuron, fused):
    x = make_input(6).requires_grad_()
    spk_seq, *states = neuron_sequence(neuron, x, fused=fused)
    (g,) = torch.autograd.grad((spk_seq.sum() + states[-1].pow(2).sum()), x, create_graph=True)
    return x, g

@pytest.mark.parametrize("name", ALL)
def test_second_order_gradients_raise_and_say_use_the_loop(name):
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="create_graph=True.*step loop"):
        _second_order(FACTORIES[name]("subtract", True, True, "neuron").double(), fused=True)
    torch.manual_seed(0)
    x, g = _second_order(FACTORIES[name]("subtract", True, True, "neuron").double(), fused=False)    # the loop can
    assert g.requires_grad and torch.isfinite(torch.autograd.grad(g.pow(2).sum(), x)[0]).all()

@pytest.mark.parametrize("name", ALL)
def test_kept_state_is_its_own_small_tensor(name):
    torch.manual_seed(0)
    neuron = FACTORIES[name]("subtract", True, False, "neuron").double()
    x = make_input(7).requires_grad_()
    out = neuron_sequence(neuron, x)
    for n in neuron._state_names:
        kept = getattr(neuron, n)
        assert kept._base is None, n                                    # not a view of a returned sequence
        assert kept.untyped_storage().nbytes() == kept.numel() * kept.element_size(), n   # pins nothing bigger
    before = [o.detach().clone() for o in out]
    type(neuron).zeros(*(getattr(neuron, n) for n in neuron._state_names))      # snnTorch's idiom
    for a, b in zip(out, before): assert torch.equal(a.detach(), b)
    type(neuron).detach(*(getattr(neuron, n) for n in neuron._state_names))     # crashed on a view
    out[0].sum().backward()                                            # the graph is intact
    assert x.grad is not None

@pytest.mark.parametrize("name", ALL)
def test_second_call_without_reset_says_how_to_reset(name):
    torch.manual_seed(0)
    neuron = FACTORIES[name]("subtract", True, False, "neuron").double()
    neuron.init_hidden = True
    x = make_input(5).requires_grad_()
    sequence(neuron, x).sum().backward()
    spk = sequence(neuron, x)                                          # starts from the kept state of the freed graph
    with pytest.raises(RuntimeError, match=r"reset_mem\(\)|utils.reset"):
        spk.sum().backward()

@pytest.mark.parametrize("name", ["Leaky", "Synaptic", "Alpha"])
def test_second_call_after_reset_or_detach_or_retain_graph_works(name):
    "After reset_mem(), detach_states() or backward(retain_graph=True) a second (and third) call runs and equals the loop's."
    x = make_input(5).requires_grad_()
    for way in ("reset", "detach", "retain"):
        calls = []
        for fused in (True, False):
            torch.manual_seed(0)
            neuron = FACTORIES[name]("subtract", True, False, "neuron").double(); neuron.init_hidden = True
            sequence(neuron, x, fused=fused).sum().backward(retain_graph=(way == "retain"))
            if way == "reset": neuron.reset_mem()
            if way == "detach": neuron.detach_states()
            second = sequence(neuron, x, fused=fused)
            second.sum().backward()
            calls.append((second.detach(), sequence(neuron, x, fused=fused).detach()))
        for got, want in zip(*calls): assert_close(got, want, msg=f"{name} after {way}")
