"""RLeaky and RSynaptic against snnTorch 1.0.0 (weights copied from snnTorch's modules): spikes, states and
gradients for every reset mechanism, reset_delay, state mode and kind of recurrence; the fixed defects; bad input."""
import inspect
import warnings

import pytest
import torch
from torch.testing import assert_close

import snnedu as snn
from snnedu import surrogate
from snnedu.neurons.recurrent import RLeaky, RSynaptic, recurrent_layer, rleaky_step, rsynaptic_step

snntorch = pytest.importorskip("snntorch")

T = 6
RECURRENCE = {   # name: (constructor kwargs, input shape of one step)
    "linear": (dict(linear_features=4), (3, 4)),
    "conv": (dict(conv2d_channels=2, kernel_size=3), (2, 2, 4, 4)),
    "conv_rect": (dict(conv2d_channels=2, kernel_size=(1, 3)), (2, 2, 3, 5)),
    "v_scalar": (dict(all_to_all=False, V=0.5), (3, 4)),
    "v_tensor": (dict(all_to_all=False, V=torch.tensor([0.2, -0.4, 0.6, 1.0])), (3, 4)),
    "v_frozen": (dict(all_to_all=False, V=0.7, learn_recurrent=False), (3, 4)),
    "linear_frozen": (dict(linear_features=4, learn_recurrent=False), (3, 4)),
}


