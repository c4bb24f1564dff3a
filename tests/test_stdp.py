"""snnedu.functional.stdp_learner equals snnTorch 1.0.0 step by step; what snnTorch cannot do is checked against calculus.

snnTorch 1.0.0's own test suite (github.com/jeshraghian/snntorch/tests) has no test of `stdp_learner`, so there is
nothing of it to adapt; the oracle here is the installed snnTorch itself. The end of this file checks that every
public name of `snntorch.functional` and `snntorch.functional.stdp_learner` exists in snnedu (or is a listed,
deliberate difference).
"""
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import snnedu as snn
import snnedu.functional as SF
from snnedu.functional import stdp_learner as S

st = pytest.importorskip('snntorch')
import snntorch.functional as RF
from snntorch.functional import stdp_learner as R

def spikes(*shape, p=0.4, seed=0, dtype=torch.float32):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p).to(dtype)

def soft_pre(w): return w.clamp(min=0) * 0.5          # weight-dependent rules (not the identity)
def soft_post(w): return 1.0 - w

def run(fn, layer, ins, outs, *taus, **kw):
    "Run a single-step rule over a sequence; returns every step's (trace_pre, trace_post, delta)."
    tp = tq = None; res = []
    for s_in, s_out in zip(ins, outs):
        tp, tq, d = fn(layer, s_in, s_out, tp, tq, *taus, **kw)
        res.append((tp, tq, d))
    return res

def same(a, b, **tol):
    for (p1, q1, d1), (p2, q2, d2) in zip(a, b):
        assert_close(p1, p2, **tol); assert_close(q1, q2, **tol); assert_close(d1, d2, **tol)

# ---- the single-step rules: values for several steps ---------------------------------------------------------------
@pytest.mark.parametrize('f', [{}, dict(f_pre=soft_pre, f_post=soft_post)], ids=['additive', 'soft'])
@pytest.mark.parametrize('name', ['stdp_linear_single_step', 'mstdp_linear_single_step'])
@pytest.mark.parametrize('B', [1, 3])
def test_linear_rules_match_snntorch(name, B, f):
    torch.manual_seed(0)
    fc = nn.Linear(5, 4)
    ins, outs = spikes(6, B, 5, seed=1), spikes(6, B, 4, seed=2)
    same(run(getattr(S, name), fc, ins, outs, 2.0, 3.5, **f), run(getattr(R, name), fc, ins, outs, 2.0, 3.5, **f))

@pytest.mark.parametrize('f', [{}, dict(f_pre=soft_pre, f_post=soft_post)], ids=['additive', 'soft'])
def test_mstdpet_matches_snntorch_unbatched(f):
    torch.manual_seed(0)
    fc = nn.Linear(5, 4)
    ins, outs = spikes(6, 5, seed=1), spikes(6, 4, seed=2)
    same(run(S.mstdpet_linear_single_step, fc, ins, outs, 2.0, 3.5, 4.0, **f),
         run(R.mstdpet_linear_single_step, fc, ins, outs, 2.0, 3.5, 4.0, **f))

def test_mstdpet_batched_is_per_sample():
    "snnTorch's torch.outer cannot take a batch; snnedu gives each sample's eligibility, as MSTDP does."
    fc = nn.Linear(5, 4)
    ins, outs = spikes(3, 5, seed=1), spikes(3, 4, seed=2)
    with pytest.raises(RuntimeError): R.mstdpet_linear_single_step(fc, ins, outs, None, None, 2.0, 2.0, 4.0)
    _, _, e = S.mstdpet_linear_single_step(fc, ins, outs, None, None, 2.0, 2.0, 4.0)
    for b in range(3): assert_close(e[b], S.mstdpet_linear_single_step(fc, ins[b], outs[b], None, None, 2.0, 2.0, 4.0)[2])
    assert_close(e, S.mstdp_linear_single_step(fc, ins, outs, None, None, 2.0, 2.0)[2])

CONV2D = [dict(kernel_size=3), dict(kernel_size=(2, 3), stride=2), dict(kernel_size=3, padding=1),
          dict(kernel_size=3, padding=(1, 2), stride=(2, 1)), dict(kernel_size=3, padding=1, padding_mode='reflect'),
          dict(kernel_size=3, padding=2, padding_mode='circular'), dict(kernel_size=2, padding=1, padding_mode='replicate', bias=False)]

