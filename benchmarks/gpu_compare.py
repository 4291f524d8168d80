#!/usr/bin/env python
"""RNN, LSTM, GRU (cuDNN) and a causal Transformer at one parameter budget, on one device.

(Opt-in with ``--models``: minGRU, by a parallel scan, ``mingru``, or by a loop, ``mingru_loop``.)

Measures, following ``GPU_BENCH.md``:

(a) training throughput (tokens/s, forward + backward + clip + optimizer step) against the
    sequence length T at a fixed number of tokens per batch, in float32 (TF32 flags recorded),
    bf16 autocast and fp16 autocast (the control: under bf16 autocast PyTorch runs cuDNN RNNs in
    fp16, so the dtype each model really used is recorded), with FLOPs/token and MFU;
(b) accuracy on the adding problem against T (same step budget for every model, several seeds),
    in the variant of Le, Jaitly & Hinton (2015) (values U[0, 1], target X1 + X2, see
    ``adding_batch``), the LSTM and GRU started with chapter 7's long memory (``acc_gate_bias``);
(c) streaming inference at batch 1: ms per new token at growing contexts, recurrent state update
    against a Transformer with a KV cache, eager and captured in a CUDA graph, with the memory
    each stream holds;
(d) peak memory of each training configuration.

Every figure goes into one JSON file with its provenance (device, versions, TF32 flags, command,
commit, date) and the raw per-repeat (per-token for streaming) timings.

    python benchmarks/gpu_compare.py --quick                  # tiny CPU version (< 40 s)
    python benchmarks/gpu_compare.py                          # full run on a GPU
    python benchmarks/gpu_compare.py --models gru,mingru,mingru_loop --out X.json   # minGRU vs GRU
"""
import argparse
import contextlib
import copy
import datetime
import json
import math
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch                                   # noqa: E402
import torch.nn.functional as F                # noqa: E402
from tqdm.auto import tqdm                     # noqa: E402

sys.path.insert(0, str(ROOT / "experiments"))
from adding_gated import set_long_memory      # noqa: E402  (chapter 7's gate biases)
from rnnlib.torch.models import (ALL_MODEL_NAMES, MODEL_NAMES, RecurrentLM, TransformerLM,  # noqa: E402
                           build_model, count_params, describe, flops_per_token, width_for_budget)

SCHEMA_VERSION = 2      # 2: config["models"] (which models ran); minGRU models allowed
MODES = ("fp32", "bf16", "fp16")

# Training configurations: the GPU one (the numbers of chapter 12) and a tiny CPU one.
FULL = dict(
    models=list(MODEL_NAMES),   # --models adds or picks others (rnnlib.torch.models.ALL_MODEL_NAMES)
    budget=2_000_000, vocab=256, rnn_layers=2, tf_layers=4, head_dim=64, head_multiple=8,
    multiple=8, positions="sinusoidal",
    seq_lens=[64, 256, 1024, 4096], tokens_per_batch=2 ** 16, modes=list(MODES),
    warmup_steps=10, warmup_s=0.5, repeats=5, min_repeat_s=0.25, max_steps_per_repeat=50,
    lr=1e-3, clip=1.0,
    acc_seq_lens=[64, 256, 1024, 4096], acc_steps=300, acc_batch=32, acc_lr=1e-3,
    acc_seeds=[0, 1, 2], acc_eval=1024, acc_tol=0.04, acc_deadline_s=None,
    acc_gate_bias=5.0,  # LSTM b_f = -b_i, GRU b_z (experiments/adding_gated.py); 0: PyTorch's init
    stream_contexts=[64, 256, 1024, 4096, 16384], stream_warmup=100, stream_tokens=1000,
    stream_dtypes=["fp32", "fp16"], cuda_graphs=True,
    parts=["throughput", "accuracy", "streaming"], seed=0,
    cpu_threads=None,   # None: leave torch's default; tiny models on a shared CPU run best on 1
)
QUICK = dict(
    FULL, budget=46_000, vocab=64, tf_layers=2, head_dim=8, head_multiple=4, multiple=4,
    seq_lens=[16, 64], tokens_per_batch=2 ** 10, modes=["fp32"],
    warmup_steps=2, warmup_s=0.0, repeats=3, min_repeat_s=0.01, max_steps_per_repeat=3,
    acc_seq_lens=[16, 64], acc_steps=25, acc_batch=16, acc_seeds=[0, 1], acc_eval=128,
    stream_contexts=[16, 64], stream_warmup=5, stream_tokens=30, stream_dtypes=["fp32"],
    cuda_graphs=False, cpu_threads=1,
)

