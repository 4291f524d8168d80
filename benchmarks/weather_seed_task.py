"""Seed 004's weather task trained two ways: a per-sample loop like the post's program, and rnnlib batched.

    python benchmarks/weather_seed_task.py            # 1000 train / 200 test windows, 100 epochs each way
    python benchmarks/weather_seed_task.py --quick --out /tmp/w.json   # a tiny run (for tests)

The task (seed 004): three days of (temperature, humidity, wind), each drawn from U[0, 1); the target
is the mean temperature of the three days plus N(0, 0.1) noise, so the best possible test MSE is the
noise variance, 0.01. Both contenders get the same windows, scaled with the TRAINING statistics only
(the post scales the test set with its own, the pitfall of chapter 5), the same initial weights
(the post's: N(0, 0.01^2) weights, zero biases), a tanh RNN with 64 hidden units and a linear head on the
last state, Adam, and the post's 100 epochs:

(a) ``loop``: written like the post. Column vectors, one window at a time: a Python loop over the
    3 steps forward, over the 3 steps back, and an Adam step after EVERY window (100 000 steps).
(b) ``rnnlib``: ``rnnlib.train.rnn_regression_step`` on ``rnnlib.fast``, minibatches of ``--batch`` windows
    (``rnn_forward`` over ``(B, 3, 3)``, vectorised over the batch), one Adam step per minibatch, in
    float32 (``--dtype``; what torch trains in by default). The post's loop runs in NumPy's float64;
    to separate the two effects, rnnlib is also run in float64 (``rnnlib_float64`` in the record).

Both run in this process on one BLAS thread (the matrices are small: more threads only add waiting;
set ``OPENBLAS_NUM_THREADS`` to change it), timed with ``time.perf_counter`` (wall) and ``time.process_time`` (CPU), and
evaluated by the test MSE in the original units. The last line printed is one JSON object with the keys
``loop_seconds``, ``loop_test_mse``, ``rnnlib_seconds``, ``rnnlib_test_mse`` and ``speedup`` (loop seconds /
rnnlib seconds); the full record (configuration, loss curves, machine, commit) goes to
``benchmarks/results/weather_seed_task.json`` or ``--out``.
"""
import argparse
import functools
import json
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS: one thread for both (small matrices)
import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "experiments"))

import provenance  # noqa: E402  (experiments/provenance.py)
from rnnlib import data, fast, optim, train  # noqa: E402