@pytest.mark.parametrize('kw', CONV2D, ids=[str(k) for k in CONV2D])
def test_conv2d_matches_snntorch(kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, **kw)
    ins = spikes(4, 2, 2, 7, 6, seed=1)
    outs = [(conv(x) > 0).float() for x in ins]                    # the layer's output shapes
    f = dict(f_pre=soft_pre, f_post=soft_post)
    same(run(S.stdp_conv2d_single_step, conv, ins, outs, 2.0, 3.0, **f), run(R.stdp_conv2d_single_step, conv, ins, outs, 2.0, 3.0, **f),
         rtol=1e-5, atol=1e-5)

CONV1D = [dict(kernel_size=3), dict(kernel_size=2, stride=3), dict(kernel_size=3, padding=2),
          dict(kernel_size=3, padding=1, padding_mode='circular')]

@pytest.mark.parametrize('kw', CONV1D, ids=[str(k) for k in CONV1D])
def test_conv1d_matches_snntorch(kw):
    torch.manual_seed(0)
    conv = nn.Conv1d(2, 3, **kw)
    ins = spikes(4, 2, 2, 9, seed=1)
    outs = [(conv(x) > 0).float() for x in ins]
    same(run(S.stdp_conv1d_single_step, conv, ins, outs, 2.0, 3.0), run(R.stdp_conv1d_single_step, conv, ins, outs, 2.0, 3.0),
         rtol=1e-5, atol=1e-5)

def conv_stdp_by_calculus(conv, x_pre_padded, s_out, s_in_padded, x_post, nd):
    "delta_w = W * d/dW [sum(s_out * conv(x_pre; W))] - W * d/dW [sum(x_post * conv(s_in; W))] (f = identity), by autograd."
    conv_fn = F.conv1d if nd == 1 else F.conv2d
    def corr(x, g):
        w = conv.weight.detach().clone().requires_grad_()
        (conv_fn(x, w, None, conv.stride, 0, conv.dilation, conv.groups) * g).sum().backward()
        return w.grad
    return conv.weight.detach() * (corr(x_pre_padded, s_out) - corr(s_in_padded, x_post))

@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize('nd,kw', [(2, dict(kernel_size=3, dilation=2)), (2, dict(kernel_size=3, groups=2, padding=1)),
                                   (2, dict(kernel_size=3, padding='same', dilation=(1, 2))), (1, dict(kernel_size=3, dilation=2, groups=2)),
                                   (1, dict(kernel_size=4, padding='same')), (2, dict(kernel_size=3, padding='valid'))])
def test_conv_dilation_groups_same_padding(nd, kw):
    "What snnTorch refuses (dilation, groups) or crashes on (string padding): the change is a convolution weight gradient."
    torch.manual_seed(0)
    conv = (nn.Conv1d if nd == 1 else nn.Conv2d)(4, 6, **kw)
    fn = S.stdp_conv1d_single_step if nd == 1 else S.stdp_conv2d_single_step
    size = (9,) if nd == 1 else (7, 8)
    ins = spikes(3, 2, 4, *size, seed=1)
    outs = [(conv(x) > 0).float() for x in ins]
    tp = tq = None
    for s_in, s_out in zip(ins, outs):
        prev_tp, prev_tq = tp, tq
        tp, tq, d = fn(conv, s_in, s_out, tp, tq, 2.0, 3.0)
        padded = F.pad(s_in, conv._reversed_padding_repeated_twice)
        assert_close(tp, (0 if prev_tp is None else prev_tp * 0.5) + padded)
        assert_close(d, conv_stdp_by_calculus(conv, tp, s_out, padded, tq, nd), rtol=1e-5, atol=1e-5)

