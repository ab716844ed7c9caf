"""What a LoTTS or Best-of-N run asks of the host, stage by stage -- the costs a GPU shows
and a CPU hides: model calls and their batch sizes, host-device synchronisation points,
model (re)loads, ComfyUI's full garbage collections and cache flushes, and the host's own
CPU time outside and inside model calls.

Used by B1 for one instrumented run of each node, after the timed ones (the
instrumentation costs time of its own). Stages are the nodes' own (``Budget.stage``);
work outside them is "outside stages".

Synchronisation points: on a GPU, torch.cuda's sync debug mode reports every call that
waits for the device (each one drains the GPU's queue: the host then prepares the next
kernels while the GPU idles), inside model calls and between them. On a CPU nothing
waits, so the audit counts, inside model calls only (where the tensors are the GPU's:
the latents, activations, attention), the calls that *would* wait there: reading a value
(``item``, ``tolist``, ``bool``/``int``/``float`` of a tensor, ``nonzero``, boolean-mask
indexing), copies to the host, and -- at the pack's own lines -- ``.to(device)`` copies
(of host tensors, e.g. token weights: a blocking host-to-device copy waits too).
Between model calls a CPU count would mean little: the pack's glue works on host tensors
(ComfyUI hands latents back on the CPU) and ComfyUI's own loop is Best-of-N's too.
"""

from __future__ import annotations

import gc
import sys
import time
import traceback
import types
import warnings
import weakref
from collections import Counter, defaultdict
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

OUTSIDE = "outside stages"
# calls that wait for the device when their tensor is on it
VALUE_READS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero",
               "masked_select", "unique", "numpy", "cpu", "argwhere"}
HERE = __file__.rsplit("/", 1)[-1]


def _site(skip_torch=True) -> str:
    """file:line of the first frame outside torch and this module."""
    f = sys._getframe(2)
    while f is not None:
        name = f.f_code.co_filename
        if not (name.endswith(HERE) or (skip_torch and ("/torch/" in name or "contextlib" in name
                                                        or "warnings" in name))):
            parts = name.replace("\\", "/").split("/")
            return f"{'/'.join(parts[-2:])}:{f.f_lineno}"
        f = f.f_back
    return "?"


PACK_DIRS = ("nodes/", "lotts/")


def _device_arg(args, kwargs):
    """The device a ``Tensor.to`` call names (a device, a string, another tensor's), or
    None when it names only a dtype."""
    if "device" in kwargs:
        return kwargs["device"]
    for a in args[1:]:
        if isinstance(a, (str, torch.device)):
            return a
        if isinstance(a, torch.Tensor):
            return a.device
    return None


def _to_host(args, kwargs) -> bool:
    """``.to("cpu")`` spelled out: on a GPU, a copy to the host (a device given as an
    object is taken for the model's device)."""
    dev = _device_arg(args, kwargs)
    return isinstance(dev, str) and dev.startswith("cpu")


def _bool_index(args) -> bool:
    """Whether an indexing call uses a boolean mask (its positions are read on the host)."""
    index = args[1] if len(args) > 1 else None
    items = index if isinstance(index, (tuple, list)) else (index,)
    return any(isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in items)


class _TensorSet:
    """A set of live tensors by identity (a WeakSet would compare tensors by value)."""

    def __init__(self):
        self._refs = {}

    def add(self, t):
        self._refs[id(t)] = weakref.ref(t)

    def __contains__(self, t):
        ref = self._refs.get(id(t))
        return ref is not None and ref() is t


class _WouldSync(TorchFunctionMode):
    """Counts, on a CPU, the torch calls that would wait for a GPU (see the module).

    Inside a model call, a tensor is "on the device" when it derives from the model's
    weights or the call's inputs (tracked op by op); the pack's token weights and the
    like are host tensors. A value read of a device tensor waits; so do a copy of a
    device tensor to the host and a blocking copy of a host tensor to the device."""

    def __init__(self, audit):
        super().__init__()
        self.audit = audit

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.audit.in_model:
            return func(*args, **kwargs)
        device = self.audit.on_device
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        derived = any(t in device for t in tensors)
        name = getattr(func, "__name__", "")
        out = func(*args, **kwargs)
        to_host = name in ("cpu", "numpy") or (name == "to" and _to_host(args, kwargs))
        if (name in VALUE_READS or (name in ("__getitem__", "__setitem__") and _bool_index(args))
                or to_host) and derived:
            self.audit.sync(f"{name} at {_site()}")
        elif (name == "to" and not derived and args and isinstance(args[0], torch.Tensor)
              and _device_arg(args, kwargs) and not kwargs.get("non_blocking", False)):
            self.audit.sync(f"{name} (host to device) at {_site()}")  # a blocking upload
            derived = out is not args[0]  # on a CPU .to() may return the host tensor itself
        if derived and not to_host:
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    device.add(t)
        return out