# Dense tensor-core peaks in TFLOP/s (vendor data sheets) for the MFU column.
PEAK_TFLOPS = {
    "H100 SXM": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100 PCIe": {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2},
    "H200": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
}

NOTES = [
    "Throughput: one step = forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW step, "
    "zero_grad; random tokens; fixed-length unpacked batches; warm-up discarded per (model, T, mode); "
    "repeats run round-robin over all configurations in a freshly shuffled order per round.",
    "Under torch.autocast(dtype=bfloat16) PyTorch runs cuDNN RNN/LSTM/GRU in float16: see "
    "'core_dtype' of each configuration; mode 'fp16' (with GradScaler) is the control where all "
    "four models run float16.",
    "FLOPs/token = 3 x (2 x matmul parameters + 4 x n_layers x d_model x T for attention), "
    "PaLM/nanoGPT convention, no discount for the causal mask; MFU is against the dense peak of "
    "the mode's tensor-core type (fp32 mode: TF32 peak when TF32 is on).",
    "Attention backend forced per mode on CUDA (flash for bf16/fp16, memory-efficient for fp32, "
    "flash has no fp32 kernel); a forced backend that fails is recorded and the default used.",
    "Streaming: batch 1; the context S is prefilled, then every timed token is the (S+1)-th "
    "(the cache position is reset after each step), so all timed tokens see exactly S cached tokens.",
    "minGRU (opt-in): 'mingru' computes its linear recurrence by a parallel scan written in plain "
    "PyTorch ops (about 2 log2 T elementwise levels, no fused kernel), 'mingru_loop' the same model "
    "with a Python loop over T; FLOPs/token count their matrix products only.",
]


# --------------------------------------------------------------------------------------------
# Device, provenance
# --------------------------------------------------------------------------------------------
def pick_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def device_info(device):
    info = dict(type=device.type, name=_cpu_name(), cpu_threads=torch.get_num_threads())
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(name=p.name, capability=f"{p.major}.{p.minor}", sm_count=p.multi_processor_count,
                    total_memory_bytes=p.total_memory, driver=_nvidia_smi_driver())
    return info


def _cpu_name():
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_smi_driver():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def device_slug(info):
    name = info["name"] if info["type"] == "cuda" else "cpu"
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def peak_table(info):
    """Dense peaks for the device, or None when it is not in PEAK_TFLOPS."""
    if info["type"] != "cuda":
        return None
    name = info["name"]
    if "H200" in name:
        return dict(PEAK_TFLOPS["H200"], source="H200 SXM")
    if "H100" in name:
        key = "H100 PCIe" if "PCIe" in name else "H100 SXM"
        return dict(PEAK_TFLOPS[key], source=key)
    if "A100" in name:
        return dict(PEAK_TFLOPS["A100"], source="A100")
    return None


def git_commit(explicit=None):
    if explicit:
        return explicit, "argument"
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--", "rnnlib/torch/models.py",
                                    "benchmarks/gpu_compare.py"],
                                   cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else ""), "git"
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GIT_COMMIT"), "GIT_COMMIT" if os.environ.get("GIT_COMMIT") else "unknown"


# --------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Milliseconds between marks: CUDA events on a GPU, ``perf_counter`` on the CPU."""

    def __init__(self, device, n_marks):
        self.cuda = device.type == "cuda"
        self.marks = ([torch.cuda.Event(enable_timing=True) for _ in range(n_marks)]
                      if self.cuda else [0.0] * n_marks)
        self.device = device

    def mark(self, i):
        if self.cuda:
            self.marks[i].record()
        else:
            self.marks[i] = time.perf_counter()

    def intervals_ms(self):
        sync(self.device)
        if self.cuda:
            return [a.elapsed_time(b) for a, b in zip(self.marks, self.marks[1:])]
        return [(b - a) * 1e3 for a, b in zip(self.marks, self.marks[1:])]


