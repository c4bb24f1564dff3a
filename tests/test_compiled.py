"""The optional numba kernels of the fused paths of `Leaky` (`LeakyNumba`) and `Synaptic` (`SynapticNumba`) against
the pure-PyTorch fused paths (`LeakySequence`, `SynapticSequence`): the same spikes and membranes bit for bit, the same gradients (input, initial membrane, beta,
threshold, and those arriving through the recorded membrane sequence), over reset mechanisms, surrogates, parameter
shapes, dtypes, odd shapes, T = 1 and strided inputs; gradcheck in float64; and the PyTorch path taken wherever the
kernels do not apply (numba missing, `use_numba = False`, float16/bfloat16, an unknown surrogate, `reset_delay=False`,
a learnable graded factor), with the same first-order-only error under create_graph=True."""
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.testing import assert_close

from snnedu import surrogate
from snnedu.neurons import Leaky, scan
from snnedu.neurons.base import neuron_sequence
from snnedu.neurons.leaky import leaky_sequence

needs_numba = pytest.mark.skipif(scan.numba is None, reason="numba is not installed (the compiled path is optional)")
MECHS = ("subtract", "zero", "none")
SURROGATES = {"atan": surrogate.atan(), "atan_3": surrogate.atan(alpha=3.0), "fast_sigmoid": surrogate.fast_sigmoid(),
              "fast_sigmoid_25": surrogate.fast_sigmoid(slope=25)}

@pytest.fixture
def torch_path(monkeypatch):
    "Run the body with the compiled kernels switched off (restored afterwards)."
    def switch(on): monkeypatch.setattr(scan, "use_numba", on)
    return switch

def node(out):
    "Which autograd Function made `out`: 'LeakyNumba' or 'LeakySequence'."
    return type(out.grad_fn).__name__.removesuffix("Backward")

def both_paths(torch_path, x, mem0, beta, thr, g=1.0, weights=None, **kw):
    """`leaky_sequence` once compiled, once in PyTorch: per path, (spk, mem_last, mem_seq, grads of x, mem0, beta, thr)
    of a loss that reaches every output; `weights` scale the spikes (a non-uniform ∂L/∂S)."""
    leaves = [v for v in (x, mem0, beta, thr) if isinstance(v, torch.Tensor) and v.requires_grad]
    outs = []
    for compiled in (True, False):
        torch_path(compiled)
        spk, last, mem = leaky_sequence(x, mem0, beta, thr, graded_spikes_factor=g, **kw)
        w = torch.linspace(-1, 1, spk.shape[-1], dtype=spk.dtype) if weights is None else weights
        loss = (spk * w).sum() + (mem.pow(2) * 0.1).sum() + last.sum()
        outs.append((node(spk), spk, last, mem, *torch.autograd.grad(loss, leaves)))
    return outs

def check_equal(outs, values_exact=True):
    (n_c, *compiled), (n_t, *torch_) = outs
    assert (n_c, n_t) == ("LeakyNumba", "LeakySequence")
    for a, b in zip(compiled[:3], torch_[:3]):
        assert torch.equal(a, b) if values_exact else torch.allclose(a, b)
    for a, b in zip(compiled[3:], torch_[3:]): assert_close(a, b)

def inputs(T=12, shape=(3, 5), dtype=torch.float32, seed=0, per_neuron=True):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, *shape, generator=g, dtype=torch.float64) * 0.8 + 0.45).to(dtype).requires_grad_()
    mem0 = (torch.rand(shape, generator=g, dtype=torch.float64) * 1.4).to(dtype).requires_grad_()   # some start above θ
    n = shape[-1]
    beta = (torch.rand(n, generator=g, dtype=torch.float64) if per_neuron else torch.tensor(0.85, dtype=torch.float64))
    thr = (torch.rand(n, generator=g, dtype=torch.float64) + 0.5 if per_neuron else torch.tensor(1.0, dtype=torch.float64))
    return x, mem0, beta.to(dtype).requires_grad_(), thr.to(dtype).requires_grad_()