class Audit:
    """Install with ``with Audit(pack, gpu) as audit:`` around one node run; read
    ``audit.stages`` (per stage: calls, batches, syncs, loads, gcs, flushes, host
    seconds) or :meth:`rows`. Wrap the model with :meth:`counting` first."""

    def __init__(self, pack, gpu: bool):
        self.budget_mod = sys.modules[pack.__name__ + ".nodes.budget"]
        self.gpu = gpu
        self.reset()

    def reset(self):
        self.stage = OUTSIDE
        self.in_model = False
        self.on_device = _TensorSet()  # CPU count: tensors a GPU would hold
        self.weights_of = None
        self.stages = defaultdict(lambda: {"batches": [], "syncs": Counter(), "syncs_out": 0,
                                           "loads": 0, "gc": 0, "flush": 0, "host_out": 0.0,
                                           "host_in": 0.0})
        self._t = time.thread_time()

    # --- host time: the main thread's CPU seconds, split by stage and in/out of model calls
    def _tick(self):
        now = time.thread_time()
        self.stages[self.stage]["host_in" if self.in_model else "host_out"] += now - self._t
        self._t = now

    def enter(self, stage):
        self._tick()
        self.stage = stage

    def sync(self, site):
        s = self.stages[self.stage]
        if self.in_model:
            s["syncs"][site] += 1
        else:
            s["syncs_out"] += 1

    def counting(self, model):
        """A clone of ``model`` whose model calls the audit sees (batch, host time)."""
        audit = self

        def wrapper(apply_model, args):
            audit._tick()
            if not audit.gpu:  # what the GPU holds: the weights and the call's inputs
                for t in tree_leaves((args["input"], args["timestep"], args["c"])):
                    if isinstance(t, torch.Tensor):
                        audit.on_device.add(t)
                inner = model.model
                if audit.weights_of is not inner:
                    audit.weights_of = inner
                    for t in list(inner.parameters()) + list(inner.buffers()):
                        audit.on_device.add(t)
            audit.in_model = True
            try:
                return apply_model(args["input"], args["timestep"], **args["c"])
            finally:
                audit._tick()
                audit.in_model = False
                audit.stages[audit.stage]["batches"].append(int(args["input"].shape[0]))

        m = model.clone()
        m.set_model_unet_function_wrapper(wrapper)
        return m

    # --- install / remove the hooks
    def __enter__(self):
        import comfy.model_management as mm
        audit, Budget = self, self.budget_mod.Budget
        self._saved = (Budget.stage, mm.load_models_gpu, mm.soft_empty_cache, mm.gc)
        orig_stage, orig_load, orig_flush = self._saved[:3]

        @contextmanager
        def stage(budget, name):
            prev = audit.stage
            audit.enter(name)
            try:
                with orig_stage(budget, name):
                    yield
            finally:
                audit.enter(prev)

        def load(*a, **k):
            audit.stages[audit.stage]["loads"] += 1
            return orig_load(*a, **k)

        def flush(*a, **k):
            audit.stages[audit.stage]["flush"] += 1
            return orig_flush(*a, **k)

        def collect(*a, **k):
            audit.stages[audit.stage]["gc"] += 1
            return gc.collect(*a, **k)

        Budget.stage = stage
        mm.load_models_gpu, mm.soft_empty_cache = load, flush
        mm.gc = types.SimpleNamespace(collect=collect)
        self.reset()
        if self.gpu:
            self._warn = warnings.catch_warnings()
            self._warn.__enter__()
            warnings.simplefilter("always")
            shown = warnings.showwarning

            def show(message, category, *a, **k):
                if "synchroniz" in str(message):
                    stack = traceback.extract_stack()[:-1]
                    frame = next((f for f in reversed(stack) if "/torch/" not in f.filename
                                  and "warnings" not in f.filename
                                  and not f.filename.endswith(HERE)), None)
                    where = "?" if frame is None else \
                        f"{'/'.join(frame.filename.split('/')[-2:])}:{frame.lineno}"
                    audit.sync(where)
                else:
                    shown(message, category, *a, **k)
            warnings.showwarning = show
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode(1)
        else:
            self._mode = _WouldSync(self)
            self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        import comfy.model_management as mm
        self._tick()
        if self.gpu:
            torch.cuda.set_sync_debug_mode(0)
            torch.cuda.synchronize()
            self._warn.__exit__(*exc)
        else:
            self._mode.__exit__(*exc)
        self.budget_mod.Budget.stage, mm.load_models_gpu, mm.soft_empty_cache, mm.gc = self._saved
        return False

    # --- reading it
    def summary(self) -> dict:
        out = {}
        for name, s in self.stages.items():
            calls = len(s["batches"])
            syncs = sum(s["syncs"].values())
            out[name] = dict(calls=calls, batches=list(s["batches"]), syncs=syncs,
                             syncs_out=s["syncs_out"] if self.gpu else None,
                             syncs_per_call=syncs / calls if calls else None,
                             loads=s["loads"], gc=s["gc"], flush=s["flush"],
                             host_out=s["host_out"], host_in=s["host_in"],
                             sites=s["syncs"].most_common(4))
        return out


