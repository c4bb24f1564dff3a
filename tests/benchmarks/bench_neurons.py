"""Side-by-side speed and memory of snnedu's time loops against snnTorch 1.0.0 and SpikingJelly.

Not a test: pytest collects only `test_*.py`, so `python -m pytest tests/` never imports this file.
Run it from the repository root, on an otherwise idle machine (it prints the load it started under):

    python tests/benchmarks/bench_neurons.py                 # full run, 1 and 2 threads (~5 min)
    python tests/benchmarks/bench_neurons.py --rounds 3      # quicker, noisier
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295 python tests/benchmarks/bench_neurons.py
    THP_MEM_ALLOC_ENABLE=1 python tests/benchmarks/bench_neurons.py   # PyTorch's 2 MiB pages for every peer

The allocator setting matters on these VMs (a fresh 52 MB tensor costs tens of ms of page faults), so the
header prints it. THP_MEM_ALLOC_ENABLE=1 gives every implementation PyTorch's 2 MiB pages alike (snnedu asks for
no huge pages of its own: the madvise hint made its times unsteady on a machine with fragmented memory).

Every implementation runs in the same process, interleaved round by round (so a burst of load
hits all of them), after warm-up, with the memory first put in a used state (`--used-gib`: tensors of random
sizes allocated, touched, half of them kept alive), as on a machine that has been working a while. The table
shows min, median and max over the rounds, the spread max/median, ratios of medians, and the minor page
faults per call (fresh memory touched, 4 KiB each). Cases:

* one LIF layer (beta=0.9, threshold=1, arctan surrogate, subtract reset), B=128, N=1024,
  T in {25, 100}: forward only (under `torch.no_grad()`) and forward+backward of `spk.sum()`
  with the input requiring grad (as it does inside a network). snnedu's fused path returns the spikes only
  (`record=False`, as inside a network; the peers keep no membrane sequence either), once with its numba
  kernels ("numba", the default where numba is installed) and once forced to PyTorch ("torch",
  `snnedu.neurons.scan.use_numba = False`);
* peak memory of that forward+backward at T=100, each implementation in a fresh process
  (peak RSS minus RSS before the run, read from /proc/self/status after resetting the peak);
* the seed README's conv net (Conv2d(1,8,5)-MaxPool2d(2)-Leaky-Conv2d(8,16,5)-MaxPool2d(2)-Leaky-Flatten
  -Linear(256,10)-Leaky(output=True), the rest as below), the issue's workload: forward only (no_grad) and
  the training step;
* a WIDE variant, snnTorch's quickstart conv net (Conv2d(1,12,5)-MaxPool2d(2)-Leaky-Conv2d(12,64,5)-MaxPool2d(2)
  -Leaky-Flatten-Linear(1024,10)-Leaky(output=True), beta=0.5, fast_sigmoid(25)), T=25, B=128,
  a static image fed at every step, rate cross-entropy loss, one Adam step (SpikingJelly has no fast
  sigmoid surrogate: its rows use its Sigmoid; its input is the image repeated along time, as its tutorials do).

Rows named "floor: ..." are not implementations but what bounds one: reading the input and writing the
spikes (and, with backward, the input gradient) once, into fresh buffers as any implementation must return
(their page faults included) and into reused ones (memory bandwidth alone) (LIF); the two convolutions alone,
forward and backward, time folded (conv net).

Ratios are "other's time / this time": > 1 means this implementation is faster.
"""
import argparse
import importlib.metadata
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # benchmark the checkout, not an installed copy

B, N, BETA = 128, 1024, 0.9

# ---------------------------------------------------------------------------------------------
# Optional peers: each import failure becomes a reason shown in the table, never a crash.

def _try_import(name):
    try: return __import__(name), None
    except Exception as e: return None, f"{type(e).__name__}: {e}"

def snnedu_parts(need_sequence=False):
    "The snnedu pieces this benchmark needs, or a reason they are missing."
    try:
        import snnedu
        from snnedu import surrogate
        parts = dict(Leaky=snnedu.Leaky, surrogate=surrogate)
        if need_sequence:
            from snnedu.sequence import neuron_sequence, sequence
            parts.update(neuron_sequence=neuron_sequence, sequence=sequence)
        return parts, None
    except Exception as e: return None, f"{type(e).__name__}: {e}"

def sj_parts():
    try:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate
        return dict(functional=functional, layer=layer, neuron=neuron, surrogate=surrogate), None
    except Exception as e: return None, f"{type(e).__name__}: {e}"

# ---------------------------------------------------------------------------------------------
# One LIF layer. Each factory returns `run(x, backward)`; x is [T, B, N].

