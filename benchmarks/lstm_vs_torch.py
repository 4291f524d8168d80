"""rnnlib's NumPy LSTM against torch.nn.LSTM on the CPU: forward + backward of a whole sequence.

    python benchmarks/lstm_vs_torch.py                 # B=32, T=64, D=64, H=128, float32 and float64
    python benchmarks/lstm_vs_torch.py --quick --out /tmp/lstm.json   # a tiny run (for tests)

Both run in this process with the same number of threads: NumPy's BLAS through the environment
variables set below before NumPy is imported, torch through ``torch.set_num_threads``. One
measurement is forward + backward for the same input and upstream gradient ``dhs``:

    rnnlib: hs, cache = lstm_forward(x, None, None, **params); lstm_backward(dhs, cache)
    torch:  out, _ = lstm(x); out.backward(dhs)          # x.requires_grad: dx is computed by both

Everything is run a few times first (BLAS buffers, oneDNN kernels, and the C allocator, whose
thresholds adapt to the first large frees: without the warm-up the first contender pays thousands
of page faults per call). Then rnnlib and torch alternate, ``--repeats`` times each, so that both
see the same machine load, and the medians are compared: ratio = rnnlib time / torch time (< 1:
rnnlib faster). The script also checks that both computed the same gradients.

Prints the ratios as JSON and writes the full record (configuration, times, machine, command,
commit, date) to ``benchmarks/results/lstm_vs_torch.json`` or ``--out``.
"""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--steps", type=int, default=64)
parser.add_argument("--inputs", type=int, default=64)
parser.add_argument("--hidden", type=int, default=128)
parser.add_argument("--repeats", type=int, default=30, help="timed runs of each contender")
parser.add_argument("--warmup", type=int, default=5, help="untimed runs of each contender first")
parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads for NumPy's BLAS and for torch (default: the CPUs this process may use)")
parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats, to check the script runs")
parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "lstm_vs_torch.json"))
args = parser.parse_args()
if args.quick:
    args.batch, args.steps, args.inputs, args.hidden, args.repeats, args.warmup = 2, 3, 4, 5, 3, 1

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads its BLAS
    os.environ[var] = str(args.threads)

import datetime  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rnnlib import gradcheck, sequence, torch_io  # noqa: E402

torch.set_num_threads(args.threads)
B, T, D, H = args.batch, args.steps, args.inputs, args.hidden


def contenders(dtype):
    """Two zero-argument functions (rnnlib, torch) doing forward + backward, and a correctness check."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(D, H, batch_first=True).to(getattr(torch, np.dtype(dtype).name))
    params = torch_io.from_torch(lstm, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    dhs = rng.standard_normal((B, T, H)).astype(dtype)
    x_t = torch.tensor(x, requires_grad=True)
    dhs_t = torch.tensor(dhs)

    def run_rnnlib():
        hs, cache = sequence.lstm_forward(x, None, None, **params)
        return sequence.lstm_backward(dhs, cache)

    def run_torch():
        x_t.grad = None
        lstm.zero_grad()
        out, _ = lstm(x_t)
        out.backward(dhs_t)

    def max_error():
        """Largest relative difference of dx, dW_ih, dW_hh (summed over elements, so float32 works)."""
        dx, _, _, dW_ih, dW_hh, _, _ = run_rnnlib()
        run_torch()
        pairs = [(dx, x_t.grad), (dW_ih, lstm.weight_ih_l0.grad), (dW_hh, lstm.weight_hh_l0.grad)]
        return max(float(np.abs(a - b.numpy()).max() / np.abs(b.numpy()).max()) for a, b in pairs)

    return run_rnnlib, run_torch, max_error


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {"cpu": model, "cpus_usable": len(os.sched_getaffinity(0)), "cpus_total": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
            "numpy_blas": f"{blas.get('name')} {blas.get('version')}", "torch": torch.__version__,
            "torch_blas": "MKL" if torch.backends.mkl.is_available() else "other",
            "torch_onednn": torch.backends.mkldnn.is_available(), "load_average_1min": os.getloadavg()[0]}


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    record = {"benchmark": "LSTM forward + backward, rnnlib (NumPy) vs torch.nn.LSTM (CPU)",
              "config": {"B": B, "T": T, "D": D, "H": H, "threads": args.threads, "repeats": args.repeats,
                         "warmup": args.warmup},
              "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
              "commit": git_commit(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "results": {}}
    runs = {dtype: contenders(dtype) for dtype in ("float32", "float64")}
    for run_rnnlib, run_torch, _ in runs.values():  # warm everything up before timing anything
        for _ in range(args.warmup):
            run_rnnlib()
            run_torch()
    for dtype, (run_rnnlib, run_torch, max_error) in runs.items():
        times = {"rnnlib": [], "torch": []}
        for _ in range(args.repeats):
            for name, fn in (("rnnlib", run_rnnlib), ("torch", run_torch)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        ms = {name: 1e3 * np.asarray(t) for name, t in times.items()}
        record["results"][dtype] = {
            "rnnlib_ms_median": round(float(np.median(ms["rnnlib"])), 3),
            "torch_ms_median": round(float(np.median(ms["torch"])), 3),
            "rnnlib_ms_min": round(float(ms["rnnlib"].min()), 3), "torch_ms_min": round(float(ms["torch"].min()), 3),
            "ratio": round(float(np.median(ms["rnnlib"]) / np.median(ms["torch"])), 3),
            "ratio_of_minima": round(float(ms["rnnlib"].min() / ms["torch"].min()), 3),
            "max_rel_difference": max_error()}
    record["machine"]["load_average_1min_after"] = os.getloadavg()[0]
    assert record["results"]["float64"]["max_rel_difference"] < 1e-7, record["results"]["float64"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    summary = {dtype: {k: r[k] for k in ("ratio", "rnnlib_ms_median", "torch_ms_median")}
               for dtype, r in record["results"].items()}
    print(json.dumps({"ratios": summary, "threads": args.threads, "written": args.out}))


if __name__ == "__main__":
    main()
