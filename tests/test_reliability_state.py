"""Reliability of neuron state: batch/dtype/device changes between calls in hidden mode, `.to()`, `state_dict`
round trips of every learnable parameter of every neuron, `torch.save`/`torch.load` of a whole model,
`copy.deepcopy` and pickling.

Hidden-state policy (init_hidden=True), as implemented in `snnedu.neurons.base.resolve_state`:
* batch-size (shape) change -> the kept state restarts from fresh zeros of the new shape (snnTorch's behaviour);
* `net.to(dtype/device)` moves the kept states with the module (they are non-persistent buffers);
* hidden states are never part of `state_dict()` (checkpoints hold parameters and constants only);
* explicit mode: a passed state of the wrong shape raises ValueError naming the state.
* a dtype or device change of the input alone -> the kept state is cast/moved to the input's dtype and device.
"""
import copy
import io
import pickle

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snnedu as snn
from snnedu import utils


def make(name, init_hidden=True, learn=False, **extra):
    "A fresh neuron of kind `name` for (B, 3) inputs ((B, 2, 4, 4) for SConv2dLSTM), optionally with every parameter learnable."
    L = dict(learn_threshold=learn)
    makers = {
        "Leaky": lambda: snn.Leaky(beta=0.9, learn_beta=learn, learn_graded_spikes_factor=learn, **L),
        "Synaptic": lambda: snn.Synaptic(alpha=0.8, beta=0.7, learn_alpha=learn, learn_beta=learn, **L),
        "Alpha": lambda: snn.Alpha(alpha=0.9, beta=0.8, learn_alpha=learn, learn_beta=learn, **L),
        "Lapicque": lambda: snn.Lapicque(beta=0.9, learn_beta=learn, **L),
        "RLeaky": lambda: snn.RLeaky(beta=0.9, linear_features=3, learn_beta=learn, **L),
        "RLeakyV": lambda: snn.RLeaky(beta=0.9, V=0.5, all_to_all=False, learn_beta=learn, learn_recurrent=learn, **L),
        "RSynaptic": lambda: snn.RSynaptic(alpha=0.8, beta=0.7, linear_features=3, learn_alpha=learn, learn_beta=learn, **L),
        "RSynapticV": lambda: snn.RSynaptic(alpha=0.8, beta=0.7, V=0.5, all_to_all=False, learn_alpha=learn,
                                            learn_beta=learn, learn_recurrent=learn, **L),
        "SLSTM": lambda: snn.SLSTM(3, 3, **L),
        "SConv2dLSTM": lambda: snn.SConv2dLSTM(2, 2, 3, **L),
    }
    torch.manual_seed(0)
    neuron = makers[name]()
    neuron.init_hidden = init_hidden
    for k, v in extra.items(): setattr(neuron, k, v)
    return neuron

STATEFUL = ["Leaky", "Synaptic", "Alpha", "Lapicque", "RLeaky", "RLeakyV", "RSynaptic", "RSynapticV", "SLSTM", "SConv2dLSTM"]

def x_for(name, batch=4, **kw):
    g = torch.Generator().manual_seed(batch)
    shape = (batch, 2, 4, 4) if name == "SConv2dLSTM" else (batch, 3)
    return (2 * torch.rand(shape, generator=g)).to(**kw)

def run(neuron, xs):
    "Spikes of `neuron` (hidden mode) over the inputs `xs`, stacked."
    return torch.stack([neuron(x) for x in xs])


# ---- batch size changes: fresh zeros, exactly like a freshly reset neuron --------------------------------------------
@pytest.mark.parametrize("name", STATEFUL)
def test_batch_change_restarts_from_zeros(name):
    a = make(name)
    run(a, [x_for(name, 4)] * 3)                      # build up state at batch 4
    xs2 = [x_for(name, 2)] * 3
    got = run(a, xs2)                                  # batch 2: must not reuse the batch-4 state
    b = make(name)
    assert_close(got, run(b, xs2))
    for s in a._state_names: assert getattr(a, s).shape[0] == 2


@pytest.mark.parametrize("name", STATEFUL)
def test_same_batch_keeps_state(name):
    "The counterpart: without a shape change the state carries over (so the test above can fail)."
    a, b = make(name), make(name)
    x = x_for(name, 4)
    a(x)
    states = [getattr(a, s).clone() for s in a._state_names]
    a(x); b(x)
    assert any(not torch.equal(getattr(a, s), getattr(b, s)) for s in a._state_names)
    assert any(s.abs().sum() > 0 for s in states)


@pytest.mark.parametrize("name", ["Leaky", "Synaptic", "RLeaky", "SLSTM"])
def test_explicit_state_of_wrong_shape_raises(name):
    n = make(name, init_hidden=False)
    state = torch.zeros(5, 3)
    with pytest.raises(ValueError, match=r"mem has shape \(5, 3\)"):
        n(x_for(name, 4), mem=state)


