"""LeakyParallel against snnTorch 1.0.0 (weights copied), plus the fixed defects (#442 per-neuron beta, #403 dropout)."""
import copy
import inspect
import warnings

import pytest
import torch
from torch.testing import assert_close

import snnedu as snn
from snnedu.neurons.parallel import LeakyParallel, parallel_beta

snntorch = pytest.importorskip("snntorch")


def _pair(**kw):
    "An snnTorch LeakyParallel and ours with the same weights (copied from snnTorch's)."
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = snntorch.LeakyParallel(**kw)
    ours = LeakyParallel(**kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _grads(module, x):
    x = x.clone().requires_grad_(True)
    spk = module(x)
    if not spk.requires_grad: return spk.detach(), None, {}      # surrogate_disable: no gradient path at all
    (spk * torch.linspace(0.5, 1.5, spk.shape[-1])).sum().backward()
    named = {n: p.grad for n, p in module.named_parameters() if p.requires_grad}
    return spk.detach(), x.grad, named


GRID = [dict(beta=None), dict(beta=0.7), dict(beta=0.3, bias=False), dict(beta=0.9, learn_beta=True),
        dict(beta=0.5, threshold=0.4, learn_threshold=True), dict(beta=0.6, graded_spikes_factor=2.0,
        learn_graded_spikes_factor=True), dict(beta=0.8, weight_hh_enable=True), dict(beta=None, learn_beta=True),
        dict(beta=0.8, surrogate_disable=True)]


@pytest.mark.parametrize("kw", GRID, ids=[str(k) for k in GRID])
@pytest.mark.parametrize("batched", [True, False])
def test_parity_with_snntorch(kw, batched):
    ref, ours = _pair(input_size=4, hidden_size=5, **kw)
    torch.manual_seed(1)
    x = torch.rand(12, 3, 4) * 4 - 0.5 if batched else torch.rand(12, 4) * 4 - 0.5
    spk_r, gx_r, gp_r = _grads(ref, x)
    spk_o, gx_o, gp_o = _grads(ours, x)
    assert_close(spk_o, spk_r)
    assert spk_o.sum() > 0                                     # the grid is not vacuous
    if not kw.get("surrogate_disable"):
        assert_close(gx_o, gx_r)
        assert set(gp_o) == set(gp_r)
        for name in gp_r: assert_close(gp_o[name], gp_r[name], msg=name)


def test_state_dict_keys_match_snntorch():
    for kw in (dict(beta=None), dict(beta=0.5), dict(beta=0.5, learn_threshold=True)):
        ref, ours = _pair(input_size=2, hidden_size=3, **kw)
        assert list(ours.state_dict()) == list(ref.state_dict())


def test_golden_trace():
    lp = LeakyParallel(1, 1, beta=0.5, bias=False)
    with torch.no_grad(): lp.rnn.weight_ih_l0.fill_(1.0)
    x = torch.tensor([0.6, 0.6, 0.6, -2.0, 0.3]).view(5, 1, 1)
    assert lp(x).flatten().tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert_close(lp.rnn(x)[0].flatten(), torch.tensor([0.6, 0.9, 1.05, 0.0, 0.3]))


def test_per_neuron_beta_is_honoured_issue_442():
    beta = torch.linspace(0.1, 0.9, 6)
    lp = LeakyParallel(input_size=4, hidden_size=6, beta=beta)
    assert_close(lp.rnn.weight_hh_l0, torch.diag(beta))
    assert_close(LeakyParallel(4, 3, beta=[0.2, 0.4, 0.6]).rnn.weight_hh_l0.diagonal(), torch.tensor([0.2, 0.4, 0.6]))
    assert_close(LeakyParallel(4, 3, beta=torch.tensor(0.5)).rnn.weight_hh_l0, 0.5 * torch.eye(3))
    # a per-neuron decay gives the same membranes as Leaky(reset 'none') with the same beta, fed positive currents
    lp = LeakyParallel(2, 6, beta=beta, bias=False)
    with torch.no_grad(): lp.rnn.weight_ih_l0.abs_()
    x = torch.rand(10, 2)
    cur, mem, mems = x @ lp.rnn.weight_ih_l0.T, torch.zeros(6), []
    for c in cur:
        mem = beta * mem + c
        mems.append(mem)
    assert_close(lp.rnn(x)[0], torch.stack(mems))


@pytest.mark.parametrize("beta, msg", [(torch.tensor([0.3, 0.4]), "hidden_size = 6 values"),
                                       ([0.1] * 7, "got 7 values"), (1.5, "beta must be in [0, 1]"),
                                       (-0.1, "beta must be in [0, 1]"), ("0.5", "beta must be a real number")])
def test_bad_beta(beta, msg):
    with pytest.raises((ValueError, TypeError), match=None) as e:
        LeakyParallel(4, 6, beta=beta)
    assert msg in str(e.value)


@pytest.mark.parametrize("dropout", [-0.1, 1.5, "0.2", True])
def test_bad_dropout(dropout):
    with pytest.raises(ValueError, match="dropout must be a probability in"):
        LeakyParallel(4, 6, dropout=dropout)


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # no PyTorch 'dropout expects num_layers > 1' warning
        lp = LeakyParallel(4, 40, beta=0.9, dropout=1.0)
    x = torch.rand(10, 3, 4) * 3 + 0.5
    ref = LeakyParallel(4, 40, beta=0.9)
    ref.load_state_dict(lp.state_dict())
    lp.eval()
    assert_close(lp(x), ref(x))
    assert ref(x).sum() > 0
    lp.train()
    assert lp(x).sum() == 0                                   # everything dropped: no membrane, no spike
    lp.dropout = 0.5
    torch.manual_seed(3)
    assert not torch.equal(lp(x), ref(x))


def test_bad_spike_grad():
    with pytest.raises(TypeError, match="spike_grad must be a callable"):
        LeakyParallel(4, 6, spike_grad="atan")


@pytest.mark.parametrize("shape", [(5, 2, 3), (5,), (5, 2, 4, 1)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match=r"input_ must have shape \(L, B, 4\) or \(L, 4\)"):
        LeakyParallel(4, 6)(torch.rand(shape))


def test_dtype_follows_input_and_float64_module():
    x = torch.rand(5, 2, 4, dtype=torch.float64)
    assert LeakyParallel(4, 3, beta=0.5)(x).dtype == torch.float64
    lp = LeakyParallel(4, 3, beta=0.5, dtype=torch.float64)
    assert lp.rnn.weight_ih_l0.dtype == torch.float64
    assert lp(x).dtype == torch.float64
    assert lp(x.float()).dtype == torch.float32


def test_learnable_diagonal_stays_diagonal():
    lp = LeakyParallel(3, 4, beta=0.5, learn_beta=True, dtype=torch.float64)
    x = (torch.rand(6, 2, 3, dtype=torch.float64) * 2).requires_grad_(True)
    # the spike function is a step: check the membrane path (RNN + diagonal hook) and that the hook keeps W_hh diagonal
    lp(x).sum().backward()
    g = lp.rnn.weight_hh_l0.grad
    assert_close(g, torch.diag(g.diagonal()))
    assert not LeakyParallel(3, 4, beta=0.5).rnn.weight_hh_l0.requires_grad


def test_signature_matches_spec():
    params = list(inspect.signature(snn.LeakyParallel).parameters)
    assert params == ["input_size", "hidden_size", "beta", "bias", "threshold", "dropout", "spike_grad",
                      "surrogate_disable", "learn_beta", "learn_threshold", "graded_spikes_factor",
                      "learn_graded_spikes_factor", "weight_hh_enable", "device", "dtype"]
    assert snn.LeakyParallel.ATan is snn.surrogate.ATan
    assert parallel_beta(None, 3) is None


# ---------------------------------------------------------------- issue 19 item 4: float64 input is computed in float64

def test_float64_input_is_computed_in_float64():
    "A float32 layer fed float64 computes like its float64 copy (it rounded the input to float32 before)."
    torch.manual_seed(0)
    lp = LeakyParallel(4, 3, beta=0.7, threshold=0.4, learn_beta=True)
    x = (torch.rand(7, 2, 4, dtype=torch.float64)).requires_grad_()
    double = copy.deepcopy(lp).double()
    out, ref = lp(x), double(x)
    assert out.dtype == torch.float64
    assert_close(out, ref, rtol=0, atol=0)
    (gx,) = torch.autograd.grad(out.sum(), x); (gr,) = torch.autograd.grad(ref.sum(), x)
    assert_close(gx, gr)
    assert lp.rnn.weight_ih_l0.dtype == torch.float32            # the module itself is unchanged

def test_float64_precision_decides_a_spike():
    "x = 0.1 + 2e-9 is above the (float32) threshold 0.1000000015 in float64, but rounds onto it in float32."
    lp = LeakyParallel(1, 1, beta=0.0, bias=False, threshold=0.1)
    with torch.no_grad(): lp.rnn.weight_ih_l0.fill_(1.0)
    x = torch.tensor([[0.1000000020]], dtype=torch.float64)
    assert lp(x).item() == 1.0
    assert lp(x.float()).item() == 0.0

def test_nan_threshold_rejected():
    with pytest.raises(ValueError, match='threshold must be a number, got nan'): LeakyParallel(3, 4, threshold=float('nan'))
    with pytest.raises(ValueError, match='graded_spikes_factor must be a number, got nan'):
        LeakyParallel(3, 4, graded_spikes_factor=float('nan'))
