"""snnedu.functional against snnTorch 1.0.0: losses (values and gradients), accuracy, regulariser, quantisation and
monitors over grids; the census golden values; the deliberate fixes; the bad-input catalogue."""
import pickle

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import snnedu.functional as SF
from snnedu.functional import quant

RF = pytest.importorskip('snntorch.functional')
from snntorch.functional import quant as rquant  # noqa: E402

GOLDEN_SPK = torch.tensor([[[1, 0, 0], [0, 1, 1]], [[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 0]]]).float()
GOLDEN_Y = torch.tensor([0, 2])

def recording(T, B, C, seed, p=0.3, binary=True):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C, generator=g) < p).float() if binary else torch.randn(T, B, C, generator=g)

def labels(B, C, seed):
    return torch.randint(0, C, (B,), generator=torch.Generator().manual_seed(seed + 100))

def value_and_grad(fn, out, y):
    out = out.clone().requires_grad_()
    loss = fn(out, y.clone())
    loss.sum().backward()
    return loss.detach().reshape(loss.shape if loss.dim() != 1 or loss.numel() != 1 else ()), out.grad

SHAPES = [(1, 1, 2), (4, 2, 3), (10, 5, 4), (25, 8, 10)]

# ---------------------------------------------------------------- golden values (census 5.1)
def test_golden_values():
    s, y = GOLDEN_SPK, GOLDEN_Y
    assert_close(SF.ce_rate_loss()(s, y), torch.tensor(0.78366), rtol=0, atol=1e-5)
    assert_close(SF.ce_count_loss()(s, y), torch.tensor(0.16985), rtol=0, atol=1e-5)
    assert_close(SF.mse_count_loss()(s, y), torch.tensor(0.16667), rtol=0, atol=1e-5)
    assert_close(SF.ce_temporal_loss()(s, y), torch.tensor(0.44379), rtol=0, atol=1e-5)
    assert_close(SF.ce_temporal_loss(inverse='reciprocal')(s, y), torch.tensor(0.79559), rtol=0, atol=1e-5)
    assert_close(SF.mse_temporal_loss()(s, y), torch.tensor(5 / 48))                     # fixed targets (snnTorch: 0.22917)
    assert_close(SF.mse_temporal_loss(target_is_time=True)(s, torch.zeros(2, 3)), torch.tensor(0.22917), rtol=0, atol=1e-5)
    t, _ = SF.SpikeTime()(s, y)
    assert t.tolist() == [[0, 2, 3], [3, 0, 0]]

# ---------------------------------------------------------------- oracle: values and gradients
LOSSES = [
    ('ce_rate_loss', {}, True), ('ce_rate_loss', {'reduction': 'sum'}, True), ('ce_rate_loss', {'reduction': 'none'}, True),
    ('ce_rate_loss', {'weight': 'w'}, True),
    ('ce_count_loss', {}, True), ('ce_count_loss', {'reduction': 'sum'}, True), ('ce_count_loss', {'reduction': 'none'}, True),
    ('ce_count_loss', {'weight': 'w'}, True),
    ('ce_max_membrane_loss', {}, False), ('ce_max_membrane_loss', {'reduction': 'sum'}, False),
    ('ce_max_membrane_loss', {'reduction': 'none'}, False), ('ce_max_membrane_loss', {'weight': 'w'}, False),
    ('mse_count_loss', {}, True), ('mse_count_loss', {'correct_rate': 0.8, 'incorrect_rate': 0.2}, True),
    ('mse_count_loss', {'correct_rate': 0.75, 'incorrect_rate': 0.1, 'reduction': 'sum'}, True), ('mse_count_loss', {'reduction': 'none'}, True),
    ('mse_membrane_loss', {}, False), ('mse_membrane_loss', {'on_target': 2, 'off_target': 0.5}, False),
    ('mse_membrane_loss', {'on_target': 0.2, 'off_target': 1}, False), ('mse_membrane_loss', {'reduction': 'sum'}, False),
    ('mse_membrane_loss', {'reduction': 'none'}, False),
    ('ce_temporal_loss', {}, True), ('ce_temporal_loss', {'inverse': 'reciprocal'}, True), ('ce_temporal_loss', {'reduction': 'sum'}, True),
    ('ce_temporal_loss', {'reduction': 'none'}, True), ('ce_temporal_loss', {'weight': 'w'}, True),
    ('ce_temporal_loss', {'inverse': 'reciprocal', 'weight': 'w'}, True),
]

