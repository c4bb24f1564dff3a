"""neurons.base: the shared machinery (signatures, parameters, state rules, errors) and the oracle helpers.

The helpers `run_parity` / `compare_parity` are imported by the per-neuron test files: they run one snnedu
neuron and one snnTorch 1.0.0 neuron on the same inputs, in explicit or hidden-state mode, and compare
spikes, every state and the gradients with respect to the inputs and every learnable parameter.
"""
import copy
import gc
import inspect
import pickle
import warnings
import weakref

import pytest
import torch
from torch.testing import assert_close

import snntorch
import snntorch.surrogate as ref_surrogate

import snnedu
from snnedu import surrogate
from snnedu.neurons.base import (LIF, NeuronState, SpikingNeuron, apply_reset, as_float_tensor, decay_tensor,
                                 emit_spikes, immediate_reset, reset_signal, resolve_state)
from snnedu.neurons.leaky import Leaky

# ---------------------------------------------------------------- oracle helpers (used by the other files)

SURROGATES = {  # name -> (snnedu factory, snnTorch factory); None = the default (atan, alpha=2)
    'default': (lambda: None, lambda: None),
    'fast_sigmoid': (lambda: surrogate.fast_sigmoid(slope=25), lambda: ref_surrogate.fast_sigmoid(slope=25)),
    'sigmoid': (lambda: surrogate.sigmoid(slope=5), lambda: ref_surrogate.sigmoid(slope=5)),
    'atan4': (lambda: surrogate.atan(alpha=4.0), lambda: ref_surrogate.atan(alpha=4.0)),
    'ste': (lambda: surrogate.straight_through_estimator(), lambda: ref_surrogate.straight_through_estimator()),
}

def ste_quant(mem):
    "A state quantiser both libraries can call: 1/8 levels going forward, identity gradient."
    return mem + (torch.round(mem * 8) / 8 - mem).detach()

def make_inputs(shape, steps=8, seed=0, scale=1.2, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(shape, generator=g, dtype=dtype) * scale - 0.1 * scale).requires_grad_() for _ in range(steps)]

def run_parity(neuron, xs, hidden):
    "Run `neuron` over `xs`; returns a list of (spk, *states) per step. Hidden mode needs `output=True`."
    outs, states = [], None
    for x in xs:
        if hidden: out = neuron(x)
        else: out = neuron(x, *states) if states is not None else neuron(x)
        outs.append(out)
        if not hidden: states = out[1:]
    return outs

def compare_parity(ours, ref, xs, hidden, learnable=(), atol=1e-5, rtol=1e-5):
    "Spikes, states, and gradients w.r.t. inputs and the named learnable parameters agree with the reference."
    xs_ref = [x.detach().clone().requires_grad_() for x in xs]
    out_o, out_r = run_parity(ours, xs, hidden), run_parity(ref, xs_ref, hidden)
    g = torch.Generator().manual_seed(1)
    loss_o = loss_r = 0
    for step, (o, r) in enumerate(zip(out_o, out_r)):
        assert len(o) == len(r)
        for k, (a, b) in enumerate(zip(o, r)):
            assert_close(a, b.to(a.dtype), atol=atol, rtol=rtol, msg=lambda m: f"step {step}, output {k}: {m}")
            w = torch.randn(a.shape, generator=g, dtype=a.dtype)
            loss_o = loss_o + (a * w).sum()
            loss_r = loss_r + (b * w).sum()
    loss_o.backward(); loss_r.backward()
    for step, (a, b) in enumerate(zip(xs, xs_ref)):
        assert_close(a.grad, b.grad.to(a.dtype), atol=atol, rtol=rtol, msg=lambda m: f"input grad at step {step}: {m}")
    for name in learnable:
        pa, pb = getattr(ours, name), getattr(ref, name)
        assert isinstance(pa, torch.nn.Parameter) and isinstance(pb, torch.nn.Parameter), name
        assert_close(pa.grad, pb.grad, atol=atol * 10, rtol=rtol * 10, msg=lambda m: f"grad of {name}: {m}")
    return out_o

# ---------------------------------------------------------------- signatures

@pytest.mark.parametrize('ours, ref', [(SpikingNeuron, snntorch.SpikingNeuron), (LIF, snntorch.LIF)])
def test_signature_matches_reference(ours, ref):
    assert inspect.signature(ours) == inspect.signature(ref)