def _finish(spk_seq, backward):
    if backward: spk_seq.sum().backward()
    return spk_seq

def lif_snnedu_step(T):
    sn, why = snnedu_parts()
    if sn is None: return None, why
    lif = sn['Leaky'](beta=BETA)
    def run(x, backward):
        mem, spk_rec = torch.zeros_like(x[0]), []
        for x_t in x.unbind(0):
            spk, mem = lif(x_t, mem)
            spk_rec.append(spk)
        return _finish(torch.stack(spk_rec), backward)
    return run, None

def _lif_snnedu_fused(compiled):
    "snnedu's fused path, spikes only (as inside a network): with the numba kernels, or forced to PyTorch."
    def factory(T):
        sn, why = snnedu_parts(need_sequence=True)
        if sn is None: return None, why
        from snnedu.neurons import scan
        if compiled and scan.numba is None: return None, "numba is not installed"
        lif, neuron_sequence = sn['Leaky'](beta=BETA), sn['neuron_sequence']
        def run(x, backward):
            scan.use_numba = compiled
            try: (spk_seq,) = neuron_sequence(lif, x, torch.zeros_like(x[0]), record=False)
            finally: scan.use_numba = True
            return _finish(spk_seq, backward)
        return run, None
    return factory

def lif_snntorch_tutorial(T):
    snntorch, why = _try_import('snntorch')
    if snntorch is None: return None, why
    lif = snntorch.Leaky(beta=BETA)
    def run(x, backward):  # snnTorch's tutorials: index the input at every step
        mem, spk_rec = lif.init_leaky(), []
        for step in range(x.shape[0]):
            spk, mem = lif(x[step], mem)
            spk_rec.append(spk)
        return _finish(torch.stack(spk_rec), backward)
    return run, None

def lif_snntorch_unbind(T):
    snntorch, why = _try_import('snntorch')
    if snntorch is None: return None, why
    lif = snntorch.Leaky(beta=BETA)
    def run(x, backward):
        mem, spk_rec = lif.init_leaky(), []
        for x_t in x.unbind(0):
            spk, mem = lif(x_t, mem)
            spk_rec.append(spk)
        return _finish(torch.stack(spk_rec), backward)
    return run, None

def lif_spikingjelly(T):
    sj, why = sj_parts()
    if sj is None: return None, why
    # decay_input=False, v_reset=None (soft reset), detach_reset=True: U = (1 - 1/tau) U + X - S·θ, β = 0.9
    node = sj['neuron'].LIFNode(tau=1 / (1 - BETA), decay_input=False, v_threshold=1.0, v_reset=None,
                                surrogate_function=sj['surrogate'].ATan(alpha=2.0), detach_reset=True, step_mode='m')
    def run(x, backward):
        sj['functional'].reset_net(node)
        return _finish(node(x), backward)
    return run, None

def _lif_floor(fresh):
    """Not an implementation: the memory traffic any one must do. Forward reads x and writes the spikes (one T×B×N
    buffer); backward also writes the input gradient (a second). `fresh`: new buffers each call (what an
    implementation returns must be new memory: the page faults are part of the bound), else the same two buffers
    reused (memory bandwidth alone)."""
    def factory(T):
        keep = [torch.empty(T, B, N) for _ in range(2)]
        def run(x, backward):
            x = x.detach()
            spk, grad = (torch.empty_like(x) for _ in range(2)) if fresh else keep
            torch.gt(x, 1.0, out=spk)
            if backward: torch.mul(x, 0.5, out=grad)
        return run, None
    return factory

LIF_IMPLS = {
    'snnedu step loop': lif_snnedu_step,
    'snnedu sequence (numba)': _lif_snnedu_fused(True),
    'snnedu sequence (torch)': _lif_snnedu_fused(False),
    'snnTorch tutorial x[step]': lif_snntorch_tutorial,
    'snnTorch unbind loop': lif_snntorch_unbind,
    'SpikingJelly multi-step': lif_spikingjelly,
    'floor: fresh spk (+grad)': _lif_floor(True),
    'floor: reused spk (+grad)': _lif_floor(False),
}
SNNTORCH_REF = 'snnTorch tutorial x[step]'
PEERS = ('snnTorch tutorial x[step]', 'snnTorch unbind loop', 'SpikingJelly multi-step',
         'snnTorch step loop')

def lif_input(T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, B, N, generator=g) * 0.5 + 0.3).requires_grad_()