@pytest.mark.parametrize('name,kw,binary', LOSSES, ids=[f'{n}-{k}' for n, k, _ in LOSSES])
@pytest.mark.parametrize('shape', SHAPES, ids=str)
def test_loss_matches_snntorch(name, kw, binary, shape):
    T, B, C = shape
    kw = dict(kw)
    if kw.get('weight') == 'w': kw['weight'] = torch.linspace(0.5, 2.0, C)
    out, y = recording(T, B, C, seed=T * B + C, binary=binary), labels(B, C, seed=T)
    ours, theirs = getattr(SF, name)(**kw), getattr(RF, name)(**kw)
    (v, g), (v_ref, g_ref) = value_and_grad(ours, out, y), value_and_grad(theirs, out, y)
    assert_close(v, v_ref.reshape(v.shape))
    assert_close(g, g_ref)

@pytest.mark.parametrize('shape', [(4, 2, 6), (8, 3, 9)], ids=str)
@pytest.mark.parametrize('name,kw', [('ce_count_loss', {}), ('ce_count_loss', {'reduction': 'sum'}), ('mse_count_loss', {}),
                                     ('mse_count_loss', {'correct_rate': 0.8, 'incorrect_rate': 0.2})])
def test_population_code_matches_snntorch(name, kw, shape):
    T, B, C = shape
    out, y = recording(T, B, C, seed=1), labels(B, 3, seed=2)
    ours, theirs = getattr(SF, name)(population_code=True, num_classes=3, **kw), getattr(RF, name)(population_code=True, num_classes=3, **kw)
    (v, g), (v_ref, g_ref) = value_and_grad(ours, out, y), value_and_grad(theirs, out, y)
    assert_close(v, v_ref.reshape(v.shape)); assert_close(g, g_ref)

@pytest.mark.parametrize('kw', [dict(target_is_time=True), dict(target_is_time=True, tolerance=2), dict(target_is_time=True, reduction='sum'),
                                dict(target_is_time=True, reduction='none'), dict(on_target=1, off_target=0), dict(on_target=5, off_target=2),
                                dict(on_target=1, off_target=3, tolerance=1)], ids=str)
@pytest.mark.parametrize('shape', SHAPES[1:], ids=str)
def test_mse_temporal_matches_snntorch(kw, shape):
    "Wherever snnTorch's targets are right (explicit times, or off_target >= 0), values and gradients agree."
    T, B, C = shape
    out = recording(T, B, C, seed=3, p=0.2)
    y = torch.randint(0, T, (B, C), generator=torch.Generator().manual_seed(4)).float() if kw.get('target_is_time') else labels(B, C, 5)
    (v, g), (v_ref, g_ref) = value_and_grad(SF.mse_temporal_loss(**kw), out, y), value_and_grad(RF.mse_temporal_loss(**kw), out, y)
    assert_close(v, v_ref.reshape(v.shape)); assert_close(g, g_ref)

@pytest.mark.parametrize('T', [1, 5, 12])
def test_multi_spike_matches_snntorch_single_neuron(T):
    "One neuron: snnTorch's time-slice erasure is exact, so the k-th spike times agree."
    out = recording(T, 1, 1, seed=T, p=0.5)
    targets = torch.tensor([[[0.0]], [[2.0]]])
    kw = dict(target_is_time=True, multi_spike=True)
    (v, g), (v_ref, g_ref) = value_and_grad(SF.mse_temporal_loss(**kw), out, targets), value_and_grad(RF.mse_temporal_loss(**kw), out, targets)
    assert_close(v, v_ref.reshape(v.shape))
    if T > 1 and out.sum() >= 2: assert_close(g, g_ref)

def test_multi_spike_per_neuron():
    spk = torch.zeros(6, 1, 2)
    spk[[0, 2], 0, 0] = 1; spk[[1, 4], 0, 1] = 1
    times = SF.SpikeTime.MultiSpike.apply(spk, 2)
    assert times[:, 0].tolist() == [[0, 1], [2, 4]]                 # snnTorch: [[0, 1], [2, 5]] (erases whole steps)
    loss = SF.mse_temporal_loss(on_target=[0, 1], off_target=[-2, -1], multi_spike=True)
    assert loss(spk, torch.tensor([0])).dim() == 0