@pytest.mark.parametrize('name', ['fire', 'fire_inhibition', 'mem_reset', 'detach', 'zeros'])
def test_method_signatures(name):
    assert list(inspect.signature(getattr(SpikingNeuron, name)).parameters) == \
           list(inspect.signature(getattr(snntorch.SpikingNeuron, name)).parameters)

def test_top_level_names():
    assert snnedu.SpikingNeuron is SpikingNeuron and snnedu.LIF is LIF and snnedu.Leaky is Leaky

# ---------------------------------------------------------------- construction

def test_defaults_and_buffers():
    n = LIF(beta=0.9)
    assert isinstance(n.spike_grad, surrogate.SurrogateSpike) and n.spike_grad.params == {'alpha': 2.0}
    assert LIF(beta=0.9).spike_grad is not n.spike_grad            # a fresh surrogate per neuron
    assert list(n.state_dict()) == list(snntorch.LIF(beta=0.9).state_dict())
    assert n.threshold.dtype == torch.float32 and n.beta.dtype == torch.float32
    assert dict(n.named_buffers()).keys() >= {'threshold', 'beta', 'graded_spikes_factor', 'reset_mechanism_val'}
    assert not list(n.parameters())

@pytest.mark.parametrize('flag, name', [('learn_beta', 'beta'), ('learn_threshold', 'threshold'),
                                        ('learn_graded_spikes_factor', 'graded_spikes_factor')])
def test_learn_flags_make_parameters(flag, name):
    n = LIF(beta=0.9, **{flag: True})
    assert isinstance(getattr(n, name), torch.nn.Parameter)
    assert [k for k, _ in n.named_parameters()] == [name]
    assert name in n.state_dict()

def test_integer_threshold_becomes_float_and_learnable():
    n = LIF(beta=0.5, threshold=1, learn_threshold=True)
    assert n.threshold.dtype == torch.float32

def test_tensor_parameters_keep_shape_and_dtype():
    beta = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    n = LIF(beta=beta, threshold=torch.ones(3))
    assert n.beta.shape == (3,) and n.beta.dtype == torch.float64
    assert LIF(beta=[0.2, 0.4]).beta.shape == (2,)

def test_surrogate_disable_uses_plain_step():
    n = Leaky(beta=0.5, surrogate_disable=True, spike_grad=surrogate.fast_sigmoid())
    x = torch.tensor([2.0], requires_grad=True)
    spk, _ = n(x)
    assert spk.item() == 1.0 and not spk.requires_grad

def test_inhibition_warns_like_reference():
    with pytest.warns(UserWarning, match='Inhibition is an unstable feature'):
        LIF(beta=0.5, inhibition=True)

def test_no_warning_by_default():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        LIF(beta=0.5)

# ---------------------------------------------------------------- the bad-input catalogue

@pytest.mark.parametrize('kwargs, exc, text', [
    (dict(beta=1.5), ValueError, 'beta must be in [0, 1], got [1.5]'),
    (dict(beta=-0.1), ValueError, 'beta must be in [0, 1]'),
    (dict(beta=float('nan')), ValueError, 'beta must be in [0, 1]'),
    (dict(beta=torch.tensor([0.5, 2.0])), ValueError, 'got [2.0]'),
    (dict(beta='0.9'), TypeError, 'beta must be a real number or a tensor'),
    (dict(beta=None), TypeError, 'beta must be a real number or a tensor'),
    (dict(beta=True), TypeError, 'beta must be a real number or a tensor'),
    (dict(beta=0.9, threshold='1'), TypeError, 'threshold must be a real number or a tensor'),
    (dict(beta=0.9, threshold=None), TypeError, 'threshold must be a real number or a tensor'),
    (dict(beta=0.9, graded_spikes_factor=[]), TypeError, 'graded_spikes_factor must be a real number'),
    (dict(beta=0.9, reset_mechanism='reset'), ValueError, "reset_mechanism must be 'subtract', 'zero' or 'none', got 'reset'"),
    (dict(beta=0.9, reset_mechanism=0), ValueError, "reset_mechanism must be"),
    (dict(beta=0.9, spike_grad=surrogate.atan), None, None),     # the factory itself is callable: accepted (as snnTorch)
    (dict(beta=0.9, spike_grad=2.0), TypeError, 'spike_grad must be a callable'),
    (dict(beta=0.9, state_quant=8), TypeError, 'state_quant must be a callable'),
])
def test_bad_constructor_arguments(kwargs, exc, text):
    if exc is None: LIF(**kwargs); return
    with pytest.raises(exc) as e: LIF(**kwargs)
    assert text in str(e.value)