@needs_numba
@pytest.mark.parametrize("mech", MECHS)
@pytest.mark.parametrize("sg", SURROGATES)
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("per_neuron", (True, False))
def test_compiled_equals_torch_path(torch_path, mech, sg, dtype, per_neuron):
    x, mem0, beta, thr = inputs(dtype=dtype, per_neuron=per_neuron)
    check_equal(both_paths(torch_path, x, mem0, beta, thr, reset_mechanism=mech, spike_fn=SURROGATES[sg]))

@needs_numba
@pytest.mark.parametrize("mech", MECHS)
def test_graded_spikes_and_per_element_parameters(torch_path, mech):
    x, mem0, _, _ = inputs(T=9, shape=(2, 3, 4))
    beta = torch.rand(3, 1, requires_grad=True)                                       # broadcast over the last dim
    thr = (torch.rand(2, 3, 4) + 0.5).requires_grad_()                                # one per element
    check_equal(both_paths(torch_path, x, mem0, beta, thr, g=torch.tensor([0.5, 2.0, 1.0, 0.0]), reset_mechanism=mech))

@needs_numba
@pytest.mark.parametrize("T, shape", [(1, (1,)), (1, (4, 3)), (7, (1, 1)), (5, (3, 7, 2)), (40, (2, 129)), (3, (517,))])
def test_odd_shapes_and_one_step(torch_path, T, shape):
    x, mem0, beta, thr = inputs(T=T, shape=shape, per_neuron=False)
    check_equal(both_paths(torch_path, x, mem0, beta, thr))

@needs_numba
def test_more_neurons_than_one_block(torch_path):
    "Several blocks (the block size at T = 30 is a few hundred neurons), the last one partial."
    x, mem0, beta, thr = inputs(T=30, shape=(3, 1001), per_neuron=False)
    check_equal(both_paths(torch_path, x, mem0, beta, thr, reset_mechanism="zero"))

@needs_numba
@pytest.mark.parametrize("layout", ("transposed", "time_expanded", "neuron_broadcast", "sliced"))
def test_strided_inputs(torch_path, layout):
    base, mem0, beta, thr = inputs(T=8, shape=(4, 6), per_neuron=False)
    leaf = base.detach().clone().requires_grad_()
    x = {"transposed": lambda: leaf.transpose(1, 2).contiguous().transpose(1, 2),     # neuron dims do not flatten: a copy
         "time_expanded": lambda: leaf[:1].expand(8, 4, 6),                            # a static input, stride 0 in time
         "neuron_broadcast": lambda: leaf[:, :1, :1].expand(8, 4, 6),                  # one number per step
         "sliced": lambda: leaf[::2]}[layout]()                                         # every other step
    mem0 = mem0[:, :] if layout != "sliced" else mem0
    outs = []
    for compiled in (True, False):
        torch_path(compiled)
        spk, last, mem = leaky_sequence(x, mem0, beta, thr)
        loss = (spk * torch.linspace(-1, 1, 6)).sum() + mem.pow(2).sum()
        outs.append((node(spk), spk, last, mem, *torch.autograd.grad(loss, [leaf, mem0, beta, thr])))
    check_equal(outs)

@needs_numba
@pytest.mark.parametrize("which", ("spikes", "mem_seq", "mem_last"))
def test_each_output_alone_sends_its_gradient(torch_path, which):
    "Autograd sends None for the outputs the loss does not use; the kernels treat them as zero."
    x, mem0, beta, thr = inputs()
    grads = []
    for compiled in (True, False):
        torch_path(compiled)
        spk, last, mem = leaky_sequence(x, mem0, beta, thr)
        out = {"spikes": spk, "mem_seq": mem, "mem_last": last}[which]
        grads.append(torch.autograd.grad((out * torch.rand_like(out, generator=torch.Generator().manual_seed(3))).sum(),
                                         [x, mem0, beta, thr]))
    for a, b in zip(*grads): assert_close(a, b)