def test_spike_time_gradient_vectorised():
    spk = recording(7, 4, 5, seed=9).requires_grad_()
    t, _ = SF.SpikeTime(target_is_time=True)(spk, torch.zeros(4, 5))
    w = torch.randn(4, 5)
    (t * w).sum().backward()
    expected = torch.zeros(7, 4, 5)
    for b in range(4):
        for c in range(5): expected[int(t[b, c]), b, c] = -w[b, c]
    assert_close(spk.grad, expected)

def test_spike_time_does_not_modify_targets():
    targets = torch.full((2, 3), -1.0)
    SF.SpikeTime(target_is_time=True)(GOLDEN_SPK, targets)
    assert (targets == -1).all()

# ---------------------------------------------------------------- fixes, checked against hand formulas
@pytest.mark.parametrize('name,kw', [('mse_count_loss', {}), ('mse_membrane_loss', {}), ('mse_temporal_loss', {'on_target': 1, 'off_target': 3})])
@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
def test_weighted_mse_is_mean_of_weighted_samples(name, kw, reduction):
    T, B, C = 6, 5, 3
    out, y, w = recording(T, B, C, seed=1, binary=name != 'mse_membrane_loss'), labels(B, C, 1), torch.tensor([0.5, 1.0, 3.0])
    plain = getattr(SF, name)(reduction='none', **kw)(out, y)              # (B, C)
    weighted = plain * w[y][:, None]
    want = {'mean': weighted.mean(), 'sum': weighted.sum(), 'none': weighted}[reduction]
    assert_close(getattr(SF, name)(reduction=reduction, weight=w, **kw)(out, y), want)

@pytest.mark.parametrize('name', ['ce_rate_loss', 'ce_count_loss', 'ce_max_membrane_loss'])
def test_weighted_sum_reduces(name):
    out, y, w = recording(4, 6, 3, seed=2), labels(6, 3, 2), torch.tensor([1.0, 2.0, 0.5])
    per_sample = getattr(SF, name)(reduction='none')(out, y)
    assert_close(getattr(SF, name)(reduction='sum', weight=w)(out, y), (per_sample * w[y]).sum())   # snnTorch: unreduced vector

@pytest.mark.parametrize('weight', [None, torch.tensor([1.0, 3.0])])
def test_ce_rate_population_code(weight):
    out, y = recording(5, 4, 6, seed=3), labels(4, 2, 3)
    grouped = out.reshape(5, 4, 2, 3).sum(-1)                               # (T, B, 2)
    want = SF.ce_rate_loss(reduction='none')(grouped, y)
    if weight is not None: want = want * weight[y]
    assert_close(SF.ce_rate_loss(population_code=True, num_classes=2, weight=weight)(out, y), want.mean())

def test_mse_membrane_negative_off_target():
    mem, y = torch.zeros(3, 2, 2), torch.tensor([0, 1])
    assert_close(SF.mse_membrane_loss(on_target=1, off_target=-1)(mem, y), torch.tensor(1.0))     # snnTorch: 0.5 (off ignored)

def test_mse_membrane_time_var_targets():
    T, B, C = 4, 3, 5
    mem = recording(T, B, C, seed=4, binary=False)
    y_t = torch.randint(0, C, (T, B), generator=torch.Generator().manual_seed(0))
    want = torch.stack([SF.mse_membrane_loss(reduction='none')(mem[t:t + 1], y_t[t]) for t in range(T)]).mean(0)
    assert_close(SF.mse_membrane_loss(time_var_targets=True, reduction='none')(mem, y_t), want)

def test_dtype_follows_input():
    out, y = recording(4, 3, 5, seed=0).double(), labels(3, 5, 0)
    for fn in (SF.ce_rate_loss(), SF.ce_count_loss(), SF.mse_count_loss(), SF.mse_membrane_loss(), SF.mse_temporal_loss(), SF.ce_temporal_loss()):
        assert fn(out, y).dtype == torch.float64, fn.__name__