def test_bad_reset_mechanism_assignment():
    n = Leaky(beta=0.5)
    with pytest.raises(ValueError, match='reset_mechanism must be'): n.reset_mechanism = 'Subtract'
    assert n.reset_mechanism == 'subtract'

def test_state_errors():
    n = Leaky(beta=0.5)
    with pytest.raises(ValueError, match=r'mem has shape \(2,\) but the input has shape \(2, 3\)'):
        n(torch.ones(2, 3), torch.zeros(2))                  # does not broadcast (snnTorch silently zeros it)
    with pytest.raises(ValueError, match=r'mem has shape \(2, 3\) but the input has shape \(3,\).*broadcasts to it'):
        n(torch.ones(3), torch.zeros(2, 3))                  # broadcasting would enlarge the input's shape
    with pytest.raises(TypeError, match='mem must be a tensor'): n(torch.ones(2), 0.5)
    with pytest.raises(TypeError, match='input_ must be a tensor'): n([1.0, 2.0])
    h = Leaky(beta=0.5, init_hidden=True)
    with pytest.raises(TypeError, match=r'Leaky\(init_hidden=True\) keeps its own state.*not with mem'):
        h(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match='batch_size must be'): n.fire_inhibition(3, torch.ones(2, 4))

def test_bad_state_dict_reset_value():
    n = Leaky(beta=0.5)
    sd = n.state_dict(); sd['reset_mechanism_val'] = torch.tensor(7)
    with pytest.raises(ValueError, match='reset_mechanism_val must be 0, 1 or 2'): n.load_state_dict(sd)

# ---------------------------------------------------------------- state rules

def test_lazy_zeros_follow_input_dtype_and_shape():
    n = Leaky(beta=0.5)
    assert n.mem.numel() == 0 and n.reset_mem().numel() == 0
    spk, mem = n(torch.ones(2, 3, dtype=torch.float64))
    assert mem.dtype == spk.dtype == torch.float64 and mem.shape == (2, 3)

def test_empty_state_means_zeros():
    n = Leaky(beta=0.5)
    spk, mem = n(torch.full((2, 3), 0.4), torch.zeros(0))
    assert_close(mem, torch.full((2, 3), 0.4))

def test_reset_mem_output_restarts_at_any_shape():
    n = Leaky(beta=0.5)
    n(torch.ones(4, 3))
    mem = n.init_leaky()                                      # zeros of shape (4, 3)
    assert mem.shape == (4, 3) and mem.abs().sum() == 0
    spk, mem = n(torch.full((2, 3), 0.4), mem)               # last, smaller batch: starts from zeros
    assert_close(mem, torch.full((2, 3), 0.4))
    with pytest.raises(ValueError, match='shape'): n(torch.ones(5, 3), mem)   # a running state of another shape raises

def test_explicit_mode_carries_state_like_reference():
    "census 2.0: repeated lif(x) without mem continues the trajectory (0.30, 0.45, 0.525)."
    ours, ref = Leaky(beta=0.5), snntorch.Leaky(beta=0.5)
    for expected in [0.3, 0.45, 0.525]:
        assert_close(ours(torch.tensor([0.3]))[1], torch.tensor([expected]))
        assert_close(ref(torch.tensor([0.3]))[1], torch.tensor([expected]))
    ours.reset_mem()
    assert_close(ours(torch.tensor([0.3]))[1], torch.tensor([0.3]))

def test_hidden_mode_batch_change_restarts():
    n = Leaky(beta=0.5, init_hidden=True, output=True)
    n(torch.ones(4, 2)); n(torch.ones(4, 2))
    _, mem = n(torch.full((3, 2), 0.4))
    assert_close(mem, torch.full((3, 2), 0.4))