def seed_windows(n, seed):
    """The post's ``generate_data``: ``X (n, 3, 3)`` in U[0, 1), ``y (n, 1)`` = mean of X[:, :, 0] + N(0, 0.1)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3, 3))
    y = X[:, :, 0].mean(axis=1) + rng.normal(0.0, 0.1, n)
    return X, y.reshape(-1, 1)


def seed_init(D, H, O, seed):
    """The post's initial weights, in rnnlib's names (one hidden bias in the post: ``b_hh`` starts at 0 too)."""
    rng = np.random.default_rng(seed)
    return {"W_ih": rng.standard_normal((H, D)) * 0.01, "W_hh": rng.standard_normal((H, H)) * 0.01,
            "b_ih": np.zeros(H), "b_hh": np.zeros(H),
            "W_out": rng.standard_normal((O, H)) * 0.01, "b_out": np.zeros(O)}


# ------------------------------------------------------------------------------ (a) the post's loop --

def loop_forward(p, x):
    """The post's forward over ONE window ``x (3, D)``: column vectors, a loop over the steps.
    ``p`` holds column-vector parameters (``bh`` (H, 1), ``by`` (O, 1)); returns the states
    ``[h_0 = 0, h_1, ..., h_T]`` and the output ``(O, 1)``."""
    h = np.zeros((p["Whh"].shape[0], 1))
    hs = [h]
    for t in range(len(x)):
        h = np.tanh(np.dot(p["Wxh"], x[t].reshape(-1, 1)) + np.dot(p["Whh"], h) + p["bh"])
        hs.append(h)
    return hs, np.dot(p["Why"], h) + p["by"]


def loop_window(p, x, target):
    """Forward and backward of ONE window as the post writes it; returns ``(loss, grads)``."""
    hs, out = loop_forward(p, x)
    err = out - target.reshape(-1, 1)
    d_y = 2 * err                                    # the post's loss: sum of squared errors
    g = {k: np.zeros_like(v) for k, v in p.items()}
    g["Why"], g["by"] = np.dot(d_y, hs[-1].T), d_y
    d_h = np.dot(p["Why"].T, d_y)
    for t in reversed(range(len(x))):
        temp = (1 - hs[t + 1] ** 2) * d_h
        g["Wxh"] += np.dot(temp, x[t].reshape(1, -1))
        g["Whh"] += np.dot(temp, hs[t].T)
        g["bh"] += temp
        d_h = np.dot(p["Whh"].T, temp)
    return float(np.sum(err ** 2)), g


def to_loop_params(params):
    """rnnlib's parameter dict as the post's column-vector one (``b_ih + b_hh`` is the post's ``bh``)."""
    return {"Wxh": params["W_ih"].copy(), "Whh": params["W_hh"].copy(),
            "bh": (params["b_ih"] + params["b_hh"]).reshape(-1, 1),
            "Why": params["W_out"].copy(), "by": params["b_out"].reshape(-1, 1).copy()}


def loop_predict(p, X):
    """Predictions ``(N, O)`` of the post's model, one window at a time."""
    return np.array([loop_forward(p, x)[1].ravel() for x in X])


def train_loop(params, X, y, epochs, lr, seed, progress):
    p = to_loop_params(params)
    opt = optim.Adam(p, lr=lr)
    order_rng = np.random.default_rng(seed)
    history = []
    for _ in tqdm(range(epochs), desc="loop", disable=not progress):
        total = 0.0
        for i in order_rng.permutation(len(X)):
            loss, g = loop_window(p, X[i], y[i])
            opt.step(g)
            total += loss
        history.append(total / len(X))
    return p, history, opt.t


# ------------------------------------------------------------------------------ (b) rnnlib batched --

def train_rnnlib(params, X, y, epochs, lr, batch, progress, dtype=np.float64):
    p = {k: v.astype(dtype) for k, v in params.items()}
    X, y = X.astype(dtype), y.astype(dtype)
    opt = optim.Adam(p, lr=lr)
    history = train.fit(functools.partial(train.rnn_regression_step, layers=fast), p, opt,
                        lambda e: train.iterate_minibatches(X, y, batch, seed=e), epochs, progress=progress)
    return p, history["train_loss"], opt.t


def run(args):
    X_train, y_train = seed_windows(args.train, seed=args.seed)
    X_test, y_test = seed_windows(args.test, seed=args.seed + 1)
    x_scaler, y_scaler = data.StandardScaler().fit(X_train), data.StandardScaler().fit(y_train)
    Xs_train, Xs_test = x_scaler.transform(X_train), x_scaler.transform(X_test)
    ys_train = y_scaler.transform(y_train)
    params = seed_init(3, args.hidden, 1, seed=args.seed + 2)

    def test_mse(pred_scaled):
        return float(np.mean((y_scaler.inverse_transform(pred_scaled.astype(np.float64)) - y_test) ** 2))

    record = {"config": vars(args).copy()}
    for name in ("loop", "rnnlib", "rnnlib_float64"):
        wall, cpu = time.perf_counter(), time.process_time()
        if name == "loop":
            p, history, steps = train_loop(params, Xs_train, ys_train, args.epochs, args.loop_lr, args.seed, args.progress)
            pred = loop_predict(p, Xs_test)
        else:
            dtype = np.float64 if name == "rnnlib_float64" else np.dtype(args.dtype)
            p, history, steps = train_rnnlib(params, Xs_train, ys_train, args.epochs, args.lr, args.batch, args.progress,
                                      dtype)
            pred = train.rnn_regression_forward(p, Xs_test.astype(dtype), fast)[0]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        record[name] = {"seconds": wall, "cpu_seconds": cpu, "test_mse": test_mse(pred),
                        "dtype": "float64" if name != "rnnlib" else args.dtype,
                        "train_loss": history, "adam_steps": steps}
    record["summary"] = {
        "loop_seconds": record["loop"]["seconds"], "loop_test_mse": record["loop"]["test_mse"],
        "rnnlib_seconds": record["rnnlib"]["seconds"], "rnnlib_test_mse": record["rnnlib"]["test_mse"],
        "speedup": record["loop"]["seconds"] / record["rnnlib"]["seconds"],
        "rnnlib_dtype": args.dtype,
        "rnnlib_float64_seconds": record["rnnlib_float64"]["seconds"],
        "rnnlib_float64_test_mse": record["rnnlib_float64"]["test_mse"],
        "speedup_float64": record["loop"]["seconds"] / record["rnnlib_float64"]["seconds"],
        "noise_floor_mse": 0.01}
    load = [round(x, 2) for x in os.getloadavg()]
    record["provenance"] = {"command": provenance.command(sys.argv), "commit": provenance.git_commit(__file__),
                            "date": provenance.utc_now(), "machine": provenance.machine(load_average_after=load,
                                                                       blas_threads=os.environ["OPENBLAS_NUM_THREADS"]),
                            "versions": provenance.versions(np)}
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1000, help="training windows (the post: 1000)")
    parser.add_argument("--test", type=int, default=200, help="test windows (the post: 200)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (the post: 64)")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of each contender (the post: 100)")
    parser.add_argument("--loop-lr", type=float, default=1e-3, help="Adam step size of the loop (the post: 1e-3)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam step size of rnnlib (a minibatch step averages many windows)")
    parser.add_argument("--batch", type=int, default=200, help="rnnlib's minibatch size")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="rnnlib's dtype (torch's default, float32; the loop keeps NumPy's float64 as the "
                             "post does; rnnlib also runs in float64 for comparison)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--quick", action="store_true", help="a tiny run, to check that the script works")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "weather_seed_task.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.train, args.test, args.hidden, args.epochs = 60, 20, 8, 3
    record = run(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(json.dumps(record["summary"]))
    return record


if __name__ == "__main__":
    main()
