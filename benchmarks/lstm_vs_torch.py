"""rnnlib's NumPy LSTM (rnnlib.fast, and the plain rnnlib.sequence) against torch.nn.LSTM on the CPU.

Forward + backward of a whole sequence.

    python benchmarks/lstm_vs_torch.py                 # B=32, T=64, D=64, H=128, float32 and float64
    python benchmarks/lstm_vs_torch.py --threads 2     # only 2 threads (default: 1 and all usable CPUs)
    python benchmarks/lstm_vs_torch.py --quick --out /tmp/lstm.json   # a tiny run (for tests)

For each thread count, rnnlib and torch run in one process with that many threads: NumPy's BLAS
through the environment variables set before NumPy is imported (so each thread count gets its own
process), torch through ``torch.set_num_threads``. One measurement is forward + backward for the
same input and upstream gradient ``dhs``:

    fast:   hs, cache = fast.lstm_forward(x, None, None, **params); fast.lstm_backward(dhs, cache)
    plain:  the same with rnnlib.sequence (the reference: the cells step in a loop)
    torch:  out, _ = lstm(x); out.backward(dhs)          # x.requires_grad: dx is computed by all three

Everything is run a few times first (BLAS buffers, oneDNN kernels, and the C allocator, whose
thresholds adapt to the first large frees: without the warm-up the first contender pays thousands
of page faults per call). Then fast, plain and torch alternate, ``--repeats`` times each, so that
all see the same machine load, and the medians are compared: ``ratio`` = fast time / torch time
(< 1: rnnlib faster), ``plain_ratio`` = plain time / torch time. The script also checks that all
three computed the same gradients.

Prints the ratios as JSON and writes the full record (configuration, times, machine and its load,
command, commit, date) to ``benchmarks/results/lstm_vs_torch.json`` or ``--out``.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--steps", type=int, default=64)
parser.add_argument("--inputs", type=int, default=64)
parser.add_argument("--hidden", type=int, default=128)
parser.add_argument("--repeats", type=int, default=30, help="timed runs of each contender")
parser.add_argument("--warmup", type=int, default=5, help="untimed runs of each contender first")
parser.add_argument("--threads", type=lambda s: [int(k) for k in s.split(",")],
                    default=sorted({1, len(os.sched_getaffinity(0))}),
                    help="comma-separated thread counts (default: 1 and the CPUs this process may use)")
parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats, to check the script runs")
parser.add_argument("--out", default=os.path.join(HERE, "results", "lstm_vs_torch.json"))
parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one thread count, record to stdout
args = parser.parse_args()
if args.quick:
    args.batch, args.steps, args.inputs, args.hidden, args.repeats, args.warmup = 2, 3, 4, 5, 3, 1


def measure(threads):
    """Time both contenders in this process with ``threads`` threads; return the run's record."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads its BLAS
        os.environ[var] = str(threads)
    import platform

    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(HERE))
    from rnnlib import fast, sequence
    from rnnlib.torch import torch_io

    torch.set_num_threads(threads)
    B, T, D, H = args.batch, args.steps, args.inputs, args.hidden

    def contenders(dtype):
        """fast, plain and torch forward + backward as zero-argument functions, and a correctness check."""
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(D, H, batch_first=True).to(getattr(torch, dtype))
        params = torch_io.from_torch(lstm, dtype=dtype)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((B, T, D)).astype(dtype)
        dhs = rng.standard_normal((B, T, H)).astype(dtype)
        x_t = torch.tensor(x, requires_grad=True)
        dhs_t = torch.tensor(dhs)

        def run_fast():
            hs, cache = fast.lstm_forward(x, None, None, **params)
            return fast.lstm_backward(dhs, cache)

        def run_plain():
            hs, cache = sequence.lstm_forward(x, None, None, **params)
            return sequence.lstm_backward(dhs, cache)

        def run_torch():
            x_t.grad = None
            lstm.zero_grad()
            out, _ = lstm(x_t)
            out.backward(dhs_t)

        def max_difference(run_numpy):
            """Largest difference of dx, dW_ih, dW_hh relative to each array's largest entry."""
            dx, _, _, dW_ih, dW_hh, _, _ = run_numpy()
            run_torch()
            pairs = [(dx, x_t.grad), (dW_ih, lstm.weight_ih_l0.grad), (dW_hh, lstm.weight_hh_l0.grad)]
            return max(float(np.abs(a - b.numpy()).max() / np.abs(b.numpy()).max()) for a, b in pairs)

        return {"fast": run_fast, "plain": run_plain, "torch": run_torch}, max_difference

    runs = {dtype: contenders(dtype) for dtype in ("float32", "float64")}
    load_before = os.getloadavg()[0]
    for fns, _ in runs.values():  # warm everything up before timing anything
        for _ in range(args.warmup):
            for fn in fns.values():
                fn()
    results = {}
    for dtype, (fns, max_difference) in runs.items():
        wall, cpu = {name: [] for name in fns}, {name: [] for name in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(1e3 * (time.perf_counter() - start))
                cpu[name].append(1e3 * (time.process_time() - start_cpu))
        med = {name: float(np.median(t)) for name, t in wall.items()}
        med_cpu = {name: float(np.median(t)) for name, t in cpu.items()}
        results[dtype] = {"ratio": round(med["fast"] / med["torch"], 3),
                          "plain_ratio": round(med["plain"] / med["torch"], 3)}
        for name in fns:
            results[dtype].update({f"{name}_ms_median": round(med[name], 3), f"{name}_ms_min": round(min(wall[name]), 3),
                                   # CPU time of the process (all its threads): robust to other processes'
                                   # load with one thread; with several it also counts spinning threads.
                                   f"{name}_cpu_ms_median": round(med_cpu[name], 3)})
        results[dtype].update({
            "ratio_of_minima": round(min(wall["fast"]) / min(wall["torch"]), 3),
            "cpu_ratio": round(med_cpu["fast"] / med_cpu["torch"], 3),
            "plain_cpu_ratio": round(med_cpu["plain"] / med_cpu["torch"], 3),
            "max_rel_difference": max_difference(fns["fast"]),
            "plain_max_rel_difference": max_difference(fns["plain"])})
    for key in ("max_rel_difference", "plain_max_rel_difference"):
        assert results["float64"][key] < 1e-7, results["float64"]
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    machine = {"cpu": cpu, "cpus_usable": len(os.sched_getaffinity(0)), "cpus_total": os.cpu_count(),
               "platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
               "numpy_blas": f"{blas.get('name')} {blas.get('version')}", "torch": torch.__version__,
               "torch_mkl": torch.backends.mkl.is_available(), "torch_onednn": torch.backends.mkldnn.is_available()}
    return {"threads": threads, "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2), "machine": machine, "results": results}


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=HERE).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    if args.child:
        print(json.dumps(measure(args.threads[0])))
        return
    runs = []
    for threads in args.threads:  # one process per thread count: BLAS reads its count once, at import
        argv = [f"--{name}={getattr(args, name)}" for name in ("batch", "steps", "inputs", "hidden", "repeats", "warmup")]
        child = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, f"--threads={threads}", "--child"],
                               capture_output=True, text=True, check=True)
        runs.append(json.loads(child.stdout))
    record = {"benchmark": "LSTM forward + backward, rnnlib.fast and rnnlib.sequence (NumPy) vs torch.nn.LSTM (CPU)",
              "config": {"B": args.batch, "T": args.steps, "D": args.inputs, "H": args.hidden,
                         "repeats": args.repeats, "warmup": args.warmup},
              "command": " ".join(["python"] + sys.argv),
              "commit": git_commit(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": runs[0]["machine"],
              "runs": [{k: v for k, v in run.items() if k != "machine"} for run in runs]}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    ratios = {f"threads={run['threads']}": {dtype: {"fast": r["ratio"], "plain": r["plain_ratio"]}
                                             for dtype, r in run["results"].items()} for run in runs}
    print(json.dumps({"ratio_over_torch": ratios, "written": args.out}))


if __name__ == "__main__":
    main()
