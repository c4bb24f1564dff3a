"""snnedu.widgets: the explorers' callbacks, driven programmatically, follow snnedu's neurons and encoders.

Setting a control's `.value` is exactly what moving the slider does in a browser (the frontend syncs the
trait), so these tests exercise the live path without a browser. Headless (conftest sets MPLBACKEND=Agg).
"""
import base64
import io
import sys

import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from snnedu import Leaky, Synaptic, spikegen
from snnedu.widgets import EncoderExplorer, NeuronExplorer, SHAPES, input_current, simulate_neuron


def run_neuron(neuron, cur, n_states):
    "A plain loop over a neuron with explicit state: the reference the explorer must reproduce."
    state, spk_rec, mem_rec = [torch.zeros(1)] * n_states, [], []
    for x in cur.reshape(-1, 1):
        spk, *state = neuron(x, *state)
        spk_rec.append(spk), mem_rec.append(state[-1])
    return torch.cat(spk_rec), torch.cat(mem_rec)


def png_size(data):
    with Image.open(io.BytesIO(data)) as im: return im.size


# ---------------------------------------------------------------- input_current
def test_input_current_shapes():
    a = 0.4
    step, pulse = input_current("step", a, 50, onset=10), input_current("pulse", a, 50, onset=10, width=5)
    assert step.shape == (50,) and (step[:10] == 0).all() and (step[10:] == a).all()
    assert torch.nonzero(pulse).flatten().tolist() == list(range(10, 15)) and (pulse[10:15] == a).all()
    sine = input_current("sine", a, 81, period=40)
    assert sine[0] == 0 and sine.min() >= 0 and sine.max() <= a + 1e-6
    assert_close(sine[20], torch.tensor(a))                           # peak at half a period
    noise = input_current("noise", a, 2000, seed=1)
    assert_close(noise, input_current("noise", a, 2000, seed=1))
    assert not torch.equal(noise, input_current("noise", a, 2000, seed=2))
    assert noise.min() >= 0 and noise.max() < 2 * a and abs(noise.mean().item() - a) < 0.03


def test_input_current_bad_shape():
    with pytest.raises(ValueError, match=r"shape must be one of \('step', 'pulse', 'sine', 'noise'\), got 'ramp'"):
        input_current("ramp")


# ---------------------------------------------------------------- simulate_neuron
@pytest.mark.parametrize("reset_mechanism", ["subtract", "zero", "none"])
@pytest.mark.parametrize("shape", SHAPES)
def test_simulate_leaky_matches_direct_neuron_and_snntorch(reset_mechanism, shape):
    import snntorch
    cur = input_current(shape, 0.35, 60)
    rec = simulate_neuron(cur, beta=0.8, threshold=0.9, reset_mechanism=reset_mechanism)
    spk, mem = run_neuron(Leaky(beta=0.8, threshold=0.9, reset_mechanism=reset_mechanism), cur, 1)
    assert_close(rec["spk"], spk)
    assert_close(rec["mem"], mem)
    ref_spk, ref_mem = run_neuron(snntorch.Leaky(beta=0.8, threshold=0.9, reset_mechanism=reset_mechanism), cur, 1)
    assert_close(rec["mem"], ref_mem)
    assert_close(rec["spk"], ref_spk)


@pytest.mark.parametrize("reset_mechanism", ["subtract", "zero"])
def test_simulate_synaptic_matches_direct_neuron(reset_mechanism):
    cur = input_current("pulse", 0.2, 60)
    rec = simulate_neuron(cur, beta=0.7, threshold=1.0, reset_mechanism=reset_mechanism, alpha=0.85)
    neuron = Synaptic(alpha=0.85, beta=0.7, threshold=1.0, reset_mechanism=reset_mechanism)
    state, syn_rec, mem_rec = [torch.zeros(1), torch.zeros(1)], [], []
    for x in cur.reshape(-1, 1):
        _, *state = neuron(x, *state)
        syn_rec.append(state[0]), mem_rec.append(state[1])
    assert_close(rec["syn"], torch.cat(syn_rec))
    assert_close(rec["mem"], torch.cat(mem_rec))
    assert rec["spk"].sum() > 0