def quartiles(xs):
    """(q25, median, q75) with linear interpolation."""
    s = sorted(xs)

    def q(p):
        k = (len(s) - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return s[lo] + (s[hi] - s[lo]) * (k - lo)

    return q(0.25), q(0.5), q(0.75)


def percentile(xs, p):
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------------------------
# Models and precision
# --------------------------------------------------------------------------------------------
def model_kwargs(cfg, max_len, **extra):
    return dict(rnn_layers=cfg["rnn_layers"], tf_layers=cfg["tf_layers"], head_dim=cfg["head_dim"],
                head_multiple=cfg["head_multiple"], max_len=max_len, positions=cfg["positions"],
                **extra)


def make_models(cfg, vocab, max_len, seed, **extra):
    """Matched models: widths from the budget, weights from ``seed``."""
    kw = model_kwargs(cfg, max_len, **extra)
    out = {}
    for name in cfg["models"]:
        d = width_for_budget(name, cfg["budget"], vocab, multiple=cfg["multiple"], **kw)
        torch.manual_seed(seed)
        out[name] = build_model(name, vocab, d, **kw)
    return out


def mode_supported(mode, device):
    if mode == "fp32":
        return True
    if device.type == "cuda":
        return mode == "fp16" or torch.cuda.is_bf16_supported()
    return mode == "bf16"         # CPU autocast has bf16 only


def autocast(mode, device):
    if mode == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def attention_backend(model, mode, device):
    """Name of the SDPA backend forced for this (model, mode), or None (library default)."""
    if device.type != "cuda" or not isinstance(model, TransformerLM):
        return None
    return "FLASH_ATTENTION" if mode in ("bf16", "fp16") else "EFFICIENT_ATTENTION"


def attention_context(backend):
    if backend is None:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([getattr(SDPBackend, backend)])


def probe_dtypes(model, x, mode, device, backend):
    """Run one forward pass and return the dtypes the core (RNN / attention projections) and the
    head really produced under this mode."""
    seen = {}
    core = model.rnn if isinstance(model, RecurrentLM) else model.blocks[0].attn.qkv

    def hook(key):
        def fn(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            seen.setdefault(key, str(out.dtype).replace("torch.", ""))
        return fn

    handles = [core.register_forward_hook(hook("core")), model.head.register_forward_hook(hook("head"))]
    try:
        with torch.no_grad(), attention_context(backend), autocast(mode, device):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return seen["core"], seen["head"]


def make_train_step(model, opt, scaler, mode, device, backend, clip):
    params = list(model.parameters())

    def step(x, y):
        with attention_context(backend), autocast(mode, device):
            logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def make_optimizer(model, lr, device):
    if device.type == "cuda":
        return torch.optim.AdamW(model.parameters(), lr=lr, fused=True), "AdamW(fused=True)"
    return torch.optim.AdamW(model.parameters(), lr=lr), "AdamW(foreach)"


# --------------------------------------------------------------------------------------------
# (a) throughput and (d) memory
# --------------------------------------------------------------------------------------------
def run_throughput(cfg, device, models, peaks, bar, rng):
    vocab, tpb = cfg["vocab"], cfg["tokens_per_batch"]
    opts, opt_name = {}, None
    for name, model in models.items():
        opts[name], opt_name = make_optimizer(model, cfg["lr"], device)
    gen = torch.Generator(device=device).manual_seed(cfg["seed"])
    data = {}
    for T in cfg["seq_lens"]:
        B = max(1, tpb // T)
        x = torch.randint(0, vocab, (B, T), device=device, generator=gen)
        y = torch.randint(0, vocab, (B, T), device=device, generator=gen)
        data[T] = (x, y)

    # Materialise the optimizer states before any memory is measured.
    for name, model in models.items():
        x, y = data[cfg["seq_lens"][0]]
        make_train_step(model, opts[name], None, "fp32", device, None, cfg["clip"])(x[:1], y[:1])
    sync(device)

    configs = [dict(model=n, T=T, mode=m) for n in models for T in cfg["seq_lens"]
               for m in cfg["modes"] if mode_supported(m, device)]
    skipped = [dict(mode=m, reason="not supported on this device") for m in cfg["modes"]
               if not mode_supported(m, device)]
    rng.shuffle(configs)
    results = []
    for c in configs:                                    # phase 1: warm-up, calibration, memory
        name, T, mode = c["model"], c["T"], c["mode"]
        model = models[name]
        x, y = data[T]
        B = x.shape[0]
        r = dict(model=name, T=T, batch=B, tokens_per_batch=B * T, mode=mode,
                 autocast_dtype={"fp32": None, "bf16": "bfloat16", "fp16": "float16"}[mode],
                 grad_scaler=mode == "fp16", optimizer=opt_name, params=count_params(model),
                 flops_per_token=flops_per_token(model, T))
        backend = attention_backend(model, mode, device)
        try:
            try:
                r["core_dtype"], r["head_dtype"] = probe_dtypes(model, x[:1], mode, device, backend)
                r["attention_backend"] = backend
            except RuntimeError as e:            # forced backend unavailable: say so, use default
                r["attention_backend"] = f"default (forced {backend} failed: {str(e)[:200]})"
                backend = None
                r["core_dtype"], r["head_dtype"] = probe_dtypes(model, x[:1], mode, device, None)
            scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None
            step = make_train_step(model, opts[name], scaler, mode, device, backend, cfg["clip"])
            t0, n = time.perf_counter(), 0
            while n < cfg["warmup_steps"] or time.perf_counter() - t0 < cfg["warmup_s"]:
                step(x, y)
                sync(device)
                n += 1
            r["warmup_steps"] = n
            if device.type == "cuda":                      # (d): one step after warm-up
                torch.cuda.reset_peak_memory_stats(device)
                resident = torch.cuda.memory_allocated(device)
                step(x, y)
                sync(device)
                peak = torch.cuda.max_memory_allocated(device)
                r["memory"] = dict(resident_bytes=resident, peak_allocated_bytes=peak,
                                   step_peak_increase_bytes=peak - resident)
            else:
                r["memory"] = None
            timer = Timer(device, 2)
            timer.mark(0)
            step(x, y)
            timer.mark(1)
            one = max(timer.intervals_ms()[0], 1e-3)
            r["steps_per_repeat"] = int(min(cfg["max_steps_per_repeat"],
                                            max(1, math.ceil(cfg["min_repeat_s"] * 1e3 / one))))
            r["repeat_ms_per_step"] = []
            c["step"] = step
        except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
            r["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
        c["result"] = r
        results.append(r)
        bar.update(1)

    for _ in range(cfg["repeats"]):                      # phase 2: shuffled round-robin repeats
        order = [c for c in configs if "step" in c]
        rng.shuffle(order)
        for c in order:
            r = c["result"]
            x, y = data[c["T"]]
            n = r["steps_per_repeat"]
            timer = Timer(device, 2)
            timer.mark(0)
            for _ in range(n):
                c["step"](x, y)
            timer.mark(1)
            r["repeat_ms_per_step"].append(timer.intervals_ms()[0] / n)
        bar.update(len(configs))

    for r in results:
        if "error" in r:
            continue
        q25, med, q75 = quartiles(r["repeat_ms_per_step"])
        tps = [r["tokens_per_batch"] / (ms / 1e3) for ms in r["repeat_ms_per_step"]]
        t25, tmed, t75 = quartiles(tps)
        r.update(median_ms_per_step=med, iqr_ms_per_step=q75 - q25,
                 tokens_per_s=r["tokens_per_batch"] / (med / 1e3), tokens_per_s_iqr=t75 - t25,
                 tokens_per_s_q25=t25, tokens_per_s_q75=t75)
        r["achieved_tflops"] = r["tokens_per_s"] * r["flops_per_token"] / 1e12
        peak_key = r["mode"] if r["mode"] != "fp32" else (
            "tf32" if torch.backends.cuda.matmul.allow_tf32 else "fp32")
        r["peak_tflops"] = peaks[peak_key] if peaks else None
        r["mfu"] = r["achieved_tflops"] / r["peak_tflops"] if peaks else None
    results.sort(key=lambda r: (cfg["models"].index(r["model"]), r["T"], MODES.index(r["mode"])))
    return dict(tokens_per_batch=tpb, seq_lens=cfg["seq_lens"], modes=cfg["modes"],
                skipped_modes=skipped, repeats=cfg["repeats"], results=results)


def count_throughput_units(cfg, device):
    n = len(cfg["models"]) * len(cfg["seq_lens"]) * sum(mode_supported(m, device) for m in cfg["modes"])
    return n * (1 + cfg["repeats"])


# --------------------------------------------------------------------------------------------
# (b) accuracy on the adding problem
# --------------------------------------------------------------------------------------------
def adding_batch(batch, T, gen, device):
    """The adding problem in the variant of Le, Jaitly & Hinton (2015), drawn on ``device``.

    Inputs ``(B, T, 2)`` = (value ~ U[0, 1], marker in {0, 1}); one marker uniformly in the first
    half ``[0, T//2)``, one in the second ``[T//2, T)`` (Arjovsky et al. 2016's placement); target
    ``X1 + X2`` in [0, 2]. The same rules as ``rnnlib.data.adding_problem(variant="le2015")``,
    from torch's generator. Chapter 6 uses the 1997 variant instead (values in [-1, 1], target
    ``0.5 + (X1 + X2) / 4``): a tolerance ``tol`` here is ``tol / 4`` there."""
    values = torch.rand(batch, T, generator=gen, device=device)
    half = T // 2
    i = torch.randint(0, half, (batch,), generator=gen, device=device)
    j = torch.randint(half, T, (batch,), generator=gen, device=device)
    markers = torch.zeros(batch, T, device=device)
    rows = torch.arange(batch, device=device)
    markers[rows, i] = 1.0
    markers[rows, j] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)


def train_adding(model, T, cfg, seed, device):
    """Train ``model`` on the adding problem for ``acc_steps`` steps; return the test metrics."""
    gen = torch.Generator(device=device).manual_seed(1000 + seed)
    opt, _ = make_optimizer(model, cfg["acc_lr"], device)
    steps, warm = cfg["acc_steps"], max(1, cfg["acc_steps"] // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    losses = []
    sync(device)
    t0 = time.perf_counter()
    model.train()
    for _ in range(steps):
        x, y = adding_batch(cfg["acc_batch"], T, gen, device)
        loss = F.mse_loss(model(x)[:, -1, 0], y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        losses.append(loss.detach())
    sync(device)
    train_s = time.perf_counter() - t0
    model.eval()
    test_gen = torch.Generator(device=device).manual_seed(424242 + T)
    errs = []
    with torch.no_grad():
        for start in range(0, cfg["acc_eval"], cfg["acc_batch"] * 4):
            n = min(cfg["acc_batch"] * 4, cfg["acc_eval"] - start)
            x, y = adding_batch(n, T, test_gen, device)
            errs.append(model(x)[:, -1, 0] - y)
    err = torch.cat(errs)
    losses = torch.stack(losses).float().cpu().tolist()
    tail = losses[-max(1, steps // 10):]
    return dict(accuracy=float((err.abs() < cfg["acc_tol"]).float().mean()),
                accuracy_tol_x2=float((err.abs() < 2 * cfg["acc_tol"]).float().mean()),
                test_mse=float((err ** 2).mean()), final_train_mse=sum(tail) / len(tail),
                train_seconds=train_s, loss_every_10=losses[::10])


def run_accuracy(cfg, device, bar):
    max_len = max(cfg["acc_seq_lens"])
    kw = model_kwargs(cfg, max_len, input_dim=2, out_dim=1)
    widths = {n: width_for_budget(n, cfg["budget"], 1, multiple=cfg["multiple"], **kw)
              for n in cfg["models"]}
    runs, skipped = [], []
    t0 = time.perf_counter()
    deadline = cfg.get("acc_deadline_s")
    for seed in cfg["acc_seeds"]:            # seeds outermost: a deadline leaves whole seeds
        for T in cfg["acc_seq_lens"]:
            for name in cfg["models"]:
                bar.update(1)
                if name == "mingru_loop" and "mingru" in cfg["models"]:
                    skipped.append(dict(model=name, T=T, seed=seed,
                                        reason="same model and weights as 'mingru' (scan), which is run"))
                    continue
                if deadline is not None and time.perf_counter() - t0 > deadline:
                    skipped.append(dict(model=name, T=T, seed=seed,
                                        reason=f"accuracy deadline of {deadline} s reached"))
                    continue
                torch.manual_seed(seed)
                model = build_model(name, 1, widths[name], **kw)
                if cfg.get("acc_gate_bias") and name in ("lstm", "gru"):
                    set_long_memory(model.rnn, cfg["acc_gate_bias"])
                model = model.to(device)
                r = dict(model=name, T=T, seed=seed, params=count_params(model))
                try:
                    r.update(train_adding(model, T, cfg, seed, device))
                except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
                    r["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                runs.append(r)
                del model
    summary = []
    for T in cfg["acc_seq_lens"]:
        for name in cfg["models"]:
            ok = [r for r in runs if r["model"] == name and r["T"] == T and "error" not in r]
            if not ok:
                continue
            acc = [r["accuracy"] for r in ok]
            acc2 = [r["accuracy_tol_x2"] for r in ok]
            mse = [r["test_mse"] for r in ok]
            summary.append(dict(model=name, T=T, n_seeds=len(ok),
                                accuracy_mean=statistics.fmean(acc),
                                accuracy_std=statistics.stdev(acc) if len(acc) > 1 else 0.0,
                                accuracy_tol_x2_mean=statistics.fmean(acc2),
                                test_mse_mean=statistics.fmean(mse),
                                test_mse_std=statistics.stdev(mse) if len(mse) > 1 else 0.0,
                                train_seconds_mean=statistics.fmean(r["train_seconds"] for r in ok)))
    return dict(task="adding problem", variant="le2015 (Le, Jaitly & Hinton 2015)",
                input="(value ~ U(0,1), marker), one marker per half",
                target="sum of the two marked values, read at the last step",
                criterion=f"|prediction - target| < {cfg['acc_tol']}", tolerance=cfg["acc_tol"],
                baseline_mse_predict_1=1 / 6,
                baseline_accuracy_predict_1=1 - (1 - cfg["acc_tol"]) ** 2,
                baseline_accuracy_tol_x2_predict_1=1 - (1 - 2 * cfg["acc_tol"]) ** 2,
                gate_bias=cfg.get("acc_gate_bias", 0.0),
                init=("LSTM b_f = -b_i = gate_bias, GRU b_z = gate_bias in every layer "
                      "(experiments/adding_gated.set_long_memory); others PyTorch's default"
                      if cfg.get("acc_gate_bias") else "PyTorch's default"),
                steps=cfg["acc_steps"], batch=cfg["acc_batch"], lr=cfg["acc_lr"],
                schedule="AdamW, linear warm-up 10% then cosine, clip 1.0, float32 (TF32 flags)",
                eval_sequences=cfg["acc_eval"], seeds=cfg["acc_seeds"], seq_lens=cfg["acc_seq_lens"],
                models={n: dict(d_model=widths[n]) for n in cfg["models"]},
                runs=runs, skipped=skipped, summary=summary)


# --------------------------------------------------------------------------------------------
# (c) streaming inference
# --------------------------------------------------------------------------------------------
def _stream_fn(model, S, tok, device, dtype):
    """Prefill a context of S random tokens; return (one-step function, bytes the stream holds)."""
    gen = torch.Generator(device=device).manual_seed(S)
    prompt = torch.randint(0, model.head.out_features, (1, S), device=device, generator=gen)
    if isinstance(model, RecurrentLM):
        _, state = model(prompt, return_state=True)
        state = tuple(s.contiguous() for s in state) if isinstance(state, tuple) else state.contiguous()

        def fn():
            logits, new = model.step(tok, state)
            for old, nw in zip(state if isinstance(state, tuple) else (state,),
                               new if isinstance(new, tuple) else (new,)):
                old.copy_(nw)
            return logits

        return fn, RecurrentLM.state_nbytes(state)
    cache = model.init_cache(1, max_len=S + 1, dtype=dtype)
    model.prefill(prompt, cache)

    def fn():
        cache.pos = S                      # every timed token is the (S+1)-th
        logits, _ = model.step(tok, cache)
        return logits

    return fn, cache.nbytes_used(S)


def time_stream(fn, n_warm, n_timed, device, graph):
    """Per-token milliseconds of ``fn`` (eager, or replayed from a captured CUDA graph)."""
    call = fn
    if graph:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream(device).wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
        call = g.replay
    for _ in range(n_warm):
        call()
    timer = Timer(device, n_timed + 1)
    timer.mark(0)
    for i in range(n_timed):
        call()
        timer.mark(i + 1)
    return timer.intervals_ms()


def run_streaming(cfg, device, models, bar):
    out = []
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    graph_modes = [False, True] if (cfg["cuda_graphs"] and device.type == "cuda") else [False]
    for dname in cfg["stream_dtypes"]:
        dtype = dtypes[dname]
        for name, base in models.items():
            model = copy.deepcopy(base).to(device=device, dtype=dtype).eval()
            weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
            for S in cfg["stream_contexts"]:
                for graph in graph_modes:
                    r = dict(model=name, dtype=dname, context=S,
                             execution="cuda_graph" if graph else "eager",
                             weight_bytes=weight_bytes)
                    try:
                        with torch.no_grad():
                            tok = torch.zeros(1, dtype=torch.long, device=device)
                            fn, held = _stream_fn(model, S, tok, device, dtype)
                            ms = time_stream(fn, cfg["stream_warmup"], cfg["stream_tokens"], device,
                                             graph)
                        r.update(state_bytes=held, median_ms=statistics.median(ms),
                                 p99_ms=percentile(ms, 99), mean_ms=statistics.fmean(ms),
                                 n_timed=len(ms), ms_per_token=[round(v, 6) for v in ms])
                    except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
                        r["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                    out.append(r)
                    bar.update(1)
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    el = {"fp32": 4, "fp16": 2, "bf16": 2}
    crossover = {}
    for dname in cfg["stream_dtypes"] if "transformer" in models else []:
        tf = models["transformer"]
        kv_per_token = 2 * tf.n_layers * tf.d_model * el[dname]
        weight_bytes = count_params(tf) * el[dname]
        crossover[dname] = dict(kv_bytes_per_token=kv_per_token, weight_bytes=weight_bytes,
                                context_where_kv_equals_weights=weight_bytes / kv_per_token)
    return dict(batch=1, contexts=cfg["stream_contexts"], dtypes=cfg["stream_dtypes"],
                warmup_tokens=cfg["stream_warmup"], timed_tokens=cfg["stream_tokens"],
                kv_vs_weights=crossover, results=out)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------
def write_json(result, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)


def run_benchmark(cfg, device="auto", out=None, progress=True, command=None, commit=None,
                  tf32=True):
    """Run the parts in ``cfg['parts']`` and return the result dict (also written to ``out``).

    Global torch settings (TF32 flags, cuDNN benchmark mode, CPU threads) are set for the run and
    restored afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, torch.get_num_threads())
    try:
        return _run_benchmark(cfg, device, out, progress, command, commit, tf32)
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = saved[:3]
        torch.set_num_threads(saved[3])


def _run_benchmark(cfg, device, out, progress, command, commit, tf32):
    t_start, cpu_start = time.perf_counter(), time.process_time()
    device = pick_device(device)
    if device.type == "cpu" and cfg.get("cpu_threads"):
        torch.set_num_threads(cfg["cpu_threads"])
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    info = device_info(device)
    peaks = peak_table(info)
    sha, sha_source = git_commit(commit)
    result = dict(
        schema_version=SCHEMA_VERSION,
        meta=dict(
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            command=command or "python benchmarks/gpu_compare.py (called as a function)",
            git_commit=sha, git_commit_source=sha_source, host=platform.node(),
            load_average_at_start=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            cpu_count=os.cpu_count(),
            python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            device=info, peak_tflops=peaks,
            tf32=dict(matmul=torch.backends.cuda.matmul.allow_tf32,
                      cudnn=torch.backends.cudnn.allow_tf32),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            float32_matmul_precision=torch.get_float32_matmul_precision(),
            timer="torch.cuda.Event" if device.type == "cuda" else "time.perf_counter",
            notes=NOTES),
        config={k: v for k, v in cfg.items()},
    )
    max_len = max(cfg["seq_lens"] + [c + 1 for c in cfg["stream_contexts"]])
    models = make_models(cfg, cfg["vocab"], max_len, cfg["seed"])
    result["models"] = {n: dict(describe(m), flops_per_token_train={
        str(T): flops_per_token(m, T) for T in cfg["seq_lens"]}) for n, m in models.items()}
    models = {n: m.to(device) for n, m in models.items()}
    rng = random.Random(cfg["seed"])

    parts = cfg["parts"]
    total = ((count_throughput_units(cfg, device) if "throughput" in parts else 0)
             + (len(cfg["acc_seq_lens"]) * len(cfg["acc_seeds"]) * len(cfg["models"])
                if "accuracy" in parts else 0)
             + (len(cfg["stream_dtypes"]) * len(cfg["models"]) * len(cfg["stream_contexts"])
                * (2 if cfg["cuda_graphs"] and device.type == "cuda" else 1)
                if "streaming" in parts else 0))
    with tqdm(total=total, desc=f"gpu_compare [{info['name']}]", disable=not progress) as bar:
        for part in ("throughput", "streaming", "accuracy"):
            if part not in parts:
                continue
            t0 = time.perf_counter()
            bar.set_postfix_str(part)
            if part == "throughput":
                result["throughput"] = run_throughput(cfg, device, models, peaks, bar, rng)
            elif part == "streaming":
                result["streaming"] = run_streaming(cfg, device, models, bar)
            else:
                result["accuracy"] = run_accuracy(cfg, device, bar)
            result.setdefault("seconds", {})[part] = time.perf_counter() - t0
            if out:
                write_json(result, out)
    result.setdefault("seconds", {})["total"] = time.perf_counter() - t_start
    result["seconds"]["total_process_cpu"] = time.process_time() - cpu_start
    if out:
        write_json(result, out)
    return result


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny CPU configuration (< 40 s)")
    p.add_argument("--out", help="JSON path (default: benchmarks/results/<gpu_slug|cpu_quick>.json, "
                                 "with _<models> appended when --models is not the default four)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--parts", help="comma list of throughput,accuracy,streaming")
    p.add_argument("--models", help=f"comma list of {','.join(ALL_MODEL_NAMES)} "
                                    f"(default: {','.join(MODEL_NAMES)})")
    p.add_argument("--budget", type=int, help="parameter budget of every model")
    p.add_argument("--tokens-per-batch", type=int, help="tokens per training batch (part a)")
    p.add_argument("--cpu-threads", type=int, help="torch threads on a CPU device")
    p.add_argument("--seq-lens", help="comma list overriding the throughput T values")
    p.add_argument("--acc-seq-lens", help="comma list overriding the adding-problem T values")
    p.add_argument("--acc-steps", type=int)
    p.add_argument("--acc-batch", type=int, help="adding-problem sequences per step")
    p.add_argument("--acc-eval", type=int, help="adding-problem test sequences per run")
    p.add_argument("--acc-gate-bias", type=float,
                   help="LSTM b_f = -b_i, GRU b_z at the start (0: PyTorch's initialisation)")
    p.add_argument("--acc-deadline-s", type=float, help="skip adding-problem runs after this many s")
    p.add_argument("--acc-seeds", help="comma list of seeds")
    p.add_argument("--stream-contexts", help="comma list of contexts")
    p.add_argument("--stream-tokens", type=int)
    p.add_argument("--stream-warmup", type=int)
    p.add_argument("--stream-dtypes", help="comma list of fp32,fp16,bf16 (streaming weights)")
    p.add_argument("--warmup-steps", type=int, help="least warm-up steps per configuration (part a)")
    p.add_argument("--repeats", type=int)
    p.add_argument("--modes", help="comma list of fp32,bf16,fp16")
    p.add_argument("--no-tf32", action="store_true", help="disable both TF32 switches")
    p.add_argument("--commit", help="git commit to record when .git is not available")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def config_from_args(args):
    cfg = copy.deepcopy(QUICK if args.quick else FULL)
    ints = lambda s: [int(v) for v in s.split(",")]   # noqa: E731
    for key, conv in (("seq_lens", ints), ("acc_seq_lens", ints), ("acc_seeds", ints),
                      ("stream_contexts", ints), ("modes", lambda s: s.split(",")),
                      ("parts", lambda s: s.split(",")), ("models", lambda s: s.split(",")),
                      ("stream_dtypes", lambda s: s.split(","))):
        v = getattr(args, key)
        if v:
            cfg[key] = conv(v)
    for key in ("acc_steps", "acc_batch", "acc_eval", "acc_gate_bias", "acc_deadline_s", "stream_tokens", "stream_warmup", "repeats", "budget",
                "tokens_per_batch", "cpu_threads", "warmup_steps"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    unknown = [m for m in cfg["models"] if m not in ALL_MODEL_NAMES]
    if unknown or len(set(cfg["models"])) != len(cfg["models"]):
        raise SystemExit(f"--models: expected distinct names from {ALL_MODEL_NAMES}, got {cfg['models']}")
    return cfg


def main(argv=None):
    """Command-line entry point; returns the result dict."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cfg = config_from_args(args)
    device = "cpu" if args.quick and args.device == "auto" else args.device
    out = args.out
    if out is None:
        info = device_info(pick_device(device))
        name = "cpu_quick" if args.quick else (
            f"gpu_{device_slug(info)}" if info["type"] == "cuda" else "cpu_full")
        if cfg["models"] != list(MODEL_NAMES):     # never overwrite the four-model results
            name += "_" + "-".join(cfg["models"])
        out = ROOT / "benchmarks" / "results" / f"{name}.json"
    command = "python benchmarks/gpu_compare.py " + shlex.join(argv)
    result = run_benchmark(cfg, device=device, out=out, progress=not args.no_progress,
                           command=command.strip(), commit=args.commit, tf32=not args.no_tf32)
    print(summary_table(result))
    print(f"wrote {out}")
    return result


def summary_table(result):
    """A short plain-text summary of a result dict."""
    lines = [f"device: {result['meta']['device']['name']}  torch {result['meta']['torch']}"]
    for n, m in result["models"].items():
        lines.append(f"  {n:<12} d_model={m['d_model']:<5} params={m['params']:,}")
    if "throughput" in result:
        lines.append("throughput (tokens/s, median):")
        for r in result["throughput"]["results"]:
            val = f"{r['tokens_per_s']:>14,.0f}" if "tokens_per_s" in r else "  " + r.get("error", "")
            mem = r.get("memory") or {}
            lines.append(f"  {r['model']:<12} T={r['T']:<6} {r['mode']:<5} core={r.get('core_dtype')!s:<9}"
                         f"{val}  peak={mem.get('peak_allocated_bytes', 0) / 2**20:8.1f} MiB"
                         + (f"  MFU={r['mfu']:.3f}" if r.get("mfu") is not None else ""))
    if "accuracy" in result:
        lines.append("adding problem accuracy (mean +- std over seeds):")
        for r in result["accuracy"]["summary"]:
            lines.append(f"  {r['model']:<12} T={r['T']:<6} acc={r['accuracy_mean']:.3f} "
                         f"+- {r['accuracy_std']:.3f}  mse={r['test_mse_mean']:.4f}  "
                         f"{r['train_seconds_mean']:.1f} s/run")
    if "streaming" in result:
        lines.append("streaming (ms/token, median / p99; bytes held per stream):")
        for r in result["streaming"]["results"]:
            if "error" in r:
                lines.append(f"  {r['model']:<12} {r['dtype']} S={r['context']:<6} {r['execution']:<10} "
                             f"{r['error']}")
                continue
            lines.append(f"  {r['model']:<12} {r['dtype']} S={r['context']:<6} {r['execution']:<10} "
                         f"{r['median_ms']:.4f} / {r['p99_ms']:.4f}  {r['state_bytes']:,} B")
    lines.append("seconds: " + ", ".join(f"{k}={v:.1f}" for k, v in result.get("seconds", {}).items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