def test_states_are_per_instance_and_not_in_state_dict():
    a, b = Leaky(beta=0.5, init_hidden=True), Leaky(beta=0.5, init_hidden=True)
    a(torch.ones(2)); b(torch.ones(2))
    a.reset_mem()
    assert a.mem.abs().sum() == 0 and b.mem.abs().sum() > 0
    assert 'mem' not in a.state_dict()

def test_class_level_reset_and_detach_hidden():
    a = Leaky(beta=0.5, init_hidden=True)
    x = torch.ones(2, requires_grad=True)
    a(x)
    assert a.mem.requires_grad
    Leaky.detach_hidden()
    assert not a.mem.requires_grad and a.mem.abs().sum() > 0
    Leaky.reset_hidden()
    assert a.mem.abs().sum() == 0

def test_live_set_holds_no_strong_reference():
    n = Leaky(beta=0.5, init_hidden=True)
    n(torch.ones(1000))
    assert n in NeuronState._live
    alive = weakref.ref(n)
    del n; gc.collect()
    assert alive() is None                     # snnTorch's instances list would keep it (and its state) forever

def test_detach_states_cuts_graph_keeps_values():
    n = Leaky(beta=0.5, init_hidden=True)
    x = torch.ones(3, requires_grad=True)
    n(x); n(x)
    value = n.mem.clone()
    n.detach_states()
    assert not n.mem.requires_grad and torch.equal(n.mem, value)
    n(x).sum().backward()                     # only the last step is in the graph
    assert x.grad is not None

def test_reset_mechanism_change_takes_effect():
    n = Leaky(beta=1.0, reset_mechanism='subtract')
    n.reset_mechanism = 'zero'
    _, mem = n(torch.tensor([1.5])); _, mem = n(torch.tensor([0.2]), mem)
    assert_close(mem, torch.tensor([0.2]))            # zero keeps the input of the reset step
    assert int(n.reset_mechanism_val) == 1

def test_state_dict_round_trip_with_reference():
    ref = snntorch.Leaky(beta=torch.tensor([0.3, 0.7]), threshold=0.8, reset_mechanism='zero', learn_beta=True)
    ours = Leaky(beta=torch.tensor([0.5, 0.5]), learn_beta=True)
    ours.load_state_dict(ref.state_dict())
    assert ours.reset_mechanism == 'zero' and torch.equal(ours.beta.data, ref.beta.data)
    ref2 = snntorch.Leaky(beta=torch.tensor([0.5, 0.5]), learn_beta=True)
    ref2.load_state_dict(ours.state_dict())

def test_pickle_and_deepcopy():
    n = Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid(slope=10), init_hidden=True)
    n(torch.ones(2))
    copies = (pickle.loads(pickle.dumps(n)), copy.deepcopy(n))
    expected = n(torch.ones(2))
    for m in copies:
        assert m in NeuronState._live
        assert_close(m(torch.ones(2)), expected)

def test_static_detach_and_zeros():
    a = torch.ones(2, requires_grad=True) * 2
    SpikingNeuron.detach(a)
    assert not a.requires_grad
    b = torch.ones(3)
    SpikingNeuron.zeros(b)
    assert b.sum() == 0

@pytest.mark.parametrize('reset, delay', [('subtract', True), ('subtract', False), ('zero', True), ('zero', False), ('none', True)])
def test_to_double_and_gradcheck(reset, delay):
    "float64 gradcheck through 4 steps; the spike function is a smooth sigmoid (forward and backward agree)."
    n = Leaky(beta=0.8, threshold=0.5, spike_grad=lambda u: torch.sigmoid(3 * u), reset_mechanism=reset,
              reset_delay=delay, learn_beta=True).double()
    x = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    def f(x):
        n.reset_mem()
        mem, outs = None, []
        for t in range(4):
            spk, mem = n(x * (t + 1) / 2, mem)
            outs.append(spk + mem)
        return torch.stack(outs)
    assert torch.autograd.gradcheck(f, (x,))

def test_float64_without_double():
    "Parameters stay float32 but outputs follow the float64 input."
    spk, mem = Leaky(beta=torch.tensor([0.5, 0.9]))(torch.ones(3, 2, dtype=torch.float64))
    assert spk.dtype == mem.dtype == torch.float64