# ---------------------------------------------------------------- bad input
BAD = [
    (lambda: SF.ce_rate_loss()(GOLDEN_SPK, torch.tensor([0, 3])), r'targets must be in \[0, 2\]'),
    (lambda: SF.ce_count_loss()(GOLDEN_SPK, torch.tensor([0, -1])), r'targets must be in \[0, 2\]'),
    (lambda: SF.ce_rate_loss()(GOLDEN_SPK, torch.tensor([0, 1, 2])), r'shape \(B,\) = \(2,\) to match spk_out of shape \(4, 2, 3\)'),
    (lambda: SF.mse_count_loss()(GOLDEN_SPK, torch.tensor([[0], [1]])), r'shape \(B,\) = \(2,\)'),
    (lambda: SF.ce_max_membrane_loss()(GOLDEN_SPK[0], GOLDEN_Y), r'mem_out must be a time-first tensor \(T, B, C\), got \(2, 3\)'),
    (lambda: SF.ce_rate_loss()(GOLDEN_SPK, torch.tensor([0.0, 1.0])), 'integer class indices'),
    (lambda: SF.ce_rate_loss(reduction='avg'), 'reduction must be one of'),
    (lambda: SF.ce_rate_loss(weight=torch.ones(2, 2)), 'weight must be a 1-D tensor'),
    (lambda: SF.ce_count_loss(weight=torch.ones(2))(GOLDEN_SPK, GOLDEN_Y), 'weight has 2 entries'),
    (lambda: SF.ce_count_loss(population_code=True)(GOLDEN_SPK, GOLDEN_Y), 'num_classes must be given'),
    (lambda: SF.ce_count_loss(population_code=True, num_classes=2)(GOLDEN_SPK, torch.tensor([0, 1])), r'multiple of num_classes \(2\)'),
    (lambda: SF.ce_rate_loss(population_code=True, num_classes=3)(torch.zeros(2, 2, 6), torch.tensor([0, 3])), r'targets must be in \[0, 2\]'),
    (lambda: SF.mse_count_loss(correct_rate=0.2, incorrect_rate=0.5), 'incorrect_rate <= correct_rate'),
    (lambda: SF.mse_temporal_loss(target_is_time=True)(GOLDEN_SPK, torch.zeros(3, 2)), r'spike times of shape \(B, C\) = \(2, 3\)'),
    (lambda: SF.mse_temporal_loss(target_is_time=True, weight=torch.ones(3)), 'weight needs class-label targets'),
    (lambda: SF.mse_temporal_loss(multi_spike=True), 'lists of equal length'),
    (lambda: SF.mse_temporal_loss(multi_spike=True, on_target=[0, 1], off_target=[-1]), 'lists of equal length'),
    (lambda: SF.mse_membrane_loss(time_var_targets=True)(GOLDEN_SPK, GOLDEN_Y), r'targets must be class indices of shape \(T, B\) = \(4, 2\)'),
    (lambda: SF.ce_temporal_loss(inverse='log'), "inverse must be 'negate' or 'reciprocal'"),
    (lambda: SF.accuracy_rate(GOLDEN_SPK, torch.tensor([0, 5])), r'targets must be in \[0, 2\]'),
    (lambda: SF.accuracy_temporal(GOLDEN_SPK, torch.tensor([0])), r'shape \(B,\) = \(2,\)'),
    (lambda: SF.accuracy_rate(GOLDEN_SPK, GOLDEN_Y, population_code=True), 'num_classes must be given'),
    (lambda: quant.state_quant(num_bits=0), 'num_bits must be an integer >= 1'),
    (lambda: quant.state_quant(num_bits=2.5), 'num_bits must be an integer >= 1'),
    (lambda: quant.state_quant(threshold=0), 'threshold must be > 0'),
    (lambda: quant.state_quant(lower_limit=-3), 'do not give increasing levels'),
    (lambda: SF.OutputMonitor(None), 'net must be a torch.nn.Module'),
]

@pytest.mark.parametrize('call,match', BAD, ids=[m for _, m in BAD])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match): call()

# ---------------------------------------------------------------- accuracy and regulariser
@pytest.mark.parametrize('shape', SHAPES, ids=str)
def test_accuracy_matches_snntorch(shape):
    T, B, C = shape
    out, y = recording(T, B, C, seed=B), labels(B, C, seed=C)
    assert SF.accuracy_rate(out, y) == pytest.approx(float(RF.accuracy_rate(out, y)))
    assert SF.accuracy_temporal(out, y) == pytest.approx(float(RF.accuracy_temporal(out, y)))
    if C % 2 == 0:
        y2 = labels(B, 2, seed=C)
        assert SF.accuracy_rate(out, y2, True, 2) == pytest.approx(float(RF.accuracy_rate(out, y2, True, 2)))

def test_accuracy_type_matches_snntorch():
    "snnTorch's tutorial 6 calls `test_acc.item()`: a Python float has no .item(), snnTorch's numpy.float64 has."
    out, y = recording(5, 4, 3, seed=1), labels(4, 3, seed=2)
    for ours, theirs in ((SF.accuracy_rate(out, y), RF.accuracy_rate(out, y)),
                         (SF.accuracy_temporal(out, y), RF.accuracy_temporal(out, y))):
        assert type(ours) is type(theirs) and isinstance(ours, float)
        assert ours.item() == pytest.approx(theirs.item()) and type(ours.item()) is float
        assert f'{ours * 100:.2f}%' == f'{theirs * 100:.2f}%'