@needs_numba
def test_sum_gradient_is_a_broadcast_and_record_false(torch_path):
    "`spk.sum().backward()` sends an all-stride-0 gradient; `record=False` returns no membrane sequence."
    x, mem0, beta, thr = inputs(T=20, shape=(8, 16), per_neuron=False)
    res = []
    for compiled in (True, False):
        torch_path(compiled)
        spk, last, mem = leaky_sequence(x, mem0, beta, thr, record=False)
        assert mem is None
        res.append((node(spk), spk, last, *torch.autograd.grad(spk.sum() + last.sum(), [x, mem0, beta, thr])))
    check_equal([(r[0], r[1], r[2], r[2], *r[3:]) for r in res])

@needs_numba
def test_only_some_leaves_need_gradients(torch_path):
    "No input gradient wanted (a first layer fed data): none written; the parameters' still right."
    x, mem0, beta, thr = inputs()
    x = x.detach()
    res = []
    for compiled in (True, False):
        torch_path(compiled)
        spk, last, mem = leaky_sequence(x, mem0.detach(), beta, thr)
        res.append(torch.autograd.grad((spk * torch.linspace(-1, 1, 5)).sum() + mem.sum(), [beta, thr]))
    for a, b in zip(*res): assert_close(a, b)

@needs_numba
def test_no_grad_forward_saves_nothing():
    x, mem0, beta, thr = inputs()
    with torch.no_grad(): spk, last, mem = leaky_sequence(x, mem0, beta, thr)
    assert spk.grad_fn is None and not spk.requires_grad
    spk, _, _ = leaky_sequence(x.detach(), mem0.detach(), beta.detach(), thr.detach())
    assert spk.grad_fn is None                                                         # nothing needs a gradient

@needs_numba
@pytest.mark.parametrize("mech", MECHS)
@pytest.mark.parametrize("sg", ("atan", "fast_sigmoid"))
def test_gradcheck_float64(mech, sg):
    x, mem0, beta, thr = inputs(T=6, shape=(2, 3), dtype=torch.float64, seed=4)
    def f(x, mem0, beta, thr):
        spk, last, mem = leaky_sequence(x, mem0, beta, thr, spike_fn=SURROGATES[sg], reset_mechanism=mech)
        assert node(spk) == "LeakyNumba"
        return spk, last, mem
    # the spikes are steps (their surrogate gradient is no derivative): gradcheck the membranes, which are smooth in
    # every input away from θ (R is detached); the surrogate part is checked against the PyTorch path above
    assert torch.autograd.gradcheck(lambda *a: f(*a)[1:], (x, mem0, beta, thr), nondet_tol=0, atol=1e-6)

@needs_numba
@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 15), b=st.integers(1, 4), n=st.integers(1, 9), mech=st.sampled_from(MECHS),
       per_neuron=st.booleans(), seed=st.integers(0, 1000))
def test_hypothesis_shapes_and_options(T, b, n, mech, per_neuron, seed):
    x, mem0, beta, thr = inputs(T=T, shape=(b, n), seed=seed, per_neuron=per_neuron)
    outs = []
    for compiled in (True, False):
        scan.use_numba = compiled
        try:
            spk, last, mem = leaky_sequence(x, mem0, beta, thr, reset_mechanism=mech)
            loss = (spk * torch.linspace(-1, 1, n)).sum() + mem.pow(2).sum()
            outs.append((node(spk), spk, last, mem, *torch.autograd.grad(loss, [x, mem0, beta, thr])))
        finally: scan.use_numba = True
    check_equal(outs)

@needs_numba
def test_module_and_repeated_calls_use_the_kernels(torch_path):
    "`Leaky.sequence` goes through the kernels, keeps its last membrane, and a second call continues from it."
    x, _, _, _ = inputs(T=10, shape=(2, 4))
    res = []
    for compiled in (True, False):
        torch_path(compiled)
        lif = Leaky(beta=0.8, learn_beta=True)
        spk1, mem1 = lif.sequence(x)
        spk2, mem2 = lif.sequence(x)                                                   # continues from the kept membrane
        assert node(spk1) == ("LeakyNumba" if compiled else "LeakySequence")
        res.append((spk1, mem1, spk2, mem2, lif.mem, *torch.autograd.grad((spk2 + mem2).sum(), [x, lif.beta])))
    for a, b in zip(*res): assert_close(a, b)

