"""snnedu.spikeplot draws what it claims: marker coordinates, bar lengths, frame counts, GIF frames.

Headless (conftest sets MPLBACKEND=Agg). snnTorch 1.0.0's spikeplot is the oracle for the compatible
functions (raster, spike_count, traces, animator).
"""
import re
import subprocess
import sys

import celluloid
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.animation import ArtistAnimation, PillowWriter
from PIL import Image
from torch.testing import assert_close

import snnedu.spikeplot as splt
from snnedu import spikegen, surrogate

# Tests read frames without rendering them; matplotlib warns about that when the animation is collected.
pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering anything:UserWarning")


@pytest.fixture
def fig_ax():
    fig, ax = plt.subplots()
    yield fig, ax
    plt.close("all")


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    "No plotting function may call plt.show()."
    def fail(*a, **k): raise AssertionError("plt.show() was called")
    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")


def frames(anim): return len(list(anim.new_frame_seq()))


def offsets(collection): return sorted(map(tuple, np.asarray(collection.get_offsets()).tolist()))


def known_spikes():
    spk = torch.zeros(6, 4)
    spk[0, 1] = spk[2, 3] = spk[2, 0] = spk[5, 1] = 1
    return spk


# ---------------------------------------------------------------- import hygiene
def test_import_snnedu_does_not_import_matplotlib():
    code = "import sys, snnedu; assert 'matplotlib' not in sys.modules and 'celluloid' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_camera_is_celluloids():
    assert splt.Camera is celluloid.Camera


def test_snn_spikeplot_lazy_attribute():
    import snnedu as snn
    assert snn.spikeplot.raster is splt.raster


# ---------------------------------------------------------------- raster
def test_raster_puts_one_marker_per_spike_at_t_n(fig_ax):
    _, ax = fig_ax
    dots = splt.raster(known_spikes(), ax, s=3, c="black")
    assert offsets(dots) == sorted([(0.0, 1.0), (2.0, 3.0), (2.0, 0.0), (5.0, 1.0)])
    assert dots.get_sizes().tolist() == [3.0]


@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (30, 5), (5, 30)])
def test_raster_random_matches_nonzero_and_snntorch(fig_ax, shape):
    import snntorch.spikeplot as ref
    _, ax = fig_ax
    g = torch.Generator().manual_seed(sum(shape))
    spk = (torch.rand(shape, generator=g) < 0.3).float()
    ours, theirs = splt.raster(spk, ax), ref.raster(spk, ax)
    assert len(ours.get_offsets()) == int(spk.sum())
    assert offsets(ours) == offsets(theirs)


def test_raster_1d_is_one_neuron_and_accepts_numpy_and_graph_tensors(fig_ax):
    _, ax = fig_ax
    spk = torch.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
    assert offsets(splt.raster(spk, ax)) == [(1.0, 0.0), (3.0, 0.0)]
    assert offsets(splt.raster(np.array([[0, 1], [1, 0]]), ax)) == [(0.0, 1.0), (1.0, 0.0)]


def test_raster_empty_and_graded(fig_ax):
    _, ax = fig_ax
    assert len(splt.raster(torch.zeros(10, 3), ax).get_offsets()) == 0
    assert offsets(splt.raster(torch.tensor([[0.0, 0.5], [2.0, 0.0]]), ax)) == [(0.0, 1.0), (1.0, 0.0)]


@pytest.mark.parametrize("bad", [torch.tensor(1.0), torch.zeros(3, 2, 2), torch.zeros(2, 2, 2, 2)])
def test_raster_rejects_wrong_dimensionality(fig_ax, bad):
    with pytest.raises(ValueError, match=r"raster: data must have shape \(T, N\) or \(T,\)"):
        splt.raster(bad, fig_ax[1])


def test_raster_rejects_non_numbers(fig_ax):
    with pytest.raises(TypeError, match="data must be a tensor or an array of numbers, got str"):
        splt.raster("0101", fig_ax[1])


# ---------------------------------------------------------------- spike_count
def dots_x(ax): return ax.lines[0].get_xdata()


@pytest.mark.parametrize("num_steps", [False, 3, 9])
def test_spike_count_static_counts_match_snntorch(num_steps):
    import snntorch.spikeplot as ref
    spk = known_spikes()
    labels = list("abcd")
    fig, ax = plt.subplots()
    old = dict(plt.rcParams)
    assert splt.spike_count(spk, fig, ax, labels, num_steps=num_steps) is ax
    steps = num_steps or 6
    assert_close(torch.tensor(dots_x(ax)), spk[:steps].sum(0).double())
    assert ax.get_xlim() == (0.0, float(steps))
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert dict(plt.rcParams) == old                                  # no global restyling
    fig2, ax2 = plt.subplots()
    ref.spike_count(spk, fig2, ax2, labels, num_steps=num_steps)
    plt.rcParams.update(old)                                          # the reference mutates them
    assert_close(torch.tensor(dots_x(ax)), torch.tensor(np.asarray(ax2.lines[0].get_xdata(), dtype=float)))