# ---------------------------------------------------------------- NeuronExplorer
@pytest.fixture
def explorer(): return NeuronExplorer(num_steps=60, beta=0.9, amplitude=0.3)


def test_neuron_explorer_controls(explorer):
    assert set(explorer.controls) == {"beta", "threshold", "amplitude", "shape", "reset_mechanism"}
    assert explorer.controls["beta"].value == 0.9 and explorer.controls["shape"].options == SHAPES
    assert explorer.cur.shape == explorer.mem.shape == explorer.spk.shape == (60,) and explorer.syn is None


@pytest.mark.parametrize("name, value", [("beta", 0.55), ("threshold", 0.4), ("amplitude", 0.8), ("shape", "sine"),
                                         ("shape", "noise"), ("reset_mechanism", "zero"), ("reset_mechanism", "none")])
def test_moving_a_control_recomputes_as_the_neuron_says(explorer, name, value):
    before = explorer.mem.clone()
    explorer.controls[name].value = value
    v = explorer.values
    assert v[name] == value
    cur = input_current(v["shape"], v["amplitude"], 60)
    spk, mem = run_neuron(Leaky(beta=v["beta"], threshold=v["threshold"], reset_mechanism=v["reset_mechanism"]), cur, 1)
    assert_close(explorer.cur, cur)
    assert_close(explorer.mem, mem)
    assert_close(explorer.spk, spk)
    assert not torch.equal(before, explorer.mem)


def test_beta_slider_follows_the_closed_form(explorer):
    explorer.controls["threshold"].value = 2.0
    explorer.controls["beta"].value = 0.5                       # steady state 0.3 / 0.5 = 0.6 < 2: no spike
    t = torch.arange(10, 60, dtype=torch.float32)
    assert_close(explorer.mem[10:], 0.3 * (1 - 0.5 ** (t - 9)) / 0.5)
    assert explorer.spk.sum() == 0 and (explorer.mem[:10] == 0).all()


def test_redraw_plots_the_stored_data(explorer):
    explorer.controls["amplitude"].value = 0.5
    ax_in, ax_mem, ax_spk = explorer.fig.axes
    assert_close(torch.tensor(ax_in.lines[0].get_ydata(), dtype=torch.float32), explorer.cur)
    assert_close(torch.tensor(ax_mem.lines[0].get_ydata(), dtype=torch.float32), explorer.mem)
    assert list(ax_mem.lines[1].get_ydata()) == [1.0, 1.0]       # threshold line
    assert len(ax_spk.collections[0].get_offsets()) == int(explorer.spk.sum()) > 0
    assert f"{int(explorer.spk.sum())} spikes" in ax_in.get_title()


def test_picture_widget_refreshes(explorer):
    first = explorer.picture.value
    assert png_size(first)[0] > 100
    explorer.controls["shape"].value = "pulse"
    assert explorer.picture.value != first and png_size(explorer.picture.value)[0] > 100


def test_synaptic_explorer_alpha_slider():
    ex = NeuronExplorer("synaptic", num_steps=50, amplitude=0.2)
    assert "alpha" in ex.controls
    ex.controls["alpha"].value = 0.6
    v = ex.values
    rec = simulate_neuron(input_current(v["shape"], v["amplitude"], 50), v["beta"], v["threshold"], v["reset_mechanism"], alpha=0.6)
    assert_close(ex.syn, rec["syn"])
    assert_close(ex.mem, rec["mem"])
    assert_close(torch.tensor(ex.fig.axes[0].lines[1].get_ydata(), dtype=torch.float32), ex.syn)


def test_display_bundle_widget_and_static_fallback(explorer):
    bundle = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    assert explorer.widget.children[1] is explorer.picture
    w, h = png_size(base64.b64decode(bundle["image/png"]))
    assert w > 100 and h > 100
    assert "Static picture" in bundle["text/plain"] and "NeuronExplorer(beta=0.9" in bundle["text/plain"]


def test_without_ipywidgets_shows_a_static_plot(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)            # import ipywidgets -> ImportError
    ex = NeuronExplorer(num_steps=40, beta=0.6, reset_mechanism="zero")
    assert ex.controls == {} and ex.widget is None and ex.picture is None
    assert ex.values["beta"] == 0.6
    spk, mem = run_neuron(Leaky(beta=0.6, reset_mechanism="zero"), input_current("step", 0.3, 40), 1)
    assert_close(ex.mem, mem)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in bundle and "image/png" in bundle
    assert "pip install ipywidgets" in bundle["text/plain"]