def test_fire_and_mem_reset_methods():
    n = LIF(beta=0.5, threshold=torch.tensor([1.0, 2.0]), graded_spikes_factor=3.0)
    mem = torch.tensor([[1.5, 1.5]])
    assert n.fire(mem).tolist() == [[3.0, 0.0]]
    assert n.mem_reset(mem).tolist() == [[1.0, 0.0]]
    assert n.fire_inhibition(1, torch.tensor([[1.5, 2.8]])).tolist() == [[0.0, 1.0]]

def test_lif_has_no_forward():
    with pytest.raises(NotImplementedError): LIF(beta=0.5)(torch.ones(2))

# ---------------------------------------------------------------- helpers, directly

def test_helpers():
    assert reset_signal(torch.tensor([1.0, 1.0001]), 1.0).tolist() == [0.0, 1.0]
    v, r = torch.tensor([2.0, 3.0]), torch.tensor([1.0, 0.0])
    assert apply_reset(v, r, 0.5, 'subtract').tolist() == [1.5, 3.0]
    assert apply_reset(v, r, 0.5, 'zero').tolist() == [0.0, 3.0]
    assert apply_reset(v, r, 0.5, 'none').tolist() == [2.0, 3.0]
    assert immediate_reset(v, torch.tensor([0.0, 2.0]), r, 0.5, 2.0, 'zero').tolist() == [4.0, 0.0]
    assert emit_spikes(torch.tensor([[0.0, 3.0]]), 1.0, surrogate.atan(), state_quant=lambda m: m - 2.5).tolist() == [[0.0, 0.0]]
    assert as_float_tensor('x', 2).dtype == torch.float32 and decay_tensor('alpha', 0).item() == 0.0
    st = torch.zeros(2, 2)
    assert resolve_state('mem', None, st, torch.ones(2, 2), False) is st

def test_gradcheck_leaky_step_parameters():
    "float64 gradcheck of the pure step w.r.t. input, beta, threshold and graded factor (smooth spike function)."
    from snnedu.neurons.leaky import leaky_step
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    params = torch.tensor([0.7, 0.6, 1.3], dtype=torch.float64, requires_grad=True)   # beta, threshold, g
    def f(x, params):
        mem, outs = torch.zeros_like(x), []
        for t in range(4):
            spk, mem = leaky_step(x * (t + 1), mem, params[0], params[1], spike_fn=lambda u: torch.sigmoid(3 * u),
                                  reset_delay=False, graded_spikes_factor=params[2])
            outs.append(spk + mem)
        return torch.stack(outs)
    assert torch.autograd.gradcheck(f, (x, params))

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_states_follow_module_and_input():
    n = Leaky(beta=torch.tensor([0.5, 0.9]), learn_beta=True, init_hidden=True, output=True).cuda()
    spk, mem = n(torch.ones(3, 2, device='cuda'))
    assert spk.is_cuda and mem.is_cuda and n.mem.is_cuda
    n.reset_mem(); assert n.mem.is_cuda
    mem.sum().backward(); assert n.beta.grad.is_cuda


# ---------------------------------------------------------------- issue 16: states that broadcast (snnTorch tutorial 3)

BROADCAST_NEURONS = {   # name -> (snnedu neuron, snnTorch neuron, names of the states forward takes)
    'Leaky': (lambda: snnedu.Leaky(beta=0.8), lambda: snntorch.Leaky(beta=0.8), ('mem',)),
    'Lapicque': (lambda: snnedu.Lapicque(R=5.0, C=0.2, time_step=0.1), lambda: snntorch.Lapicque(R=5.0, C=0.2, time_step=0.1), ('mem',)),
    'Synaptic': (lambda: snnedu.Synaptic(alpha=0.7, beta=0.8), lambda: snntorch.Synaptic(alpha=0.7, beta=0.8), ('syn', 'mem')),
    'Alpha': (lambda: snnedu.Alpha(alpha=0.9, beta=0.8), lambda: snntorch.Alpha(alpha=0.9, beta=0.8), ('syn_exc', 'syn_inh', 'mem')),
}