def test_unbatched_equals_batch_of_one():
    torch.manual_seed(0)
    fc, conv = nn.Linear(5, 4), nn.Conv2d(2, 3, 3, padding=1)
    s_in, s_out = spikes(2, 5, seed=1), spikes(2, 4, seed=2)
    a = run(S.stdp_linear_single_step, fc, s_in, s_out, 2.0, 3.0)
    b = run(S.stdp_linear_single_step, fc, s_in[:, None], s_out[:, None], 2.0, 3.0)
    same([(p[None], q[None], d) for p, q, d in a], b)
    x = spikes(2, 2, 5, 5, seed=3)
    y = [(conv(v) > 0).float() for v in x]
    a = run(S.stdp_conv2d_single_step, conv, x, y, 2.0, 3.0)
    b = run(S.stdp_conv2d_single_step, conv, x[:, None], [v[None] for v in y], 2.0, 3.0)
    same([(p[None], q[None], d) for p, q, d in a], b)

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    torch.manual_seed(0)
    fc, conv = nn.Linear(5, 4).to(dtype), nn.Conv2d(2, 3, 3).to(dtype)
    s_in, s_out = spikes(3, 5, dtype=dtype), spikes(3, 4, seed=2, dtype=dtype)
    tp, tq, d = S.stdp_linear_single_step(fc, s_in, s_out, None, None, 2.0, 3.0)
    assert d.dtype == tp.dtype == dtype
    ref = S.stdp_linear_single_step(fc.double(), s_in.double(), s_out.double(), None, None, 2.0, 3.0)[2]
    assert_close(d.double(), ref, rtol=2e-2, atol=2e-2)
    x = spikes(2, 2, 5, 5, dtype=dtype)
    _, _, dc = S.stdp_conv2d_single_step(conv, x, (conv(x) > 0).to(dtype), None, None, 2.0, 3.0)
    assert dc.dtype == dtype and dc.shape == conv.weight.shape

def test_integer_and_bool_spikes_are_read_as_float():
    fc = nn.Linear(5, 4)
    s_in, s_out = spikes(3, 5), spikes(3, 4, seed=2)
    want = S.stdp_linear_single_step(fc, s_in, s_out, None, None, 2.0, 3.0)[2]
    assert_close(S.stdp_linear_single_step(fc, s_in.bool(), s_out.long(), None, None, 2.0, 3.0)[2], want)

def test_weights_are_not_changed_and_no_graph():
    fc = nn.Linear(5, 4)
    w = fc.weight.detach().clone()
    _, _, d = S.stdp_linear_single_step(fc, spikes(3, 5), spikes(3, 4, seed=2), None, None, 2.0, 3.0)
    assert_close(fc.weight.detach(), w)
    assert not d.requires_grad

# ---- the learner ---------------------------------------------------------------------------------------------------
class Fire(nn.Module):
    "A threshold unit (same in both libraries), so the learners see identical spikes."
    def forward(self, x): return (x > 0.3).float()

@pytest.mark.parametrize('kind', ['linear', 'conv2d', 'conv1d'])
@pytest.mark.parametrize('scale', [1.0, 0.25])
def test_learner_matches_snntorch(kind, scale):
    torch.manual_seed(0)
    synapse = {'linear': lambda: nn.Linear(6, 4), 'conv2d': lambda: nn.Conv2d(2, 3, 3, padding=1),
               'conv1d': lambda: nn.Conv1d(2, 3, 3, stride=2)}[kind]()
    shape = {'linear': (3, 6), 'conv2d': (3, 2, 5, 5), 'conv1d': (3, 2, 9)}[kind]
    sn = Fire()
    net = nn.Sequential(synapse, sn)
    ours = S.STDPLearner(synapse, sn, tau_pre=2.0, tau_post=3.0, f_pre=soft_pre, f_post=soft_post)
    ref = R.STDPLearner(synapse, sn, tau_pre=2.0, tau_post=3.0, f_pre=soft_pre, f_post=soft_post)
    for chunk in range(2):                                        # two calls of step(): the traces carry over
        for t in range(4): net(spikes(*shape, seed=10 * chunk + t))
        assert_close(ours.step(on_grad=False, scale=scale), ref.step(on_grad=False, scale=scale), rtol=1e-5, atol=1e-5)
        assert_close(ours.trace_pre, ref.trace_pre); assert_close(ours.trace_post, ref.trace_post)