# ---------------------------------------------------------------------------------------------
# The quickstart conv net, at two widths: WIDE (12/64 channels) and the seed README's own (8/16 channels).
# Each factory `f(widths, train)` returns `run(data, targets)`: one Adam training step (`train=True`) or
# the forward pass alone under `torch.no_grad()` (`train=False`).

CONV_T = 25
WIDE, SEED = (12, 64), (8, 16)

def _convnet(Leaky, spike_grad, widths=WIDE, **kw):
    c1, c2 = widths
    return nn.Sequential(nn.Conv2d(1, c1, 5), nn.MaxPool2d(2), Leaky(beta=0.5, spike_grad=spike_grad, init_hidden=True, **kw),
                         nn.Conv2d(c1, c2, 5), nn.MaxPool2d(2), Leaky(beta=0.5, spike_grad=spike_grad, init_hidden=True, **kw),
                         nn.Flatten(), nn.Linear(c2 * 4 * 4, 10),
                         Leaky(beta=0.5, spike_grad=spike_grad, init_hidden=True, output=True, **kw))

def _rate_ce(spk_seq, targets):
    "Cross-entropy of every step's output spikes, averaged over time and batch (snnTorch's ce_rate_loss)."
    return F.cross_entropy(spk_seq.flatten(0, 1), targets.repeat(spk_seq.shape[0]))

def _train_step(net, opt, forward, data, targets):
    spk_seq = forward(data)
    loss = _rate_ce(spk_seq, targets)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss

def _runner(net, forward, train):
    "`run(data, targets)`: one Adam step through `forward`, or (train=False) `forward` alone without a graph."
    if not train:
        def infer(data, targets):
            with torch.no_grad(): return forward(data)
        return infer
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.9, 0.999))
    return lambda data, targets: _train_step(net, opt, forward, data, targets)

def _reset_all(net):
    for m in net.modules():
        if hasattr(m, 'reset_mem') and m is not net: m.reset_mem()

def conv_snnedu_step(widths=WIDE, train=True):
    sn, why = snnedu_parts()
    if sn is None: return None, why
    torch.manual_seed(0)
    net = _convnet(sn['Leaky'], sn['surrogate'].fast_sigmoid(slope=25), widths)
    def forward(data):
        _reset_all(net)
        return torch.stack([net(data)[0] for _ in range(CONV_T)])
    return _runner(net, forward, train), None

def conv_snnedu_sequence(widths=WIDE, train=True):
    sn, why = snnedu_parts(need_sequence=True)
    if sn is None: return None, why
    torch.manual_seed(0)
    net = _convnet(sn['Leaky'], sn['surrogate'].fast_sigmoid(slope=25), widths)
    def forward(data):
        _reset_all(net)
        out = sn['sequence'](net, data, steps=CONV_T)  # static image: one frame, fed at every step
        return out[0] if isinstance(out, tuple) else out
    return _runner(net, forward, train), None

def conv_snntorch_step(widths=WIDE, train=True):
    snntorch, why = _try_import('snntorch')
    if snntorch is None: return None, why
    from snntorch import surrogate, utils
    torch.manual_seed(0)
    net = _convnet(snntorch.Leaky, surrogate.fast_sigmoid(slope=25), widths)
    def forward(data):  # the quickstart's forward_pass
        utils.reset(net)
        spk_rec = []
        for step in range(CONV_T):
            spk_out, mem_out = net(data)
            spk_rec.append(spk_out)
        return torch.stack(spk_rec)
    return _runner(net, forward, train), None

def conv_spikingjelly(widths=WIDE, train=True):
    sj, why = sj_parts()
    if sj is None: return None, why
    L, nrn, sg = sj['layer'], sj['neuron'], sj['surrogate']
    torch.manual_seed(0)
    lif = lambda: nrn.LIFNode(tau=2.0, decay_input=False, v_reset=None, surrogate_function=sg.Sigmoid(alpha=4.0),
                              detach_reset=True, step_mode='m')
    c1, c2 = widths
    net = nn.Sequential(L.Conv2d(1, c1, 5, step_mode='m'), L.MaxPool2d(2, step_mode='m'), lif(),
                        L.Conv2d(c1, c2, 5, step_mode='m'), L.MaxPool2d(2, step_mode='m'), lif(),
                        L.Flatten(step_mode='m'), L.Linear(c2 * 4 * 4, 10, step_mode='m'), lif())
    def forward(data):  # SpikingJelly's tutorials repeat the static image along time
        sj['functional'].reset_net(net)
        return net(data.unsqueeze(0).repeat(CONV_T, 1, 1, 1, 1))
    return _runner(net, forward, train), None