@pytest.mark.parametrize('name', list(BROADCAST_NEURONS))
@pytest.mark.parametrize('input_shape,state_shape', [((), (1,)), ((), (1, 1)), ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), ())])
def test_zero_state_that_broadcasts_matches_snntorch(name, input_shape, state_shape):
    "Tutorial 3: `mem = torch.zeros(1)`, 0-d inputs, `spk, mem = lif(cur_in[step], mem)`: same numbers and shapes as snnTorch."
    ours_fn, ref_fn, names = BROADCAST_NEURONS[name]
    ours, ref = ours_fn(), ref_fn()
    torch.manual_seed(0)
    cur = torch.rand(12, *input_shape) * 0.6
    s_ours = s_ref = tuple(torch.zeros(state_shape) for _ in names)
    for x in cur:
        out_ours, out_ref = ours(x, *s_ours), ref(x, *s_ref)
        s_ours, s_ref = out_ours[1:], out_ref[1:]
        for a, b in zip(out_ours, out_ref):
            assert a.shape == b.shape == x.shape
            assert_close(a, b)

def test_nonzero_broadcast_state_is_used_not_dropped():
    "A (N,) state for (B, N) inputs starts every sample there (snnTorch silently replaces it with zeros)."
    x, m0 = torch.rand(2, 3) * 0.2, torch.tensor([0.5, 0.95, 0.1])
    _, mem = snnedu.Leaky(beta=0.8)(x, m0)
    _, mem_full = snnedu.Leaky(beta=0.8)(x, m0.expand(2, 3).clone())
    assert_close(mem, mem_full)
    m0 = m0.clone().requires_grad_()
    snnedu.Leaky(beta=0.8)(x, m0)[1].sum().backward()
    assert_close(m0.grad, torch.full((3,), 2 * 0.8))            # the gradient sums over the batch it was broadcast to

@pytest.mark.parametrize('input_shape,state_shape', [((2, 3), (2,)), ((2, 3), (3, 3)), ((3,), (2, 3)), ((), (2,))])
def test_state_that_does_not_broadcast_to_the_input_raises(input_shape, state_shape):
    with pytest.raises(ValueError, match=r'mem has shape .* but the input has shape .*or one that broadcasts to it'):
        snnedu.Leaky(beta=0.8)(torch.ones(input_shape), torch.zeros(state_shape))

def test_broadcast_state_in_sequence_equals_the_loop():
    x, m0 = torch.rand(6, 2, 3) * 2, torch.full((3,), 0.5)
    spk_seq, mem_seq = snnedu.Leaky(beta=0.8).sequence(x, m0)
    lif, mem, rec = snnedu.Leaky(beta=0.8), m0, []
    for x_t in x:
        spk, mem = lif(x_t, mem)
        rec.append((spk, mem))
    assert_close(spk_seq, torch.stack([r[0] for r in rec])); assert_close(mem_seq, torch.stack([r[1] for r in rec]))


# ---------------------------------------------------------------- issue 19 item 4: numerics of neuron options

def _with_graded(neuron, g):
    "Synaptic takes no graded_spikes_factor argument (as in snnTorch), but has the buffer."
    neuron.graded_spikes_factor.fill_(g)
    return neuron

@pytest.mark.parametrize('make', [lambda g: snnedu.Leaky(beta=0.9, graded_spikes_factor=g, reset_delay=False),
                                  lambda g: _with_graded(snnedu.Synaptic(alpha=0.5, beta=0.9, reset_delay=False), g),
                                  lambda g: snnedu.Leaky(beta=0.9, graded_spikes_factor=g, reset_delay=False, reset_mechanism='zero')],
                         ids=['Leaky', 'Synaptic', 'Leaky-zero'])
def test_graded_spikes_factor_zero_with_immediate_reset_is_finite(make):
    "g = 0 gave a NaN membrane (spk/g = 0/0); now the neuron still resets on H(U - θ), exactly as with g = 1."
    torch.manual_seed(0)
    x = (torch.rand(10, 2, 3) * 1.5).requires_grad_()
    def run(g):
        n, out = make(g), []
        for x_t in x: out.append(n(x_t))
        return torch.stack([o[0] for o in out]), torch.stack([o[-1] for o in out])
    spk0, mem0 = run(0.0)
    spk1, mem1 = run(1.0)
    assert torch.isfinite(mem0).all() and (spk0 == 0).all()
    assert_close(mem0, mem1)
    (mem0.sum()).backward()
    assert torch.isfinite(x.grad).all()