def test_learner_on_grad_matches_snntorch():
    torch.manual_seed(0)
    a = nn.Linear(6, 4); b = nn.Linear(6, 4); b.load_state_dict(a.state_dict())
    la, lb = S.STDPLearner(a, a, 2.0, 3.0), R.STDPLearner(b, b, 2.0, 3.0)     # sn = the synapse: outputs as "spikes"
    for net, learner in ((a, la), (b, lb)):
        net.weight.grad = torch.ones_like(net.weight)           # an existing gradient is decremented
        for t in range(3): net(spikes(2, 6, seed=t))
        learner.step()
        for t in range(3): net(spikes(2, 6, seed=5 + t))
        learner.step(scale=0.5)
    assert_close(a.weight.grad, b.weight.grad)

def test_learner_reset_works_where_snntorch_crashes():
    fc, sn = nn.Linear(6, 4), Fire()
    ref = R.STDPLearner(fc, sn, 2.0, 3.0)
    with pytest.raises(AttributeError): ref.reset()
    ours = S.STDPLearner(fc, sn, 2.0, 3.0)
    sn(fc(spikes(2, 6))); ours.step(on_grad=False)
    assert ours.trace_pre is not None
    sn(fc(spikes(2, 6)))
    ours.reset()
    assert ours.trace_pre is None and ours.trace_post is None and not ours.in_spike_monitor.records
    assert_close(ours.step(on_grad=False), torch.zeros_like(fc.weight))

def test_learner_reads_spikes_of_a_neuron_returning_state():
    "A neuron with init_hidden=False returns (spk, mem): the learner reads spk."
    torch.manual_seed(0)
    fc, lif, lif_h = nn.Linear(6, 4), snn.Leaky(beta=0.9, threshold=0.2), snn.Leaky(beta=0.9, threshold=0.2, init_hidden=True)
    l1, l2 = S.STDPLearner(fc, lif, 2.0, 3.0), S.STDPLearner(fc, lif_h, 2.0, 3.0)
    for t in range(4):
        x = fc(spikes(2, 6, seed=t)); lif(x); lif_h(x)
    assert_close(l1.step(on_grad=False), l2.step(on_grad=False))

def test_learner_disable_enable():
    fc, sn = nn.Linear(6, 4), Fire()
    learner = S.STDPLearner(fc, sn, 2.0, 3.0)
    learner.disable(); sn(fc(spikes(2, 6)))
    assert not learner.in_spike_monitor.records and not learner.out_spike_monitor.records
    learner.enable(); sn(fc(spikes(2, 6)))
    assert len(learner.in_spike_monitor.records) == 1

def test_learner_unsupervised_training_with_optimizer():
    "Soft-bound STDP with an optimiser: inputs that fire together with the output grow, weights stay in [0, 1]."
    torch.manual_seed(0)
    fc = nn.Linear(8, 1, bias=False); nn.init.constant_(fc.weight, 0.3)
    lif = snn.Leaky(beta=0.8, threshold=1.0, init_hidden=True)
    learner = S.STDPLearner(fc, lif, 3.0, 3.0, f_pre=lambda w: 1.2 * w, f_post=lambda w: 1.0 - w)
    opt = torch.optim.SGD(fc.parameters(), lr=0.02)
    g = torch.Generator().manual_seed(0)
    for t in range(400):
        burst = float(t % 10 == 0)
        x = torch.cat([torch.full((1, 4), burst), (torch.rand(1, 4, generator=g) < 0.1).float()], 1)
        with torch.no_grad(): lif(fc(x))
        opt.zero_grad(); learner.step(); opt.step()
        with torch.no_grad(): fc.weight.clamp_(0, 1)
    w = fc.weight.detach()[0]
    assert w[:4].min() > w[4:].max()