# ---------------------------------------------------------------------------------------------------------------
# Where the kernels must not run: the PyTorch path, unchanged (these run with or without numba).

def _fused_node(**kw):
    x = torch.rand(6, 2, 3, dtype=kw.pop("dtype", torch.float32), requires_grad=True)
    return node(leaky_sequence(x, torch.zeros(2, 3, dtype=x.dtype), 0.9, **kw)[0])

@pytest.mark.parametrize("case", [dict(dtype=torch.float16), dict(dtype=torch.bfloat16), dict(spike_fn=surrogate.sigmoid()),
                                  dict(spike_fn=surrogate.triangular()), dict(spike_fn=surrogate.straight_through_estimator()),
                                  dict(reset_delay=False), dict(graded_spikes_factor=torch.tensor(2.0, requires_grad=True)),
                                  dict(inplace=False)])
def test_falls_back_to_the_torch_path(case):
    assert _fused_node(**case) == "LeakySequence"

def test_without_numba_the_torch_path_runs(monkeypatch):
    monkeypatch.setattr(scan, "numba", None)                                           # as if numba were not installed
    assert not scan.numba_applies(surrogate.atan(), torch.zeros(2))
    assert _fused_node() == "LeakySequence"

def test_the_switch_forces_the_torch_path(torch_path):
    torch_path(False)
    assert _fused_node() == "LeakySequence"

@needs_numba
def test_the_compiled_path_is_the_default():
    assert scan.use_numba and _fused_node() == "LeakyNumba"

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_take_the_torch_path():
    x = torch.rand(6, 2, 3, device="cuda", requires_grad=True)
    assert node(leaky_sequence(x, torch.zeros(2, 3, device="cuda"), 0.9)[0]) == "LeakySequence"

@needs_numba
def test_second_order_gradients_raise_the_same_clear_error():
    x = torch.rand(5, 2, 3, requires_grad=True)
    spk, mem = neuron_sequence(Leaky(beta=0.9), x)
    assert node(spk) == "LeakyNumba"
    with pytest.raises(RuntimeError, match="second-order gradients.*fused=False"):
        torch.autograd.grad((spk + mem).sum(), x, create_graph=True)

# ---------------------------------------------------------------------------------------------------------------
# Synaptic: the same kernels' helpers, its own recurrence (SynapticNumba against SynapticSequence).

from snnedu.neurons import Synaptic  # noqa: E402
from snnedu.neurons.synaptic import synaptic_sequence  # noqa: E402

def synaptic_paths(torch_path, T=14, shape=(3, 5), dtype=torch.float32, mech="subtract", per_neuron=True, seed=0,
                   spike_fn=surrogate.atan(), x_view=lambda x: x):
    "Per path: (node, spk, syn_seq, mem_seq, grads of x, syn0, mem0, alpha, beta, thr) of a loss reaching every output."
    x, mem0, beta, thr = inputs(T=T, shape=shape, dtype=dtype, seed=seed, per_neuron=per_neuron)
    g = torch.Generator().manual_seed(seed + 1)
    alpha = (torch.rand(shape[-1], generator=g, dtype=torch.float64) if per_neuron else torch.tensor(0.7, dtype=torch.float64))
    alpha = alpha.to(dtype).requires_grad_()
    syn0 = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    one = torch.tensor(1.0, dtype=dtype)
    outs = []
    for compiled in (True, False):
        torch_path(compiled)
        spk, _, (syn, mem) = synaptic_sequence(x_view(x), syn0, mem0, alpha, beta, thr, spike_fn, mech,
                                               graded_spikes_factor=one)
        loss = (spk * torch.linspace(-1, 1, shape[-1], dtype=dtype)).sum() + (syn * 0.3).pow(2).sum() + mem.pow(2).sum()
        outs.append((node(spk), spk, syn, mem, *torch.autograd.grad(loss, [x, syn0, mem0, alpha, beta, thr])))
    return outs

