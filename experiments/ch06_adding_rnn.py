"""The adding problem for a vanilla (tanh) RNN written with rnnlib, at several lengths T (chapter 6).

Data: :func:`rnnlib.data.adding_problem`, variant ``"hochreiter1997"`` (Hochreiter & Schmidhuber 1997:
values in [-1, 1], markers in {1, 0, -1}, X1 among the first 10 pairs, X2 among the first T/2 - 1,
target ``0.5 + (X1 + X2) / 4``), every sequence of length exactly ``T`` (the paper draws lengths in
[T, T + T/10]). A sequence counts as solved if ``|prediction - target| < 0.04``
(:func:`rnnlib.data.adding_accuracy`, the paper's criterion).

Model: ``rnnlib.train.rnn_regression_step`` (chapter 5's model): ``rnnlib.sequence.rnn_forward`` with
``--hidden`` tanh units, a linear read-out of the last state (``linear_forward``), mean squared error at
the last step only, full BPTT (``rnn_backward``), gradient norm clipped to ``--clip`` (``rnnlib.optim.clip_grad_norm``, inside
``rnnlib.train.fit``), Adam. Weights drawn like PyTorch's defaults, U(-1/sqrt(H), 1/sqrt(H)).

Every minibatch is made of fresh sequences (``--batch`` of them); the training data depend only on
``(seed, T, step)``. Every ``--eval-every`` steps the accuracy on a validation set is recorded, and a
run stops once it reaches ``--solved``. The parameters with the best validation accuracy are kept,
and their accuracy is measured on a separate test set of ``--test`` sequences, together with the
baseline that always predicts the mean training target.

Writes JSON (default ``experiments/results/ch06_adding_rnn.json``) with the configuration, one
record per T, and the provenance: command, git commit, date, machine, versions, run time.

    nice python experiments/ch06_adding_rnn.py                                    # the committed results
    python experiments/ch06_adding_rnn.py --lengths 10 --steps 4 --eval-every 2 --out /tmp/tiny.json
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from rnnlib import optim, train
from rnnlib.data import adding_accuracy, adding_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance as prov  # noqa: E402  (one provenance module for every experiment script)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "experiments" / "results" / "ch06_adding_rnn.json"
VARIANT = "hochreiter1997"
DEFAULTS = dict(lengths=[10, 20, 50, 100, 200], hidden=32, lr=3e-3, batch=32, steps=5000, clip=1.0,
                eval_every=100, val=1000, test=2000, solved=0.99, seed=0)


def data_seed(seed, T, part, step=0):
    """Seed of one block of data: different for every (T, part, step)."""
    return int(np.random.SeedSequence([seed, T, part, step]).generate_state(1)[0])


def evaluate(params, X, y, batch=500):
    """Accuracy (``|error| < 0.04``) and mean squared error on ``(X, y)``."""
    pred = np.concatenate([train.rnn_regression_forward(params, X[i:i + batch])[0] for i in range(0, len(X), batch)])
    return adding_accuracy(pred, y), float(np.mean((pred - y) ** 2))


class Solved(Exception):
    """Raised by the validation callback to stop a run that has solved the task."""


def train_one(T, cfg, progress=True):
    """Train one RNN on the adding problem of length ``T``; return its record (a dict)."""
    params = train.rnn_regression_params(2, cfg["hidden"], np.random.default_rng(data_seed(cfg["seed"], T, 0)))
    X_val, y_val = adding_problem(cfg["val"], T, seed=data_seed(cfg["seed"], T, 1), variant=VARIANT)
    X_test, y_test = adding_problem(cfg["test"], T, seed=data_seed(cfg["seed"], T, 2), variant=VARIANT)
    # fit's "epoch" is one block of eval_every fresh minibatches; validation after each block.
    blocks = -(-cfg["steps"] // cfg["eval_every"])

    def block(b):
        first, last = b * cfg["eval_every"], min((b + 1) * cfg["eval_every"], cfg["steps"])
        return [adding_problem(cfg["batch"], T, seed=data_seed(cfg["seed"], T, 3, s), variant=VARIANT)
                for s in range(first, last)]

    curve, best = [], {"acc": -1.0}

    def val_fn(p):
        acc, mse = evaluate(p, X_val, y_val)
        steps = min((len(curve) + 1) * cfg["eval_every"], cfg["steps"])
        curve.append([steps * cfg["batch"], acc, mse])
        if acc > best["acc"]:
            best.update(acc=acc, steps=steps, params={k: v.copy() for k, v in p.items()})
        if acc >= cfg["solved"]:
            raise Solved
        return mse

    start = time.perf_counter()
    try:
        train.fit(train.rnn_regression_step, params, optim.Adam(params, lr=cfg["lr"]), block, blocks, clip=cfg["clip"],
                  val_fn=val_fn, progress=progress)
    except Solved:
        pass
    seconds = time.perf_counter() - start
    steps_done = min(len(curve) * cfg["eval_every"], cfg["steps"])
    test_acc, test_mse = evaluate(best["params"], X_test, y_test)  # the parameters of the best validation
    # The baseline: always predict the mean target, estimated on 10,000 fresh training sequences.
    mean_target = float(adding_problem(10_000, T, seed=data_seed(cfg["seed"], T, 4), variant=VARIANT)[1].mean())
    base = np.full_like(y_test, mean_target)
    return {"T": T, "test_accuracy": test_acc, "test_mse": test_mse,
            "baseline_mean_prediction": mean_target, "baseline_accuracy": adding_accuracy(base, y_test),
            "baseline_mse": float(np.mean((base - y_test) ** 2)),
            "best_val_accuracy": best["acc"], "best_val_steps": best["steps"],
            "steps": steps_done, "sequences_seen": steps_done * cfg["batch"], "stopped_early": steps_done < cfg["steps"],
            "seconds": round(seconds, 2), "curve": curve}


def provenance(argv, seconds):
    return {"command": prov.command(["experiments/ch06_adding_rnn.py", *argv]),
            "git_commit": prov.git_commit(__file__), "date": prov.utc_now(),
            "machine": {"node": platform.node(), "platform": platform.platform(), "processor": platform.processor(),
                        "cpus": os.cpu_count()},
            "versions": prov.versions(np), "seconds": round(seconds, 1)}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=DEFAULTS["lengths"], help="sequence lengths T")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"], help="hidden units H")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="Adam's learning rate")
    p.add_argument("--batch", type=int, default=DEFAULTS["batch"], help="sequences per minibatch")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="most minibatches per length")
    p.add_argument("--clip", type=float, default=DEFAULTS["clip"], help="gradient-norm clipping threshold")
    p.add_argument("--eval-every", type=int, default=DEFAULTS["eval_every"], help="minibatches between validations")
    p.add_argument("--val", type=int, default=DEFAULTS["val"], help="validation sequences")
    p.add_argument("--test", type=int, default=DEFAULTS["test"], help="test sequences")
    p.add_argument("--solved", type=float, default=DEFAULTS["solved"], help="validation accuracy that stops a run")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cfg = {k: getattr(args, k) for k in DEFAULTS}
    start = time.perf_counter()
    results = []
    for T in args.lengths:
        rec = train_one(T, cfg, progress=not args.no_progress)
        print(f"T={T:4d}: test accuracy {rec['test_accuracy']:.3f} (predicting the mean: "
              f"{rec['baseline_accuracy']:.3f}), test MSE {rec['test_mse']:.4f} (mean: {rec['baseline_mse']:.4f}), "
              f"{rec['sequences_seen']} sequences, {rec['seconds']:.0f} s", flush=True)
        results.append(rec)
    out = {"experiment": "adding problem, vanilla tanh RNN (rnnlib, NumPy)", "variant": VARIANT,
           "fixed_length": True, "tolerance": 0.04, "config": cfg, "results": results,
           "provenance": provenance(argv, time.perf_counter() - start)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