@pytest.mark.parametrize("name", ["Leaky", "Synaptic"])
def test_hidden_mode_refuses_passed_state(name):
    n = make(name)
    with pytest.raises(TypeError, match="init_hidden=True"):
        n(x_for(name), mem=torch.zeros(4, 3))


# ---- .to(): hidden states follow the module ------------------------------------------------------------------------
@pytest.mark.parametrize("name", STATEFUL)
def test_to_dtype_moves_hidden_state(name):
    n = make(name)
    run(n, [x_for(name)] * 2)
    before = {s: getattr(n, s).clone() for s in n._state_names}
    n.to(torch.float64)
    for s, v in before.items():
        assert getattr(n, s).dtype == torch.float64
        assert_close(getattr(n, s), v.double())
    assert n(x_for(name, dtype=torch.float64)).dtype == torch.float64


def test_to_dtype_then_continue_equals_float64_run():
    "A float32 run moved to float64 mid-way continues from the same state (values, not zeros)."
    xs = [x_for("Synaptic")] * 4
    a = make("Synaptic"); run(a, xs[:2]); a.to(torch.float64)
    b = make("Synaptic").to(torch.float64); run(b, [x.double() for x in xs[:2]])
    assert_close(run(a, [x.double() for x in xs[2:]]), run(b, [x.double() for x in xs[2:]]))
    assert_close(a.mem, b.mem)


# ---- dtype / device change of the input alone, in hidden mode -------------------------------------------------------
@pytest.mark.parametrize("name", ["Leaky", "Synaptic", "RLeaky"])
def test_output_dtype_follows_input_after_dtype_change(name):
    n = make(name)
    n(x_for(name, dtype=torch.float64))
    out = n(x_for(name, dtype=torch.float32))
    assert out.dtype == torch.float32
    assert all(getattr(n, s).dtype == torch.float32 for s in n._state_names)


def test_input_dtype_change_keeps_values():
    "A float32 -> float64 input change continues the kept state, cast to float64: no reset, same values."
    a, b = make("Leaky"), make("Leaky").double()
    x = x_for("Leaky")
    a(x); b(x.double())
    assert_close(a(x.double()), b(x.double()))


def test_device_change_is_handled_or_explained():
    n = make("Leaky")
    n(x_for("Leaky"))
    try:
        out = n(torch.rand(4, 3, device="meta"))            # 'meta' stands in for a second device on a CPU-only machine
    except (ValueError, RuntimeError) as e:
        assert "utils.reset" in str(e) or ".to(" in str(e), str(e)
    else:
        assert out.device.type == "meta" and n.mem.device.type == "meta"


# ---- state_dict round trip of every learnable parameter ------------------------------------------------------------
def perturbed(neuron, seed=1):
    "Give every parameter and float buffer of `neuron` new values (decays kept in (0, 1), alpha > beta for Alpha)."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(neuron.named_parameters()) + [(n, b) for n, b in neuron.named_buffers() if b.is_floating_point()]:
            if name.split(".")[-1] in neuron._state_names if hasattr(neuron, "_state_names") else False: continue
            if name in ("time_step", "R", "C"): continue                       # Lapicque constants, tied to beta
            t.copy_(t + 0.05 * torch.rand(t.shape, generator=g) if name in ("beta", "alpha") else
                    torch.rand(t.shape, generator=g) + 0.5)
        if hasattr(neuron, "alpha") and isinstance(neuron, snn.Alpha): neuron.alpha.clamp_(max=0.99)
    return neuron

LEARNABLE = {
    "Leaky": {"beta", "threshold", "graded_spikes_factor"},
    "Synaptic": {"alpha", "beta", "threshold"},
    "Alpha": {"alpha", "beta", "threshold"},
    "Lapicque": {"beta", "threshold"},
    "RLeaky": {"beta", "threshold", "recurrent.weight", "recurrent.bias"},
    "RLeakyV": {"beta", "threshold", "V"},
    "RSynaptic": {"alpha", "beta", "threshold", "recurrent.weight", "recurrent.bias"},
    "RSynapticV": {"alpha", "beta", "threshold", "V"},
    "SLSTM": {"threshold", "lstm_cell.weight_ih", "lstm_cell.weight_hh", "lstm_cell.bias_ih", "lstm_cell.bias_hh"},
    "SConv2dLSTM": {"threshold", "conv.weight", "conv.bias"},
}

@pytest.mark.parametrize("name", STATEFUL)
def test_every_learnable_parameter_is_a_parameter(name):
    assert set(dict(make(name, learn=True).named_parameters())) == LEARNABLE[name]


@pytest.mark.parametrize("learn", [True, False])
@pytest.mark.parametrize("name", STATEFUL)
def test_state_dict_round_trip(name, learn):
    src = perturbed(make(name, learn=learn))
    sd = src.state_dict()
    for s in src._state_names: assert s not in sd                        # hidden states never in checkpoints
    dst = make(name, learn=learn)
    assert any(not torch.equal(v, dst.state_dict()[k]) for k, v in sd.items() if v.is_floating_point())
    dst.load_state_dict(sd)
    for k, v in sd.items(): assert_close(dst.state_dict()[k], v, rtol=0, atol=0)
    xs = [x_for(name)] * 4
    assert_close(run(dst, xs), run(src, xs))