def check_synaptic(outs):
    (n_c, *compiled), (n_t, *torch_) = outs
    assert (n_c, n_t) == ("SynapticNumba", "SynapticSequence")
    for a, b in zip(compiled[:3], torch_[:3]): assert torch.equal(a, b)
    for a, b in zip(compiled[3:], torch_[3:]): assert_close(a, b)

@needs_numba
@pytest.mark.parametrize("mech", MECHS)
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("per_neuron", (True, False))
@pytest.mark.parametrize("sg", ("atan", "fast_sigmoid_25"))
def test_synaptic_compiled_equals_torch_path(torch_path, mech, dtype, per_neuron, sg):
    check_synaptic(synaptic_paths(torch_path, dtype=dtype, mech=mech, per_neuron=per_neuron, spike_fn=SURROGATES[sg]))

@needs_numba
@pytest.mark.parametrize("T, shape", [(1, (1,)), (1, (2, 3)), (6, (2, 3, 4)), (30, (3, 333))])
def test_synaptic_odd_shapes_one_step_and_many_blocks(torch_path, T, shape):
    check_synaptic(synaptic_paths(torch_path, T=T, shape=shape, per_neuron=False, mech="zero"))

@needs_numba
def test_synaptic_time_expanded_input(torch_path):
    check_synaptic(synaptic_paths(torch_path, x_view=lambda x: x[:1].expand(x.shape)))

@needs_numba
@pytest.mark.parametrize("mech", MECHS)
def test_synaptic_gradcheck_float64(mech):
    x, mem0, beta, thr = inputs(T=5, shape=(2, 3), dtype=torch.float64, seed=5)
    alpha, syn0 = torch.rand(3, dtype=torch.float64, requires_grad=True), torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    def f(x, syn0, mem0, alpha, beta, thr):
        spk, _, (syn, mem) = synaptic_sequence(x, syn0, mem0, alpha, beta, thr, reset_mechanism=mech,
                                               graded_spikes_factor=torch.tensor(1.0, dtype=torch.float64))
        assert node(spk) == "SynapticNumba"
        return syn, mem                                                                # smooth away from θ (see Leaky's)
    assert torch.autograd.gradcheck(f, (x, syn0, mem0, alpha, beta, thr), atol=1e-6)

@needs_numba
def test_synaptic_module_uses_the_kernels(torch_path):
    x, _, _, _ = inputs(T=10, shape=(2, 4))
    res = []
    for compiled in (True, False):
        torch_path(compiled)
        neuron = Synaptic(alpha=0.8, beta=0.7, learn_alpha=True)
        spk, syn, mem = neuron.sequence(x)
        assert node(spk) == ("SynapticNumba" if compiled else "SynapticSequence")
        res.append((spk, syn, mem, neuron.mem, *torch.autograd.grad((spk + mem).sum(), [x, neuron.alpha])))
    for a, b in zip(*res): assert_close(a, b)

@pytest.mark.parametrize("case", [dict(dtype=torch.float16), dict(spike_fn=surrogate.sigmoid()), dict(reset_delay=False),
                                  dict(graded_spikes_factor=torch.tensor(2.0, requires_grad=True))])
def test_synaptic_falls_back_to_the_torch_path(case):
    case = dict(case)
    dtype = case.pop("dtype", torch.float32)
    x, z = torch.rand(6, 2, 3, dtype=dtype, requires_grad=True), torch.zeros(2, 3, dtype=dtype)
    kw = {"graded_spikes_factor": torch.tensor(1.0, dtype=dtype), **case}
    spk = synaptic_sequence(x, z, z, torch.tensor(0.8, dtype=dtype), torch.tensor(0.9, dtype=dtype),
                            torch.tensor(1.0, dtype=dtype), **kw)[0]
    assert node(spk) in ("SynapticSequence", "StepScan")