def conv_floor(widths=WIDE, train=True):
    """Not an implementation: only the two convolutions, time folded, channels-last (what sequence does);
    forward+backward (`train`) or forward alone."""
    torch.manual_seed(0)
    (w1, w2) = widths
    c1, c2 = nn.Conv2d(1, w1, 5), nn.Conv2d(w1, w2, 5)
    s1 = (torch.rand(CONV_T * B, w1, 12, 12) > 0.8).float().contiguous(memory_format=torch.channels_last).requires_grad_(train)
    def run(data, targets):
        s1.grad = None
        with torch.set_grad_enabled(train):
            y1 = c1(data)                                              # static input: once
            y2 = c2(s1)                                                # layer-1 spikes, all steps at once
            if train: (y1.sum() + y2.sum()).backward()
    return run, None

CONV_IMPLS = {
    'snnedu step loop': conv_snnedu_step,
    'snnedu sequence': conv_snnedu_sequence,
    'snnTorch step loop': conv_snntorch_step,
    'SpikingJelly multi-step': conv_spikingjelly,
    'floor: the 2 convs only': conv_floor,
}

# ---------------------------------------------------------------------------------------------
# Timing: interleaved rounds, warm-up first; every round kept (the table shows min, median, max).

class Rounds(NamedTuple):
    "One implementation's rounds: seconds, and minor page faults (fresh memory touched: 4 KiB each) per round."
    seconds: list
    faults: list

def time_interleaved(runs, rounds, warmup=1):
    "runs: {name: zero-arg callable}. Returns {name: Rounds}."
    for _ in range(warmup):
        for f in runs.values(): f()
    out = {k: Rounds([], []) for k in runs}
    for _ in range(rounds):
        for k, f in runs.items():
            f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
            f()
            out[k].seconds.append(time.perf_counter() - t0)
            out[k].faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return out

def used_machine(gib, seed=0):
    """Put the process's memory in a used state before timing, as after a while of real work: allocate `gib` GiB
    in tensors of random sizes (1-64 MiB), touch them, free every other one, keep the rest alive. Returns them."""
    g, kept, total = torch.Generator().manual_seed(seed), [], 0
    while total < gib * 2**30:
        n = int(torch.randint(2**18, 2**24, (1,), generator=g))          # float32 numbers: 1 MiB .. 64 MiB
        kept.append(torch.ones(n)); total += 4 * n
    return kept[::2]

def lif_cases(threads, rounds, Ts):
    rows = []
    for T in Ts:
        x = lif_input(T)
        made = {k: f(T) for k, f in LIF_IMPLS.items()}
        ok = {k: run for k, (run, why) in made.items() if run is not None}
        for backward in (False, True):
            def call(run=None):
                if backward:
                    x.grad = None
                    run(x, True)
                else:
                    with torch.no_grad(): run(x, False)
            res = time_interleaved({k: (lambda r=r: call(r)) for k, r in ok.items()}, rounds)
            case = f"LIF T={T} {'fwd+bwd' if backward else 'fwd'}"
            rows.append((case, threads, res, {k: why for k, (run, why) in made.items() if run is None}))
    return rows

def conv_case(threads, rounds, widths=WIDE, modes=(True,)):
    "The conv net at `widths` (WIDE or SEED): a training step and/or (`modes` holding False) forward only."
    g = torch.Generator().manual_seed(0)
    data, targets = torch.rand(B, 1, 28, 28, generator=g), torch.randint(0, 10, (B,), generator=g)
    name = 'seed convnet' if widths == SEED else 'quickstart convnet'
    rows = []
    for train in modes:
        made = {k: f(widths, train) for k, f in CONV_IMPLS.items()}
        ok = {k: run for k, (run, why) in made.items() if run is not None}
        res = time_interleaved({k: (lambda r=r: r(data, targets)) for k, r in ok.items()}, rounds)
        rows.append((f"{name} {widths[0]}/{widths[1]} T={CONV_T} {'Adam' if train else 'fwd'}", threads, res,
                     {k: why for k, (run, why) in made.items() if run is None}))
    return rows

# ---------------------------------------------------------------------------------------------
# Peak memory, each implementation in a fresh process.

def _status_kb(field):
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'): return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")

def memory_child(name, T):
    "Runs in a fresh process: prints the peak RSS growth (MiB) of one forward+backward."
    torch.set_num_threads(1)
    run, why = LIF_IMPLS[name](T)
    if run is None: print(f"n/a {why}"); return
    small = lif_input(2, seed=1)
    run(small, True)                      # warm-up at a tiny size: lazy initialisation, not buffers
    x = lif_input(T)
    Path('/proc/self/clear_refs').write_text('5')  # reset VmHWM (peak RSS) to the current RSS
    before = _status_kb('VmRSS')
    run(x, True)
    print(f"{(_status_kb('VmHWM') - before) / 1024:.1f}")