def test_graded_spikes_factor_learnable_through_zero():
    lif = snnedu.Leaky(beta=0.9, graded_spikes_factor=0.0, learn_graded_spikes_factor=True, reset_delay=False)
    x = torch.rand(8, 4) * 2
    mem, total = None, 0
    for x_t in x:
        spk, mem = lif(x_t, mem)
        total = total + spk.sum() + mem.sum()
    total.backward()
    assert torch.isfinite(lif.graded_spikes_factor.grad) and lif.graded_spikes_factor.grad > 0

@pytest.mark.parametrize('kwargs', [dict(threshold=float('nan')), dict(threshold=torch.tensor([1.0, float('nan')])),
                                    dict(graded_spikes_factor=float('nan'))], ids=['threshold', 'threshold-tensor', 'graded'])
def test_nan_parameters_rejected(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f'{name} must be a number, got nan'): snnedu.Leaky(beta=0.9, **kwargs)
    if name == 'threshold':
        with pytest.raises(ValueError, match='threshold must be a number, got nan'): snnedu.Synaptic(alpha=0.5, beta=0.9, **kwargs)


# ---------------------------------------------------------------- issue 19 item 5: atomic load_state_dict

def loaded_values(n): return {k: v.clone() for k, v in n.state_dict().items()}

@pytest.mark.parametrize('bad', [torch.tensor(7), torch.tensor(1.7), torch.tensor(-1), torch.tensor(float('nan')),
                                 torch.tensor([0, 1])], ids=['7', '1.7', '-1', 'nan', 'two-values'])
def test_bad_reset_mechanism_val_loads_nothing(bad):
    n = Leaky(beta=0.5, threshold=1.0, learn_beta=True)
    before = loaded_values(n)
    sd = {'beta': torch.tensor(0.9), 'threshold': torch.tensor(2.0), 'graded_spikes_factor': torch.tensor(3.0),
          'reset_mechanism_val': bad}
    exc, msg = (RuntimeError, "size mismatch for reset_mechanism_val") if bad.numel() > 1 else (ValueError, "must be 0, 1 or 2")
    with pytest.raises(exc, match=rf"{msg}.*nothing was loaded"): n.load_state_dict(sd)
    for k, v in n.state_dict().items(): assert_close(v, before[k], msg=k)
    assert n.reset_mechanism == 'subtract'

def test_integral_float_reset_mechanism_val_still_loads():
    n = Leaky(beta=0.5)
    sd = n.state_dict(); sd['reset_mechanism_val'] = torch.tensor(1.0)
    n.load_state_dict(sd)
    assert n.reset_mechanism == 'zero' and int(n.reset_mechanism_val) == 1

def test_nan_in_checkpoint_loads_nothing():
    n = snnedu.Synaptic(alpha=0.5, beta=0.5)
    before = loaded_values(n)
    sd = {**n.state_dict(), 'alpha': torch.tensor(0.7), 'threshold': torch.tensor(float('nan'))}
    with pytest.raises(ValueError, match=r"state_dict\['threshold'\] contains NaN"): n.load_state_dict(sd)
    for k, v in n.state_dict().items(): assert_close(v, before[k], msg=k)

@pytest.mark.parametrize('assign', [False, True])
def test_size_mismatch_loads_nothing_into_the_neuron(assign):
    "PyTorch copies the entries it accepts and reports the others at the end; the neuron puts back what was copied."
    n = Leaky(beta=0.5, threshold=1.0)
    before = loaded_values(n)
    sd = {**n.state_dict(), 'threshold': torch.tensor(2.0), 'beta': torch.tensor([0.9, 0.8])}
    with pytest.raises(RuntimeError, match='size mismatch for beta'): n.load_state_dict(sd, assign=assign)
    for k, v in n.state_dict().items(): assert_close(v, before[k], msg=k)
    assert n(torch.tensor([1.5]))[0].item() == 1.0                     # the old threshold (1.0) is in force

def test_load_in_a_network_and_from_snntorch_still_work():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), snnedu.Leaky(beta=0.5, init_hidden=True, learn_beta=True))
    ref = torch.nn.Sequential(torch.nn.Linear(3, 2), snntorch.Leaky(beta=0.7, init_hidden=True, learn_beta=True,
                                                                     reset_mechanism='zero'))
    net.load_state_dict(ref.state_dict())
    assert_close(net[1].beta.detach(), torch.tensor(0.7))
    assert net[1].reset_mechanism == 'zero'