def test_a_process_without_numba_runs_the_torch_path():
    "numba not importable at all (as on a machine without it): snnedu imports, the fused path trains, in PyTorch."
    import subprocess
    import sys
    code = ("import sys; sys.modules['numba'] = None\n"                                  # `import numba` now raises ImportError
            "import torch, snnedu\nfrom snnedu.neurons import scan\nassert scan.numba is None\n"
            "x = torch.rand(5, 2, 3, requires_grad=True)\n"
            "for n in (snnedu.Leaky(beta=0.9), snnedu.Synaptic(alpha=0.8, beta=0.9)):\n"
            "    spk = n.sequence(x)[0]; spk.sum().backward()\n"
            "    print(type(spk.grad_fn).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["LeakySequenceBackward", "SynapticSequenceBackward"]

@pytest.mark.parametrize("neuron", ("Leaky", "Synaptic"))
def test_an_empty_batch_takes_the_torch_path(neuron):
    x = torch.rand(4, 0, 3, requires_grad=True)
    n = Leaky(beta=0.9) if neuron == "Leaky" else Synaptic(alpha=0.8, beta=0.9)
    spk = n.sequence(x)[0]
    spk.sum().backward()
    assert spk.shape == (4, 0, 3) and x.grad.shape == (4, 0, 3) and node(spk).endswith("Sequence")

def _spikes_and_gradient(x, queue):
    "In a child: a Leaky neuron's spikes and ∂L/∂x for `x`, and whether the kernels would run there."
    x = x.clone().requires_grad_()
    spk = Leaky(beta=0.9).sequence(x)[0]
    (spk * torch.linspace(-1, 1, x.shape[-1])).sum().backward()
    queue.put((spk.detach().tolist(), x.grad.tolist(), scan.numba_applies(surrogate.atan(), x), node(spk)))

@needs_numba
@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork() here")
def test_a_child_forked_after_the_kernels_ran_takes_the_torch_path():
    """After the kernels ran here, a fork()ed child (multiprocessing's 'fork' start method, DataLoader workers) that ran
    them would be killed by numba's GNU OpenMP layer: it takes the PyTorch path, with the same spikes and gradients."""
    import multiprocessing
    x = torch.randn(6, 2, 5, generator=torch.Generator().manual_seed(0)) + 0.6
    x_here = x.clone().requires_grad_()
    spk = Leaky(beta=0.9).sequence(x_here)[0]
    assert node(spk) == "LeakyNumba"                                   # the kernels ran in this process
    (spk * torch.linspace(-1, 1, 5)).sum().backward()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_spikes_and_gradient, args=(x, queue))
    child.start(); child.join(120)
    assert child.exitcode == 0, f"the forked child died (exit code {child.exitcode})"
    spk_child, grad_child, applies, made_by = queue.get(timeout=10)
    assert (applies, made_by) == (False, "LeakySequence")
    assert torch.equal(torch.tensor(spk_child), spk.detach())
    assert_close(torch.tensor(grad_child), x_here.grad)
    assert scan.numba_applies(surrogate.atan(), x)                    # this process keeps its kernels

THREADS_SCRIPT = """
import threading, numba, torch
from snnedu.neurons import Leaky
torch.set_num_threads(2)
x = torch.randn(20, 8, 2000, generator=torch.Generator().manual_seed(0))
want = Leaky(beta=0.9).sequence(x)[0]
assert numba.threading_layer() == "workqueue", numba.threading_layer()
wrong = []
def work():
    for _ in range(10):
        if not torch.equal(Leaky(beta=0.9).sequence(x)[0], want): wrong.append(1)
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print("wrong", len(wrong))
"""

@needs_numba
def test_threads_share_the_kernels_under_the_workqueue_layer():
    """numba's workqueue threading layer (its fallback without TBB or OpenMP, e.g. on macOS) aborts the process when two
    Python threads launch kernels at once: launches are serialised, so three threads get the right spikes."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["wrong", "0"]