# ---- bad input -----------------------------------------------------------------------------------------------------
fc54 = nn.Linear(5, 4)
conv = nn.Conv2d(2, 3, 3)
BAD = [
    (lambda: S.stdp_linear_single_step(conv, spikes(2, 5), spikes(2, 4), None, None, 2.0, 2.0), TypeError, 'fc must be a torch.nn.Linear'),
    (lambda: S.stdp_linear_single_step(fc54, spikes(2, 6), spikes(2, 4), None, None, 2.0, 2.0), ValueError, 'in_spike must be (B, 5)'),
    (lambda: S.stdp_linear_single_step(fc54, spikes(2, 5), spikes(3, 4), None, None, 2.0, 2.0), ValueError, 'with the same B'),
    (lambda: S.stdp_linear_single_step(fc54, [1, 0, 1, 0, 1], spikes(4), None, None, 2.0, 2.0), TypeError, 'in_spike must be a tensor'),
    (lambda: S.stdp_linear_single_step(fc54, spikes(2, 5), spikes(2, 4), torch.zeros(5), None, 2.0, 2.0), ValueError, 'trace_pre has shape (5,)'),
    (lambda: S.stdp_linear_single_step(fc54, spikes(2, 5), spikes(2, 4), None, torch.zeros(2, 5), 2.0, 2.0), ValueError, 'trace_post has shape'),
    (lambda: S.stdp_linear_single_step(fc54, spikes(2, 5), spikes(2, 4), None, None, 0, 2.0), ValueError, 'tau_pre must be a positive'),
    (lambda: S.stdp_linear_single_step(fc54, spikes(2, 5), spikes(2, 4), None, None, 2.0, -1.0), ValueError, 'tau_post must be a positive'),
    (lambda: S.mstdp_linear_single_step(fc54, spikes(2, 5), spikes(2, 4), None, None, 2.0, True), ValueError, 'tau_post must be a positive'),
    (lambda: S.mstdpet_linear_single_step(fc54, spikes(5), spikes(4), None, None, 2.0, 2.0, 0.0), ValueError, 'tau_trace must be a positive'),
    (lambda: S.stdp_conv2d_single_step(fc54, spikes(2, 5), spikes(2, 4), None, None, 2.0, 2.0), TypeError, 'conv must be a torch.nn.Conv2d'),
    (lambda: S.stdp_conv1d_single_step(conv, spikes(2, 2, 5), spikes(2, 3, 3), None, None, 2.0, 2.0), TypeError, 'conv must be a torch.nn.Conv1d'),
    (lambda: S.stdp_conv2d_single_step(conv, spikes(2, 3, 5, 5), spikes(2, 3, 3, 3), None, None, 2.0, 2.0), ValueError, 'in_spike must be (B, 2, H, W)'),
    (lambda: S.stdp_conv2d_single_step(conv, spikes(2, 2, 5, 5), spikes(2, 3, 4, 4), None, None, 2.0, 2.0), ValueError, "(3, 3, 3) per sample"),
    (lambda: S.stdp_conv2d_single_step(conv, spikes(2, 2, 5, 5), spikes(2, 3, 3, 3), torch.zeros(2, 2, 4, 4), None, 2.0, 2.0), ValueError, 'padded in_spike'),
    (lambda: S.STDPLearner(nn.Conv3d(1, 1, 1), Fire(), 2.0, 2.0), TypeError, 'Linear, Conv1d or Conv2d'),
    (lambda: S.STDPLearner(fc54, 'lif', 2.0, 2.0), TypeError, 'sn must be the spiking layer'),
    (lambda: S.STDPLearner(fc54, Fire(), 2.0, 0.0), ValueError, 'tau_post must be a positive'),
]

@pytest.mark.parametrize('fn,exc,words', BAD, ids=[w for _, _, w in BAD])
def test_bad_input(fn, exc, words):
    with pytest.raises(exc) as e: fn()
    assert words in str(e.value)

def test_learner_unpaired_records():
    fc, sn = nn.Linear(5, 4), Fire()
    learner = S.STDPLearner(fc, sn, 2.0, 3.0)
    fc(spikes(2, 5)); fc(spikes(2, 5)); sn(torch.zeros(2, 4))
    with pytest.raises(RuntimeError, match='ran 2 times but sn 1 times'): learner.step()