def _make(cls_name, **kw):
    "A pair (snnTorch neuron, ours) with identical parameters (ours loads snnTorch's state_dict)."
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(snntorch, cls_name)(**kw)
        ours = getattr(snn, cls_name)(**kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _inputs(shape, seed=1):
    torch.manual_seed(seed)
    return (torch.rand(T, *shape) * 1.6 - 0.3).requires_grad_(True)


def _run(neuron, x_seq, hidden, n_states, correct_delay=False):
    """Run over x_seq, return per-step (spk, *states) stacked. `correct_delay`: apply the reset_delay=False
    correction by hand after each step (the oracle for snnTorch's broken RSynaptic reset_delay=False)."""
    out = []
    states = [torch.zeros(0)] * n_states
    for x in x_seq:
        if hidden: res = neuron(x)
        else: res = neuron(x, *states)
        if correct_delay:
            spk, syn, mem = res
            th = neuron.threshold
            prev_mem = states[2] if states[2].numel() else torch.zeros_like(mem)
            d = spk - (prev_mem - th > 0).to(mem.dtype)
            mem = mem - d * th if neuron.reset_mechanism_val == 0 else (mem - d * mem if neuron.reset_mechanism_val == 1 else mem)
            res = (spk, syn, mem)
        states = list(res)
        out.append(res)
    return [torch.stack(s) for s in zip(*out)]


def _compare(ref, ours, x_shape, hidden, n_states, correct_delay=False):
    x = _inputs(x_shape)
    x_ref = x.detach().clone().requires_grad_(True)
    res_ref = _run(ref, x_ref, hidden and not correct_delay, n_states, correct_delay)
    res_ours = _run(ours, x, hidden, n_states)
    for a, b, name in zip(res_ours, res_ref, ["spk", "state1", "state2"]):
        assert a.dtype == torch.float32
        assert_close(a, b, msg=name, atol=2e-6, rtol=1e-5)
    assert res_ours[0].sum() > 0 and (res_ours[0] == 0).any()       # spikes happen, and not everywhere
    weights = [torch.linspace(0.5, 1.5, r.numel()).view_as(r) for r in res_ref]
    loss_ref = sum((r * w).sum() for r, w in zip(res_ref, weights))
    loss_ours = sum((r * w).sum() for r, w in zip(res_ours, weights))
    p_ref = {n: p for n, p in ref.named_parameters() if p.requires_grad}
    p_ours = {n: p for n, p in ours.named_parameters() if p.requires_grad}
    assert set(p_ours) == set(p_ref)
    g_ref = torch.autograd.grad(loss_ref, [x_ref, *p_ref.values()], allow_unused=True)
    g_ours = torch.autograd.grad(loss_ours, [x, *(p_ours[n] for n in p_ref)], allow_unused=True)
    for name, a, b in zip(["input", *p_ref], g_ours, g_ref):
        if b is None: assert a is None or a.abs().sum() == 0, name
        else: assert_close(a, b, msg=name, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("hidden", [False, True], ids=["explicit", "hidden"])
@pytest.mark.parametrize("reset_delay", [True, False], ids=["delay", "no_delay"])
@pytest.mark.parametrize("reset_mechanism", ["subtract", "zero", "none"])
@pytest.mark.parametrize("rec", list(RECURRENCE))
def test_rleaky_parity(rec, reset_mechanism, reset_delay, hidden):
    kw, shape = RECURRENCE[rec]
    ref, ours = _make("RLeaky", beta=0.8, learn_beta=True, learn_threshold=True, reset_mechanism=reset_mechanism,
                      reset_delay=reset_delay, init_hidden=hidden, output=hidden, **kw)
    _compare(ref, ours, shape, hidden, 2)


@pytest.mark.parametrize("hidden", [False, True], ids=["explicit", "hidden"])
@pytest.mark.parametrize("reset_delay", [True, False], ids=["delay", "no_delay"])
@pytest.mark.parametrize("reset_mechanism", ["subtract", "zero", "none"])
@pytest.mark.parametrize("rec", list(RECURRENCE))
def test_rsynaptic_parity(rec, reset_mechanism, reset_delay, hidden):
    """reset_delay=False is broken in snnTorch 1.0.0 (TypeError / ignored): the oracle is snnTorch's reset_delay=True
    step followed by Synaptic's immediate-reset correction, which is what ours must compute."""
    kw, shape = RECURRENCE[rec]
    ref, ours = _make("RSynaptic", alpha=0.7, beta=0.8, learn_alpha=True, learn_beta=True, learn_threshold=True,
                      reset_mechanism=reset_mechanism, reset_delay=reset_delay, init_hidden=hidden, output=hidden, **kw)
    if not reset_delay:
        ref, _ = _make("RSynaptic", alpha=0.7, beta=0.8, learn_alpha=True, learn_beta=True, learn_threshold=True,
                       reset_mechanism=reset_mechanism, reset_delay=True, **kw)
    _compare(ref, ours, shape, hidden, 3, correct_delay=not reset_delay)


EXTRAS = [dict(spike_grad=surrogate.fast_sigmoid(slope=10)), dict(threshold=0.6),
          dict(beta=torch.tensor([0.3, 0.6, 0.9, 1.0])), dict(threshold=torch.tensor([0.5, 1.0, 1.5, 0.8])),
          dict(inhibition=True), dict(surrogate_disable=True)]


@pytest.mark.parametrize("cls_name", ["RLeaky", "RSynaptic"])
@pytest.mark.parametrize("extra", EXTRAS, ids=[str(sorted(e)) for e in EXTRAS])
def test_options_parity(cls_name, extra):
    kw = dict(beta=0.8, linear_features=4)
    if cls_name == "RSynaptic": kw["alpha"] = 0.6
    kw.update(extra)
    ref, ours = _make(cls_name, **kw)
    x = _inputs((3, 4)).detach()
    for a, b in zip(_run(ours, x, False, len(ours._state_names)), _run(ref, x, False, len(ours._state_names))):
        assert_close(a, b, atol=2e-6, rtol=1e-5)


def test_state_quant_parity():
    from snntorch.functional import quant
    ref, ours = _make("RLeaky", beta=0.8, all_to_all=False, V=0.3, state_quant=quant.state_quant(num_bits=4))
    x = _inputs((3, 4)).detach()
    for a, b in zip(_run(ours, x, False, 2), _run(ref, x, False, 2)): assert_close(a, b)


def test_golden_traces():
    def trace(neuron):
        states, out = neuron.reset_mem(), []
        for x in [0.6, 0.6, 0.6, 0.0, 1.5, 0.2]:
            states = neuron(torch.tensor([x]), *states)
            out.append([round(s.item(), 5) for s in states])
        return out
    assert trace(RLeaky(beta=0.9, V=0.5, all_to_all=False)) == [
        [0, 0.6], [1, 1.14], [1, 1.126], [0, 0.5134], [1, 1.96206], [1, 1.46585]]
    assert trace(RLeaky(beta=0.9, V=0.5, all_to_all=False, reset_mechanism="zero")) == [
        [0, 0.6], [1, 1.14], [0, 0.0], [0, 0.0], [1, 1.5], [0, 0.0]]
    assert trace(RLeaky(beta=0.9, V=0.5, all_to_all=False, reset_delay=False)) == [
        [0, 0.6], [1, 0.14], [1, 0.226], [0, 0.7034], [1, 1.13306], [0, 1.71975]]
    assert trace(RSynaptic(alpha=0.8, beta=0.9, V=0.5, all_to_all=False)) == [
        [0, 0.6, 0.6], [1, 1.08, 1.62], [1, 1.964, 2.422], [1, 2.0712, 3.251], [1, 3.65696, 5.58286],
        [1, 3.62557, 7.65014]]


def test_linear_bias_drives_without_spikes():
    rlif = RLeaky(beta=0.9, linear_features=3)
    with torch.no_grad(): rlif.recurrent.bias.fill_(0.1)
    spk, mem = rlif(torch.zeros(1, 3))
    assert_close(mem, torch.full((1, 3), 0.1))


def test_rsynaptic_reset_delay_false_hidden_mode_works():
    rsyn = RSynaptic(alpha=0.8, beta=0.9, V=0.5, all_to_all=False, reset_delay=False, init_hidden=True, output=True)
    out = [rsyn(torch.tensor([x])) for x in [0.6, 0.6, 0.6]]
    # t1: syn 1.08, mem 1.62 -> spike, immediate subtract -> 0.62
    assert_close(out[1][2], torch.tensor([0.62]))
    assert out[1][0].item() == 1.0


def test_reset_clears_stored_spikes_issue_323():
    rsyn = RSynaptic(alpha=0.8, beta=0.9, linear_features=3, init_hidden=True)
    other = RSynaptic(alpha=0.8, beta=0.9, linear_features=3, init_hidden=True)
    x = torch.full((2, 3), 5.0)
    for _ in range(3): rsyn(x); other(x)
    assert rsyn.spk.sum() > 0
    rsyn.reset_mem()
    assert rsyn.spk.abs().sum() == 0 and rsyn.syn.abs().sum() == 0 and rsyn.mem.abs().sum() == 0
    assert other.spk.sum() > 0                                           # reset_mem is per instance
    RSynaptic.reset_hidden()
    assert other.spk.abs().sum() == 0
    assert rsyn.init_rsynaptic() is not None
    y = torch.full((2, 3), 5.0, requires_grad=True)
    rsyn(y)
    assert rsyn.spk.grad_fn is not None
    RSynaptic.detach_hidden()
    assert rsyn.spk.grad_fn is None and rsyn.mem.grad_fn is None


def test_hidden_and_explicit_agree_and_return_conventions():
    x_seq = _inputs((2, 4)).detach()
    torch.manual_seed(0); explicit = RLeaky(beta=0.8, linear_features=4)
    torch.manual_seed(0); hidden = RLeaky(beta=0.8, linear_features=4, init_hidden=True)
    spk, mem = explicit.reset_mem()
    for x in x_seq:
        spk, mem = explicit(x, spk, mem)
        spk_h = hidden(x)
        assert isinstance(spk_h, torch.Tensor)
        assert_close(spk_h, spk); assert_close(hidden.mem, mem); assert_close(hidden.spk, spk)
    assert len(RSynaptic(alpha=0.5, beta=0.5, linear_features=4)(x_seq[0])) == 3
    assert len(RSynaptic(alpha=0.5, beta=0.5, linear_features=4, init_hidden=True, output=True)(x_seq[0])) == 3


def test_learn_recurrent_false_freezes():
    rlif = RLeaky(beta=0.9, linear_features=3, learn_recurrent=False)
    assert not any(p.requires_grad for p in rlif.recurrent.parameters())
    assert list(rlif.parameters()) == [] or all(not p.requires_grad for p in rlif.parameters())
    v = RLeaky(beta=0.9, all_to_all=False, V=0.3, learn_recurrent=False)
    assert "V" in dict(v.named_buffers()) and "V" not in dict(v.named_parameters())
    v = RLeaky(beta=0.9, all_to_all=False, V=0.3)
    assert isinstance(v.V, torch.nn.Parameter)


def test_float64():
    x = torch.rand(2, 4, dtype=torch.float64) * 2
    for neuron in (RLeaky(beta=0.9, linear_features=4), RSynaptic(alpha=0.8, beta=0.9, all_to_all=False, V=0.4),
                   RLeaky(beta=0.9, linear_features=4).double()):
        out = neuron(x)
        out = neuron(x, *out)
        assert all(o.dtype == torch.float64 for o in out)


def test_gradcheck_float64_membrane_path():
    "The membrane path of rleaky_step (spikes detached by a zero-gradient surrogate) is smooth: gradcheck it."
    rec = torch.nn.Linear(3, 3).double()
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    spk = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    mem = torch.rand(2, 3, dtype=torch.float64) * 2
    fn = lambda x, spk: rleaky_step(x, spk, mem, 0.9, rec, spike_fn=surrogate.straight_through_estimator())[1]
    assert torch.autograd.gradcheck(fn, (x, spk))
    fn = lambda x, spk: rsynaptic_step(x, spk, mem, mem, 0.8, 0.9, rec, reset_mechanism="zero")[2]
    assert torch.autograd.gradcheck(fn, (x, spk))


@pytest.mark.parametrize("kw, msg", [
    (dict(), "all_to_all=True needs linear_features"),
    (dict(conv2d_channels=2), "both conv2d_channels=C and kernel_size=k"),
    (dict(kernel_size=3), "both conv2d_channels=C and kernel_size=k"),
    (dict(linear_features=4, kernel_size=3), "not both"),
    (dict(linear_features=4, conv2d_channels=2), "not both"),
    (dict(all_to_all=False, linear_features=4), "do not pass linear_features"),
    (dict(all_to_all=False, conv2d_channels=2, kernel_size=3), "do not pass conv2d_channels, kernel_size"),
    (dict(linear_features=2.5), "linear_features must be a positive integer"),
    (dict(conv2d_channels="2", kernel_size=3), "conv2d_channels must be a positive integer"),
    (dict(conv2d_channels=2, kernel_size=2.0), "kernel_size must be an integer or a pair"),
    (dict(all_to_all=False, V="big"), "V must be a real number or a tensor"),
])
@pytest.mark.parametrize("cls", [RLeaky, RSynaptic])
def test_bad_recurrence_options(cls, kw, msg):
    args = dict(beta=0.9) if cls is RLeaky else dict(alpha=0.8, beta=0.9)
    with pytest.raises(TypeError) as e: cls(**args, **kw)
    assert msg in str(e.value)


@pytest.mark.parametrize("kernel_size", [2, (3, 4), (-1, 3)])
def test_even_kernel_size(kernel_size):
    with pytest.raises(ValueError, match="kernel_size must be odd and positive"):
        RLeaky(beta=0.9, conv2d_channels=2, kernel_size=kernel_size)


def test_reference_raises_typeerror_in_the_same_cases():
    for kw in (dict(), dict(conv2d_channels=2), dict(linear_features=4, kernel_size=3), dict(all_to_all=False, linear_features=4)):
        with pytest.raises(TypeError): snntorch.RLeaky(beta=0.9, **kw)
        with pytest.raises(TypeError): RLeaky(beta=0.9, **kw)


def test_other_bad_input():
    with pytest.warns(UserWarning, match="V is only used with all_to_all=False"):
        RLeaky(beta=0.9, V=0.5, linear_features=3)
    with pytest.raises(ValueError, match="alpha must be in"): RSynaptic(alpha=1.2, beta=0.9, linear_features=3)
    with pytest.raises(ValueError, match="beta must be in"): RLeaky(beta=-0.1, linear_features=3)
    with pytest.raises(ValueError, match="reset_mechanism must be"): RLeaky(beta=0.9, linear_features=3, reset_mechanism="hard")
    rlif = RLeaky(beta=0.9, linear_features=3, init_hidden=True)
    with pytest.raises(TypeError, match="keeps its own state"): rlif(torch.ones(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"mem has shape \(2, 4\)"):
        RLeaky(beta=0.9, all_to_all=False)(torch.ones(2, 3), torch.zeros(2, 3), torch.zeros(2, 4))


def test_state_dict_keys():
    for cls, kw in (("RLeaky", dict(beta=0.9, linear_features=3)), ("RLeaky", dict(beta=0.9, all_to_all=False)),
                    ("RLeaky", dict(beta=0.9, all_to_all=False, learn_recurrent=False)),
                    ("RSynaptic", dict(alpha=0.5, beta=0.9, conv2d_channels=2, kernel_size=3))):
        ref, ours = _make(cls, **kw)
        assert set(ours.state_dict()) <= set(ref.state_dict())
        assert set(ref.state_dict()) - set(ours.state_dict()) <= {"recurrent.V"}


def test_signatures_match_snntorch():
    for name in ("RLeaky", "RSynaptic"):
        ours, ref = inspect.signature(getattr(snn, name)), inspect.signature(getattr(snntorch, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == [(p.name, p.default) for p in ref.parameters.values()]
        for meth in ("forward", "reset_mem", "init_" + name.lower()):
            assert list(inspect.signature(getattr(getattr(snn, name), meth)).parameters) == \
                list(inspect.signature(getattr(getattr(snntorch, name), meth)).parameters)
    assert recurrent_layer(False, None, None, None) is None