def batches_text(batches: list[int]) -> str:
    """``[8, 8, 8, 4]`` as ``3x8 + 1x4`` (in order of first appearance)."""
    if not batches:
        return "-"
    counts = Counter(batches)
    return " + ".join(f"{counts[b]}x{b}" for b in dict.fromkeys(batches))


STAGE_ORDER = ("candidates", "probes", "refinement", "harmonization", "decode + verifier", OUTSIDE)


def table(lotts: dict, bon: dict, gpu: bool) -> list[str]:
    """Side-by-side rows of two :meth:`Audit.summary` results, then the findings: a stage
    whose model calls are smaller than Best-of-N's, that waits for the device more often
    inside a model call than Best-of-N's sampling does, or that met a dead model clone."""
    what = ("syncs: torch.cuda sync debug mode, inside model calls per call and between "
            "calls in all" if gpu else
            "syncs: inside model calls, the calls that would wait for a GPU; between calls "
            "not counted on a CPU (see benchmarks/host_audit.py)")
    lines = [f"host audit (one instrumented run each; {what}; host s = main thread CPU seconds "
             "outside / inside model calls; loads = load_models_gpu calls, gc = ComfyUI's full "
             "garbage collections, flush = its cache flushes)",
             f"  {'run / stage':28}{'calls':>6}  {'batch sizes':<18}{'syncs/call':>11}"
             f"{'between':>8}{'loads':>6}{'gc':>4}{'flush':>6}{'host s out/in':>16}"]

    def row(label, s):
        per = "-" if s["syncs_per_call"] is None else f"{s['syncs_per_call']:.1f}"
        out = "-" if s["syncs_out"] is None else str(s["syncs_out"])
        return (f"  {label:28}{s['calls']:>6}  {batches_text(s['batches']):<18}{per:>11}"
                f"{out:>8}{s['loads']:>6}{s['gc']:>4}{s['flush']:>6}"
                f"{s['host_out']:>8.3f}/{s['host_in']:<7.3f}")

    for who, summ in (("LoTTS", lotts), ("Best-of-N", bon)):
        for name in STAGE_ORDER + tuple(k for k in summ if k not in STAGE_ORDER):
            if name in summ:
                lines.append(row(f"{who} {name}", summ[name]))
    ref = bon.get("candidates")
    findings = []
    if ref and ref["calls"]:
        ref_batch = max(ref["batches"])
        ref_sync = ref["syncs_per_call"]
        for name in STAGE_ORDER:
            s = lotts.get(name)
            if not s or not s["calls"]:
                continue
            small = [b for b in s["batches"] if b < ref_batch]
            if small:
                findings.append(f"{name}: {len(small)} of {s['calls']} model calls smaller than "
                                f"Best-of-N's {ref_batch} ({batches_text(s['batches'])})")
            if s["syncs_per_call"] is not None and s["syncs_per_call"] > ref_sync + 0.5:
                sites = ", ".join(f"{site} x{n}" for site, n in s["sites"])
                findings.append(f"{name}: {s['syncs_per_call']:.1f} syncs inside each model call "
                                f"vs Best-of-N's {ref_sync:.1f} (most: {sites})")
        for name in STAGE_ORDER + (OUTSIDE,):
            s = lotts.get(name)
            if s and s["gc"]:
                findings.append(f"{name}: {s['gc']} full garbage collection(s) (ComfyUI found a "
                                "dead model clone among its loaded models)")
    lines.append("findings: " + ("none" if not findings else ""))
    lines += [f"  - {f}" for f in findings]
    return lines