@pytest.mark.parametrize("kwargs, err, msg", [
    (dict(neuron="izhikevich"), ValueError, "neuron must be 'leaky' or 'synaptic'"),
    (dict(num_steps=1), ValueError, "num_steps must be an int >= 2"),
    (dict(beta=1.5), ValueError, r"beta must be a number in \[0.0, 1.0\], got 1.5"),
    (dict(shape="square"), ValueError, "shape must be"),
    (dict(alpha=0.5), TypeError, "unknown parameter 'alpha'"),
    (dict(reset_mechanism=True), ValueError, "reset_mechanism must be"),
])
def test_neuron_explorer_bad_input(kwargs, err, msg):
    with pytest.raises(err, match=msg):
        NeuronExplorer(**kwargs)


# ---------------------------------------------------------------- EncoderExplorer
@pytest.fixture
def enc(): return EncoderExplorer(image=torch.rand(5, 6, generator=torch.Generator().manual_seed(0)))


def test_encoder_rate_gain_and_steps(enc):
    enc.controls["num_steps"].value = 12
    enc.controls["gain"].value = 0.5
    with torch.random.fork_rng():
        torch.manual_seed(0)
        want = spikegen.rate(enc.image, num_steps=12, gain=0.5)
    assert enc.spk.shape == (12, 5, 6)
    assert_close(enc.spk, want)
    raster = enc.fig.axes[1].collections[0]
    assert len(raster.get_offsets()) == int(want.sum())


def test_encoder_rate_leaves_global_rng_alone(enc):
    torch.manual_seed(123)
    a = torch.rand(3)
    torch.manual_seed(123)
    enc.controls["gain"].value = 0.7
    assert_close(torch.rand(3), a)


@pytest.mark.parametrize("linear", [False, True])
def test_encoder_latency(enc, linear):
    enc.controls["encoder"].value = "latency"
    enc.controls["linear"].value = linear
    enc.controls["tau"].value = 3.0
    want = spikegen.latency(enc.image, num_steps=25, tau=3.0, threshold=0.1, linear=linear, normalize=True)
    assert_close(enc.spk, want)
    assert (enc.spk.sum(0) == 1).all()                              # one spike per pixel
    assert {n for n, w in enc.controls.items() if w.disabled} == {"gain", "off_spike"}


@pytest.mark.parametrize("off_spike", [True, False])
def test_encoder_delta(enc, off_spike):
    enc.controls["encoder"].value = "delta"
    enc.controls["off_spike"].value = off_spike
    enc.controls["threshold"].value = 0.05
    assert_close(enc.spk, spikegen.delta(enc.signal, threshold=0.05, off_spike=off_spike))
    assert enc.data is enc.signal
    on_off = enc.fig.axes[1].collections
    assert len(on_off) == (2 if off_spike else 1)
    assert len(on_off[0].get_offsets()) == int((enc.spk > 0).sum())
    assert {n for n, w in enc.controls.items() if w.disabled} == {"num_steps", "gain", "tau", "linear"}


def test_encoder_custom_signal_and_bundle():
    sig = torch.tensor([0.0, 0.3, 0.3, 0.0])
    ex = EncoderExplorer(signal=sig, encoder="delta", threshold=0.2)
    assert ex.spk.tolist() == [0.0, 1.0, 0.0, -1.0]
    assert "image/png" in ex._repr_mimebundle_()


@pytest.mark.parametrize("kwargs, msg", [
    (dict(image=torch.rand(2, 3, 3)), r"image must be \(H, W\) or \(N,\)"),
    (dict(image=torch.full((3, 3), 2.0)), "values in \\[0, 1\\]"),
    (dict(signal=torch.zeros(3, 3)), r"signal must be 1-D \(T,\), got shape \(3, 3\)"),
    (dict(encoder="burst"), "encoder must be"),
    (dict(num_steps=500), r"num_steps must be a number in \[2, 100\]"),
])
def test_encoder_explorer_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        EncoderExplorer(**kwargs)