def memory_case(T):
    res, missing = {}, {}
    for name in LIF_IMPLS:
        if name.startswith('floor'): continue
        out = subprocess.run([sys.executable, __file__, '--memory-child', name, '--T', str(T)],
                             capture_output=True, text=True, env=os.environ.copy())
        text = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else f"error: {out.stderr.strip()[-200:]}"
        try: res[name] = float(text)
        except ValueError: missing[name] = text
    return res, missing

# ---------------------------------------------------------------------------------------------
# Report.

def ratio(a, b): return f"{a / b:6.2f}x" if a and b else "   -   "

def print_table(rows):
    """One line per implementation: min / median / max over the rounds, the spread max/median, ratios of medians, and
    the median minor page faults per call (each one 4 KiB of fresh memory touched: machine-independent)."""
    print(f"\n{'case':34s} {'thr':>3s}  {'implementation':28s} {'min':>7s} {'median':>7s} {'max':>7s} ms  "
          f"{'max/med':>7s}  {'snnTorch/this':>13s}  {'best peer/this':>14s}  {'faults':>7s}")
    for case, threads, rounds, missing in rows:
        times = {k: r.seconds for k, r in rounds.items()}
        med = {k: statistics.median(v) for k, v in times.items()}
        ref = med.get(SNNTORCH_REF) or med.get('snnTorch step loop')
        peers = [v for k, v in med.items() if k in PEERS]
        best = min(peers) if peers else None
        for k, v in times.items():
            print(f"{case:34s} {threads:>3d}  {k:28s} {1e3 * min(v):7.1f} {1e3 * med[k]:7.1f} {1e3 * max(v):7.1f}     "
                  f"{max(v) / med[k]:6.2f}x  {ratio(ref, med[k]):>13s}  {ratio(best, med[k]):>14s}  "
                  f"{statistics.median(rounds[k].faults):7.0f}")
        for k, why in missing.items():
            print(f"{case:34s} {threads:>3d}  {k:28s} {'n/a':>7s}  ({why[:60]})")

def print_memory(T, res, missing):
    ref = res.get(SNNTORCH_REF)
    print(f"\nPeak memory of one forward+backward, T={T}, B={B}, N={N} (fresh process each; peak RSS growth):")
    for k, v in res.items():
        print(f"  {k:28s} {v:8.1f} MiB   this/snnTorch tutorial = {v / ref if ref else float('nan'):.2f}")
    for k, why in missing.items(): print(f"  {k:28s} n/a ({why[:80]})")

def environment():
    malloc = {k: v for k, v in os.environ.items() if k.startswith(('GLIBC_TUNABLES', 'MALLOC_', 'THP_MEM_ALLOC_ENABLE'))}
    versions = {}
    for name in ('snntorch', 'spikingjelly'):
        try: versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError: versions[name] = 'not installed'
    return (f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()}\n"
            f"glibc malloc setting: {malloc or 'default (GLIBC_TUNABLES, MALLOC_* and THP_MEM_ALLOC_ENABLE unset)'}\n"
            f"peers: {versions}")

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rounds', type=int, default=7)
    p.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    p.add_argument('--T', type=int, nargs='+', default=[25, 100])
    p.add_argument('--skip', nargs='*', default=[], choices=['lif', 'memory', 'conv', 'seed'])
    p.add_argument('--used-gib', type=float, default=2.0, help='memory put in a used state before timing (0: none)')
    p.add_argument('--memory-child', default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.memory_child: return memory_child(a.memory_child, a.T[0])
    print(environment())
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    ballast = used_machine(a.used_gib)
    print(f"used state: {len(ballast)} tensors, {sum(t.numel() for t in ballast) * 4 / 2**30:.1f} GiB kept alive "
          f"(of {a.used_gib:g} GiB allocated and touched)")
    rows = []
    for threads in a.threads:
        torch.set_num_threads(threads)
        if 'lif' not in a.skip: rows += lif_cases(threads, a.rounds, a.T)
        if 'conv' not in a.skip: rows += conv_case(threads, max(3, a.rounds // 2))
        if 'seed' not in a.skip: rows += conv_case(threads, a.rounds, SEED, modes=(False, True))
    print_table(rows)
    if 'memory' not in a.skip: print_memory(max(a.T), *memory_case(max(a.T)))
    print(f"\nload average at the end: {os.getloadavg()}")

if __name__ == '__main__':
    main()