# ---- every public name of snntorch.functional and snntorch.functional.stdp_learner ---------------------------------
# Names in their dir() that are the reference's own imports, not its API; snnedu does not re-export them.
IMPORTS = {'Any': 'typing.Any', 'Callable': 'typing.Callable', 'Union': 'typing.Union', 'Value': 'a helper class imported by loss.py',
           'dtype': 'torch.dtype imported by quant/loss', 'nn': 'torch.nn', 'np': 'numpy', 'torch': 'torch', 'F': 'torch.nn.functional',
           'math': 'math', 'spikegen': 'snntorch.spikegen, imported by loss.py (use snnedu.spikegen)',
           'probe': 'in stdp_learner: the probe module it imports (snnedu.functional.probe exists)'}

SUBMODULES = ['loss', 'acc', 'reg', 'probe', 'quant', 'stdp_learner']

@pytest.mark.parametrize('sub', [None] + SUBMODULES)
def test_every_public_name_exists(sub):
    "dir() of snntorch.functional and of each of its submodules, against snnedu's (with `import` changed)."
    import importlib
    for name in SUBMODULES:                       # a submodule is an attribute once imported: import them on both sides
        importlib.import_module(f'snnedu.functional.{name}'); importlib.import_module(f'snntorch.functional.{name}')
    ours, ref = (SF, RF) if sub is None else (importlib.import_module(f'snnedu.functional.{sub}'), importlib.import_module(f'snntorch.functional.{sub}'))
    public = {n for n in dir(ref) if not n.startswith('_')}
    missing = [n for n in sorted(public - set(IMPORTS)) if not hasattr(ours, n)]
    assert not missing, f'{ours.__name__} lacks {missing}'

def test_listed_differences_are_names_of_snntorch():
    import importlib
    mods = [RF] + [importlib.import_module(f'snntorch.functional.{sub}') for sub in SUBMODULES]
    names = {n for m in mods for n in dir(m) if not n.startswith('_')}
    assert set(IMPORTS) <= names, f'not names of snnTorch any more: {set(IMPORTS) - names}'

def test_import_forms():
    from snnedu.functional import stdp_learner                    # snnTorch: from snntorch.functional import stdp_learner
    from snnedu.functional.stdp_learner import STDPLearner        # noqa: F401
    import snnedu.functional.stdp_learner                          # noqa: F401
    assert stdp_learner.STDPLearner is S.STDPLearner

def test_signatures_match_snntorch():
    import inspect
    for name in ('stdp_linear_single_step', 'mstdp_linear_single_step', 'mstdpet_linear_single_step', 'stdp_conv2d_single_step',
                 'stdp_conv1d_single_step', 'STDPLearner'):
        ref = [p.name for p in inspect.signature(getattr(R, name)).parameters.values()]
        ours = [p.name for p in inspect.signature(getattr(S, name)).parameters.values()]
        assert ours == ref, name
    for name in ('step', 'reset', 'enable', 'disable'):
        assert [p.name for p in inspect.signature(getattr(S.STDPLearner, name)).parameters.values()] == \
               [p.name for p in inspect.signature(getattr(R.STDPLearner, name)).parameters.values()], name

def test_every_signature_of_snntorch_functional():
    "Every public function, class and public method of snntorch.functional.*: same parameter names, order and defaults."
    import importlib, inspect
    def params(f):
        out = []
        for p in inspect.signature(f).parameters.values():
            d = p.default
            if d is not p.empty and callable(d):  # identity-function defaults (snnTorch: lambdas): compare what they do
                x = torch.rand(3); d = ('callable', d(x) is x or torch.equal(d(x), x))
            out.append((p.name, d))
        return out
    checked = 0
    for sub in SUBMODULES:
        r, o = importlib.import_module(f'snntorch.functional.{sub}'), importlib.import_module(f'snnedu.functional.{sub}')
        for n in dir(r):
            a = getattr(r, n)
            if n.startswith('_') or not callable(a) or getattr(a, '__module__', '') != r.__name__: continue
            pairs = [(n, a, getattr(o, n))]
            if inspect.isclass(a):
                pairs += [(f'{n}.{m}', v, getattr(getattr(o, n), m)) for m, v in vars(a).items() if not m.startswith('_') and callable(v)]
            for name, ref_f, our_f in pairs:
                pr, po = params(ref_f), params(our_f)
                assert po[:len(pr)] == pr, f'{sub}.{name}: snnTorch {pr}, snnedu {po}'
                checked += 1
    assert checked > 40