def test_spike_count_bars_reach_the_counts(fig_ax):
    fig, ax = fig_ax
    spk = known_spikes()
    splt.spike_count(spk, fig, ax, list("abcd"), gridshader=False)
    segs = ax.collections[0].get_segments()
    assert [(s[0][0], s[1][0], s[0][1]) for s in segs] == [(0, 1, 1), (0, 2, 2), (0, 0, 3), (0, 1, 4)]
    assert len(ax.patches) == 0                                       # no shading without gridshader


def test_spike_count_gridshader_and_time_step(fig_ax):
    fig, ax = fig_ax
    splt.spike_count(torch.ones(20, 2), fig, ax, ["x", "y"], time_step=1e-3)
    assert len(ax.patches) >= 1
    assert ax.get_xlabel() == "Time [s]"
    assert ax.xaxis.get_major_formatter()(10, 0) == "0.01"


def test_spike_count_labels_mismatch(fig_ax):
    fig, ax = fig_ax
    with pytest.raises(ValueError, match="labels has 3 names but data has 4 classes"):
        splt.spike_count(known_spikes(), fig, ax, ["a", "b", "c"])
    with pytest.raises(TypeError, match="labels must be a list of class names, got NoneType"):
        splt.spike_count(known_spikes(), fig, ax, None)


@pytest.mark.parametrize("interpolate", [0, 1.5, True])
def test_spike_count_bad_interpolate(fig_ax, interpolate):
    fig, ax = fig_ax
    with pytest.raises(ValueError, match="interpolate must be an int >= 1"):
        splt.spike_count(known_spikes(), fig, ax, list("abcd"), animate=True, interpolate=interpolate)


@pytest.mark.parametrize("num_steps", ["3", -1, 2.5])
def test_spike_count_bad_num_steps(fig_ax, num_steps):
    fig, ax = fig_ax
    with pytest.raises(TypeError, match="num_steps must be a positive int"):
        splt.spike_count(known_spikes(), fig, ax, list("abcd"), num_steps=num_steps)