def test_state_dict_round_trip_reset_mechanism():
    src, dst = snn.Leaky(beta=0.9, reset_mechanism="zero", init_hidden=True), snn.Leaky(beta=0.9, init_hidden=True)
    dst.load_state_dict(src.state_dict())
    assert dst.reset_mechanism == "zero"
    xs = [torch.full((1, 1), 0.7)] * 5
    assert_close(run(dst, xs), run(src, xs))


def test_leaky_parallel_state_dict_round_trip():
    mk = lambda: snn.LeakyParallel(3, 4, beta=0.9, learn_beta=True, learn_threshold=True, learn_graded_spikes_factor=True)
    torch.manual_seed(0); src = mk()
    with torch.no_grad():
        src.threshold.fill_(0.3); src.graded_spikes_factor.fill_(2.0); src.rnn.weight_ih_l0.mul_(3)
    torch.manual_seed(1); dst = mk()
    assert {"threshold", "graded_spikes_factor", "rnn.weight_ih_l0", "rnn.weight_hh_l0"} <= set(dict(dst.named_parameters()))
    dst.load_state_dict(src.state_dict())
    x = torch.rand(5, 2, 3)
    assert_close(dst(x), src(x))


# ---- whole-model save/load, deepcopy, pickling ---------------------------------------------------------------------
def quickstart_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), snn.Leaky(beta=0.9, init_hidden=True, learn_beta=True,
                                                     spike_grad=snn.surrogate.fast_sigmoid(slope=25)),
                         nn.Linear(5, 5), snn.RSynaptic(alpha=0.8, beta=0.7, linear_features=5, init_hidden=True),
                         nn.Linear(5, 2), snn.Synaptic(alpha=0.8, beta=0.7, init_hidden=True, output=True))

def net_run(net, steps=4):
    utils.reset(net)
    x = torch.linspace(0, 2, 6).reshape(2, 3)
    return torch.stack([net(x)[0] for _ in range(steps)])

COPIERS = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "torch.save": lambda m: (lambda b: (torch.save(m, b), b.seek(0), torch.load(b, weights_only=False))[-1])(io.BytesIO()),
}

@pytest.mark.parametrize("how", COPIERS)
def test_whole_model_copy_runs_identically(how):
    net = quickstart_net()
    with torch.no_grad(): ref = net_run(net)                             # states off the graph
    twin = COPIERS[how](net)
    assert_close(net_run(twin), ref)
    twin[0].weight.data.add_(1)                                           # an independent copy
    assert_close(net_run(net), ref)


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_copy_after_training_step(how):
    "Copies are taken mid-training (after forward+backward, states still attached to a graph)."
    net = quickstart_net()
    net_run(net).sum().backward()
    twin = COPIERS[how](net)
    assert_close(net_run(twin), net_run(net))


def test_deepcopy_after_training_step():
    net = quickstart_net()
    net_run(net).sum().backward()
    twin = copy.deepcopy(net)
    assert_close(net_run(twin), net_run(net))


def test_copies_are_live_for_class_level_reset():
    "Unpickled/copied neurons join the weak registry behind the snnTorch-compatible class-level reset_hidden()."
    n = snn.Leaky(beta=0.9, init_hidden=True)
    twin = pickle.loads(pickle.dumps(n))
    twin(torch.ones(1, 2))
    snn.Leaky.reset_hidden()
    assert twin.mem.abs().sum() == 0 and twin.mem.shape == (1, 2)


# ---- load_state_dict is atomic (issue 19 item 5): validate everything, then assign ------------------------------------
BAD_ENTRIES = {
    "reset-1.7": lambda sd: {**sd, "reset_mechanism_val": torch.tensor(1.7)},
    "reset-5": lambda sd: {**sd, "reset_mechanism_val": torch.tensor(5)},
    "threshold-nan": lambda sd: {**sd, "threshold": torch.tensor(float("nan"))},
    "last-entry-wrong-shape": lambda sd: {**sd, list(sd)[-1]: torch.zeros(7, 7)},
}

@pytest.mark.parametrize("bad", list(BAD_ENTRIES))
@pytest.mark.parametrize("name", STATEFUL)
def test_a_bad_checkpoint_leaves_every_neuron_untouched(name, bad):
    "Every other entry of the checkpoint is new and valid: none of it may be assigned when one entry is refused."
    dst = make(name, learn=True)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    sd = BAD_ENTRIES[bad](perturbed(make(name, learn=True)).state_dict())
    with pytest.raises((ValueError, RuntimeError), match="nothing was loaded"): dst.load_state_dict(sd)
    for k, v in dst.state_dict().items(): assert_close(v, before[k], rtol=0, atol=0, msg=k)
    assert dst.reset_mechanism == make(name).reset_mechanism