@pytest.mark.parametrize('Lambda', [1e-5, 0.3])
def test_l1_rate_sparsity_matches_snntorch(Lambda):
    out = recording(5, 3, 4, seed=0).requires_grad_()
    assert_close(SF.l1_rate_sparsity(Lambda)(out), RF.l1_rate_sparsity(Lambda)(out))

def test_namespace():
    import snnedu.functional.quant as q
    assert q.state_quant is quant.state_quant
    for name in ('ce_rate_loss', 'accuracy_rate', 'l1_rate_sparsity', 'OutputMonitor', 'unpack_len1_tuple', 'SpikeTime', 'LossFunctions'):
        assert hasattr(SF, name), name

# ---------------------------------------------------------------- quantisation
QUANT = [dict(), dict(num_bits=1), dict(num_bits=2), dict(num_bits=4, threshold=0.5), dict(num_bits=3, lower_limit=0.5, upper_limit=0.5),
         dict(num_bits=2, uniform=False), dict(num_bits=3, uniform=False), dict(num_bits=4, uniform=False),
         dict(num_bits=5, uniform=False, thr_centered=False), dict(num_bits=2, uniform=False, thr_centered=False),
         dict(num_bits=6, uniform=False, threshold=2.0), dict(num_bits=8, uniform=False), dict(num_bits=3, uniform=False, multiplier=0.6),
         dict(num_bits=1, uniform=False)]

@pytest.mark.parametrize('kw', QUANT, ids=str)
def test_state_quant_matches_snntorch(kw):
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(400, generator=g) * 1.5, torch.linspace(-2, 2, 101)])
    ours, theirs = quant.state_quant(**kw), rquant.state_quant(**kw)
    assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    xr = x.clone().requires_grad_(); (ours(xr) * torch.arange(len(x))).sum().backward()
    assert_close(xr.grad, torch.arange(len(x)).float())                              # straight through
    assert torch.unique(ours(x)).numel() <= 2 ** kw.get('num_bits', 8)

def test_state_quant_golden_levels():
    assert_close(quant.quant_levels(2, uniform=False), torch.tensor([-1, 0.8018, 0.982, 1.2], dtype=torch.float64), rtol=0, atol=1e-4)
    assert_close(quant.quant_levels(2, uniform=False, thr_centered=False), torch.tensor([-1, 0.0108, 0.1189, 1.2], dtype=torch.float64), rtol=0, atol=1e-4)

def test_state_quant_ties_dtype_pickle():
    q = quant.state_quant(num_bits=1, lower_limit=0, upper_limit=0)      # levels -1, 1
    assert q(torch.tensor([0.0, 0.5, -0.5])).tolist() == [-1.0, 1.0, -1.0]   # tie at 0 -> lower level
    assert q(torch.zeros(3, dtype=torch.float64)).dtype == torch.float64
    q2 = pickle.loads(pickle.dumps(quant.state_quant(num_bits=3)))
    x = torch.randn(10)
    assert_close(q2(x), quant.state_quant(num_bits=3)(x))

def test_state_quant_in_a_neuron_matches_snntorch():
    import snntorch
    import snnedu
    x = torch.rand(6, 2, 3) * 0.7
    ours = snnedu.Leaky(beta=0.8, state_quant=quant.state_quant(num_bits=4))
    theirs = snntorch.Leaky(beta=0.8, state_quant=rquant.state_quant(num_bits=4))
    mem = mem_ref = None
    for x_t in x:
        spk, mem = ours(x_t) if mem is None else ours(x_t, mem)
        spk_ref, mem_ref = theirs(x_t) if mem_ref is None else theirs(x_t, mem_ref)
        assert_close(mem, mem_ref); assert_close(spk, spk_ref)

# ---------------------------------------------------------------- monitors
def small_net():
    import snnedu
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), snnedu.Leaky(beta=0.9, init_hidden=True), nn.Linear(4, 2), snnedu.Leaky(beta=0.9, init_hidden=True))