# ---------------------------------------------------------------- issue 16: snnTorch 1.0.0's neuron conveniences

NEURON_CLASSES = ['SpikingNeuron', 'LIF', 'Leaky', 'Lapicque', 'Synaptic', 'Alpha', 'RLeaky', 'RSynaptic', 'SLSTM',
                  'SConv2dLSTM', 'LeakyParallel']

@pytest.mark.parametrize('name', NEURON_CLASSES)
def test_every_public_name_of_snntorch_neurons_exists(name):
    "dir(snntorch.X) minus nn.Module's names: all public ones exist on snnedu.X, except the deliberate `instances`."
    base = set(dir(torch.nn.Module))
    theirs = {n for n in set(dir(getattr(snntorch, name))) - base if not n.startswith('_')}
    ours = set(dir(getattr(snnedu, name)))
    assert theirs - ours <= {'instances'}, sorted(theirs - ours)

def test_reset_dict_is_snntorchs():
    assert SpikingNeuron.reset_dict == snntorch.SpikingNeuron.reset_dict == {'subtract': 0, 'zero': 1, 'none': 2}
    assert Leaky.reset_dict is SpikingNeuron.reset_dict
    for name, val in SpikingNeuron.reset_dict.items(): assert int(Leaky(beta=0.5, reset_mechanism=name).reset_mechanism_val) == val

@pytest.mark.parametrize('cls', [SpikingNeuron, LIF, Leaky, snnedu.Synaptic, snnedu.RLeaky, snnedu.SLSTM])
def test_instances_registry_access_raises_clearly(cls):
    with pytest.raises(AttributeError, match=rf"{cls.__name__}\.instances does not exist in snnedu.*snnedu\.utils\.reset\(net\)"):
        cls.instances
    assert not hasattr(cls, 'instances')
    assert inspect.getmembers(cls) and 'reset_dict' in dict(inspect.getmembers(cls))   # introspection still works

def test_init_forgets_earlier_neurons_for_class_level_reset_as_snntorch():
    "snnTorch: `SpikingNeuron.init()` empties the registry, so a later `Leaky.reset_hidden()` skips earlier neurons."
    def run(lib):
        old = lib.Leaky(beta=0.9, init_hidden=True)
        old(torch.ones(2))
        lib.SpikingNeuron.init()
        new = lib.Leaky(beta=0.9, init_hidden=True)
        new(torch.ones(2))
        lib.Leaky.reset_hidden()
        return old.mem.clone(), new.mem.clone()
    (o, n), (ro, rn) = run(snnedu), run(snntorch)
    assert_close(o, ro); assert_close(n, rn)
    assert (o == 1).all() and (n == 0).all()

def test_init_leaky_style_aliases_exist():
    for cls, alias in [(snnedu.Leaky, 'init_leaky'), (snnedu.Synaptic, 'init_synaptic'), (snnedu.Alpha, 'init_alpha'),
                       (snnedu.Lapicque, 'init_lapicque'), (snnedu.RLeaky, 'init_rleaky'), (snnedu.RSynaptic, 'init_rsynaptic'),
                       (snnedu.SLSTM, 'init_slstm'), (snnedu.SConv2dLSTM, 'init_sconv2dlstm')]:
        assert callable(getattr(cls, alias)), alias


@pytest.mark.parametrize('bad_key', ['recurrent.weight', 'beta'])
def test_size_mismatch_in_a_submodule_loads_nothing(bad_key):
    "RLeaky's recurrent layer is a submodule: a wrong shape anywhere in the neuron leaves all of it untouched."
    n = snnedu.RLeaky(beta=0.5, linear_features=3, learn_beta=True)
    before = loaded_values(n)
    sd = {k: v + 0.1 for k, v in n.state_dict().items() if k != 'reset_mechanism_val'}
    sd[bad_key] = torch.zeros(5, 5)
    with pytest.raises(RuntimeError, match=rf"size mismatch for {bad_key}.*nothing was loaded into this RLeaky"):
        n.load_state_dict(sd, strict=False)
    for k, v in n.state_dict().items(): assert_close(v, before[k], msg=k)