@pytest.mark.parametrize("interpolate", [1, 3])
def test_spike_count_animation_frames_and_gif(fig_ax, tmp_path, interpolate):
    fig, ax = fig_ax
    spk = known_spikes()
    anim = splt.spike_count(spk, fig, ax, list("abcd"), animate=True, interpolate=interpolate, interval=20)
    assert isinstance(anim, ArtistAnimation)
    assert frames(anim) == 6 * interpolate
    # frame i counts the spikes strictly before step i // interpolate, and its cursor sits at i / interpolate
    for i, artists in enumerate(anim.new_frame_seq()):
        dots = [a for a in artists if isinstance(a, matplotlib.lines.Line2D) and a.get_marker() == "o"]
        cursor = [a for a in artists if isinstance(a, matplotlib.lines.Line2D) and a.get_marker() != "o"]
        assert_close(torch.tensor(np.asarray(dots[0].get_xdata(), dtype=float)), spk[: i // interpolate].sum(0).double())
        assert cursor[0].get_xdata()[0] == pytest.approx(i / interpolate)
    if interpolate == 1:                                              # GIF writing is the slow part: once
        path = tmp_path / "count.gif"
        anim.save(path, writer=PillowWriter(fps=20))
        with Image.open(path) as im: assert im.n_frames == 6


# ---------------------------------------------------------------- traces
def test_traces_panels_values_and_titles_match_snntorch():
    import snntorch.spikeplot as ref
    g = torch.Generator().manual_seed(1)
    mem, spk = torch.rand(15, 10, generator=g), (torch.rand(15, 10, generator=g) < 0.2).float()
    fig = plt.figure()
    axes = splt.traces(mem, spk=spk, dim=(2, 3), spk_height=2, titles=list("abcd"))
    assert axes.shape == (2, 3) and len(fig.axes) == 6                # the first 6 of 10 neurons
    for i, ax in enumerate(axes.flat):
        assert_close(torch.tensor(ax.lines[0].get_ydata()), (mem + 2 * spk)[:, i].double())
        assert ax.get_title() == ("abcd"[i] if i < 4 else "")
        assert not ax.axison
    assert axes[1, 2].get_shared_y_axes().joined(axes[0, 0], axes[1, 2])
    fig2 = plt.figure()
    ref.traces(mem, spk=spk, dim=(2, 3), spk_height=2)
    for ours, theirs in zip(axes.flat, fig2.axes):
        assert_close(torch.tensor(ours.lines[0].get_ydata()), torch.tensor(theirs.lines[0].get_ydata(), dtype=torch.float64))


def test_traces_draws_on_the_current_figure():
    first = plt.figure()
    current = plt.figure()
    splt.traces(torch.rand(5, 4), dim=(2, 2))
    assert len(current.axes) == 4 and len(first.axes) == 0


def test_traces_dim_too_large():
    with pytest.raises(ValueError, match=r"dim=\(3, 3\) makes 9 panels but data has only 4 neurons"):
        splt.traces(torch.rand(10, 4))


@pytest.mark.parametrize("dim", [(3,), (0, 2), (2.0, 2), "33", (True, 1)])
def test_traces_bad_dim(dim):
    with pytest.raises(TypeError, match="dim must be"):
        splt.traces(torch.rand(10, 9), dim=dim)


def test_traces_spk_shape_mismatch():
    with pytest.raises(ValueError, match=r"spk has shape \(10, 8\) but data has \(10, 9\)"):
        splt.traces(torch.rand(10, 9), spk=torch.zeros(10, 8))


# ---------------------------------------------------------------- animator
def clip(T=7):
    x = torch.zeros(T, 4, 5)
    for t in range(T): x[t, t % 4, t % 5] = 1.0 + t          # a different frame each step
    return x


@pytest.mark.parametrize("num_steps", [False, 4])
def test_animator_frames_images_and_gif(fig_ax, tmp_path, num_steps):
    fig, ax = fig_ax
    data = clip()
    anim = splt.animator(data, fig, ax, num_steps=num_steps, interval=30)
    T = num_steps or 7
    assert frames(anim) == T
    for t, artists in enumerate(anim.new_frame_seq()):
        (im,) = artists
        assert_close(torch.tensor(np.asarray(im.get_array())), data[t].double())
        assert im.get_clim() == (0.0, 7.0)                               # fixed over the whole clip
    assert not ax.axison
    path = tmp_path / "clip.gif"
    anim.save(path, writer=PillowWriter(fps=10))
    with Image.open(path) as im: assert im.n_frames == T


def test_animator_jshtml_inline(fig_ax):
    fig, ax = fig_ax
    html = splt.animator(clip(3), fig, ax).to_jshtml()                 # what rcParams animation.html = jshtml shows
    assert re.findall(r'frames\[(\d+)\] = "data:image/png;base64', html) == ["0", "1", "2"]


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")  # the reference imshows tensors
def test_animator_matches_snntorch_frames(fig_ax):
    import snntorch.spikeplot as ref
    fig, ax = fig_ax
    data = clip(5)
    ours = [np.asarray(a[0].get_array()) for a in splt.animator(data, fig, ax).new_frame_seq()]
    fig2, ax2 = plt.subplots()
    theirs = [np.asarray(a[0].get_array()) for a in ref.animator(data, fig2, ax2).new_frame_seq()]
    assert len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs))


@pytest.mark.parametrize("bad", [torch.zeros(4, 4), torch.zeros(3, 1, 4, 4)])
def test_animator_rejects_wrong_dimensionality(fig_ax, bad):
    with pytest.raises(ValueError, match=r"animator: data must have shape \(T, H, W\)"):
        splt.animator(bad, *fig_ax)


def test_animator_num_steps_beyond_clip(fig_ax):
    with pytest.raises(ValueError, match="num_steps=9 but data has only 7 steps"):
        splt.animator(clip(), *fig_ax, num_steps=9)


# ---------------------------------------------------------------- mem_trace
def test_mem_trace_lines_threshold_and_spike_markers():
    mem = torch.tensor([[0.5, 0.2], [1.2, 0.4], [0.3, 1.5], [0.9, 0.1]], dtype=torch.float64)
    spk = (mem > 1.0).float()
    ax = splt.mem_trace(mem, spk, threshold=1.0, labels=["a", "b"])
    assert len(ax.lines) == 3                                           # two traces + threshold
    assert_close(torch.tensor(ax.lines[1].get_ydata()), mem[:, 1])
    assert list(ax.lines[2].get_ydata()) == [1.0, 1.0]
    assert offsets(ax.collections[0]) == [(1.0, 1.2), (2.0, 1.5)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "threshold θ", "spike"]


def test_mem_trace_with_snnedu_leaky_spikes_sit_above_threshold(fig_ax):
    from snnedu import Leaky
    lif = Leaky(beta=0.8, threshold=0.7)
    mem, mem_rec, spk_rec = torch.zeros(1), [], []
    for _ in range(30):
        spk, mem = lif(torch.tensor([0.3]), mem)
        mem_rec.append(mem), spk_rec.append(spk)
    mem_rec, spk_rec = torch.cat(mem_rec), torch.cat(spk_rec)
    ax = splt.mem_trace(mem_rec, spk_rec, threshold=0.7, ax=fig_ax[1])
    assert ax is fig_ax[1]
    pts = np.asarray(ax.collections[0].get_offsets())
    assert len(pts) == int(spk_rec.sum()) > 0 and (pts[:, 1] > 0.7).all()