def test_monitors_record_like_snntorch_monitors():
    import snnedu
    net = small_net()
    mon, ref_mon = SF.OutputMonitor(net, instance=nn.Linear), RF.probe.OutputMonitor(net, instance=nn.Linear)
    inp, ref_inp = SF.InputMonitor(net, instance=nn.Linear), RF.probe.InputMonitor(net, instance=nn.Linear)
    x = torch.rand(2, 3)
    net(x); net(x)
    assert mon.monitored_layers == ref_mon.monitored_layers == ['0', '2']
    assert mon.name_records_index == ref_mon.name_records_index
    for a, b in zip(mon.records + inp.records, ref_mon.records + ref_inp.records): assert_close(a, b)
    mem = SF.AttributeMonitor('mem', False, net, instance=snnedu.Leaky)
    net(x)
    assert_close(mem['3'][0], net[3].mem)

def test_monitor_defaults_fixed():
    net = small_net()
    for cls in (SF.GradInputMonitor, SF.GradOutputMonitor):
        m = cls(net)                                              # snnTorch: TypeError from isinstance(m, None)
        assert m.monitored_layers == ['']
    pre = SF.AttributeMonitor('weight', True, net, instance=nn.Linear)   # snnTorch: TypeError at the next forward
    net(torch.rand(2, 3))
    assert len(pre.records) == 2
    grads = SF.GradInputMonitor(net, instance=nn.Linear, function_on_grad_input=lambda g: g.norm().item())
    net(torch.rand(2, 3).requires_grad_()).sum().backward()
    assert len(grads.records) == 2 and all(isinstance(r, float) for r in grads.records)

def test_monitor_enable_clear_remove():
    net = small_net()
    m = SF.OutputMonitor(net, instance=nn.Linear)
    net(torch.rand(1, 3)); m.disable(); net(torch.rand(1, 3))
    assert len(m.records) == 2 and not m.is_enable()
    m.enable(); m.clear_recorded_data()
    assert m.records == [] and m['0'] == []
    m.remove_hooks(); net(torch.rand(1, 3))
    assert m.records == []
    with pytest.raises(ValueError, match='index a monitor'): m[1.5]
    assert SF.unpack_len1_tuple((1,)) == 1 and SF.unpack_len1_tuple((1, 2)) == (1, 2)

# ---------------------------------------------------------------- property tests (hypothesis)
from hypothesis import given, settings, strategies as st  # noqa: E402

@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 12), B=st.integers(1, 4), C=st.integers(1, 5), p=st.floats(0, 1), seed=st.integers(0, 1000))
def test_first_spike_time_property(T, B, C, p, seed):
    spk = recording(T, B, C, seed, p=p)
    t = SF.SpikeTime.FirstSpike.apply(spk)
    for b in range(B):
        for c in range(C):
            fired = spk[:, b, c].nonzero().flatten().tolist()
            assert t[b, c] == (fired[0] if fired else T - 1)
    assert_close(t, RF.SpikeTime.FirstSpike.apply(spk.clone()))

# ---------------------------------------------------------------- device (runs where CUDA is available)
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_everything_stays_on_the_device():
    from snnedu import spikegen
    dev = torch.device('cuda')
    spk, y = GOLDEN_SPK.to(dev).requires_grad_(), GOLDEN_Y.to(dev)
    w = torch.tensor([1.0, 2.0, 3.0])                                         # a CPU weight is moved along
    for fn in (SF.ce_rate_loss(weight=w), SF.ce_count_loss(), SF.ce_max_membrane_loss(), SF.mse_count_loss(weight=w),
               SF.mse_membrane_loss(), SF.mse_temporal_loss(weight=w), SF.ce_temporal_loss(),
               SF.mse_temporal_loss(on_target=[0, 1], off_target=[-2, -1], multi_spike=True)):
        loss = fn(spk, y)
        assert loss.device.type == 'cuda', fn.__name__
        assert_close(loss.cpu(), fn(GOLDEN_SPK, GOLDEN_Y))
        loss.backward()
    assert SF.accuracy_rate(spk, y) == 1.0 and SF.accuracy_temporal(spk, y) == 0.5
    assert quant.state_quant(num_bits=3, uniform=False)(spk).device.type == 'cuda'
    assert spikegen.targets_rate(y, 3, num_steps=4, correct_rate=0.5).device.type == 'cuda'
    assert spikegen.latency(torch.rand(5, device=dev), num_steps=4, normalize=True, interpolate=True).device.type == 'cuda'
    assert spikegen.rate(torch.rand(5, device=dev), num_steps=3).device.type == 'cuda'