def test_mem_trace_no_threshold_no_spikes(fig_ax):
    ax = splt.mem_trace(torch.rand(10), threshold=None, ax=fig_ax[1])
    assert len(ax.lines) == 1 and len(ax.collections) == 0


def test_mem_trace_bad_input(fig_ax):
    with pytest.raises(ValueError, match="labels has 1 names but mem has 2 neurons"):
        splt.mem_trace(torch.rand(5, 2), labels=["x"], ax=fig_ax[1])
    with pytest.raises(ValueError, match=r"spk has shape \(5, 1\) but mem has \(5, 2\)"):
        splt.mem_trace(torch.rand(5, 2), torch.zeros(5, 1), ax=fig_ax[1])
    with pytest.raises(ValueError, match=r"mem_trace: mem must have shape \(T, N\) or \(T,\)"):
        splt.mem_trace(torch.rand(5, 2, 2), ax=fig_ax[1])


# ---------------------------------------------------------------- surrogate_plot
@pytest.mark.parametrize("slope", [5, 25])
def test_surrogate_plot_draws_heaviside_and_exact_derivative(fig_ax, slope):
    ax = splt.surrogate_plot(surrogate.fast_sigmoid(slope=slope), ax=fig_ax[1], xlim=(-1, 1), num=101)
    fwd, bwd = ax.lines
    x = torch.tensor(fwd.get_xdata())
    assert len(x) == 101 and x[0] == -1 and x[-1] == 1
    assert_close(torch.tensor(fwd.get_ydata()), (x > 0).float())
    assert_close(torch.tensor(bwd.get_ydata()), 1 / (slope * x.abs() + 1) ** 2)
    assert ax.get_title() == f"fast_sigmoid(slope={slope})"


def test_surrogate_plot_bad_input(fig_ax):
    with pytest.raises(TypeError, match="spike_fn must be callable"):
        splt.surrogate_plot(0.5, ax=fig_ax[1])
    with pytest.raises(ValueError, match="gives no gradient"):
        splt.surrogate_plot(surrogate.heaviside_step, ax=fig_ax[1])


# ---------------------------------------------------------------- encoding_plot
def test_encoding_plot_features_rate_image():
    torch.manual_seed(0)
    img = torch.rand(4, 5)
    spk = spikegen.rate(img, num_steps=12)                              # (T, H, W)
    ax_in, ax_spk = splt.encoding_plot(img, spk)
    assert ax_in.get_shared_y_axes().joined(ax_in, ax_spk)
    on = ax_spk.collections[0]
    assert offsets(on) == sorted((float(t), float(n)) for t, n in zip(*np.nonzero(spk.reshape(12, -1).numpy())))
    assert len(ax_spk.collections) == 1                                 # no off spikes


def test_encoding_plot_latency_one_spike_per_feature(fig_ax):
    feat = torch.tensor([0.1, 0.5, 0.9])
    spk = spikegen.latency(feat, num_steps=10, normalize=True, linear=True)
    fig, axes = plt.subplots(1, 2)
    ax_in, ax_spk = splt.encoding_plot(feat, spk, axes=axes)
    pts = offsets(ax_spk.collections[0])
    assert len(pts) == 3 and sorted(p[1] for p in pts) == [0.0, 1.0, 2.0]
    t_of = {n: t for t, n in pts}
    assert t_of[2.0] < t_of[1.0] < t_of[0.0]                            # brighter fires earlier


def test_encoding_plot_signal_with_delta_off_spikes():
    sig = torch.tensor([0.0, 0.5, 0.5, 0.1, 0.1, 0.9])
    spk = spikegen.delta(sig, threshold=0.2, off_spike=True)
    ax_in, ax_spk = splt.encoding_plot(sig, spk)
    assert_close(torch.tensor(ax_in.lines[0].get_ydata()), sig.double())
    on, off = ax_spk.collections
    assert offsets(on) == [(float(t), 0.0) for t in torch.nonzero(spk > 0).flatten().tolist()]
    assert offsets(off) == [(float(t), 0.0) for t in torch.nonzero(spk < 0).flatten().tolist()]
    assert len(off.get_offsets()) >= 1


def test_encoding_plot_shape_mismatch():
    with pytest.raises(ValueError, match=r"spk must have data's shape \(3, 3\)"):
        splt.encoding_plot(torch.rand(3, 3), torch.zeros(5, 2, 3))
