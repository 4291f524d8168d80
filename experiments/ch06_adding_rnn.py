"""The adding problem for a vanilla (tanh) RNN written with rnnlib: a grid of lengths T, learning rates
and seeds (chapter 6).

Data: :func:`rnnlib.data.adding_problem`, variant ``"hochreiter1997"`` (Hochreiter & Schmidhuber 1997:
values in [-1, 1], markers in {1, 0, -1}, X1 among the first 10 pairs, X2 among the first T/2 - 1,
target ``0.5 + (X1 + X2) / 4``), every sequence of length exactly ``T`` (the paper draws lengths in
[T, T + T/10]). A sequence counts as solved if ``|prediction - target| < 0.04``
(:func:`rnnlib.data.adding_accuracy`, the paper's criterion).

Model: ``rnnlib.train.rnn_regression_step`` (chapter 5's model) on ``rnnlib.fast.rnn_forward`` with
``--hidden`` tanh units, a linear read-out of the last state (``linear_forward``), mean squared error at
the last step only, full BPTT (``rnn_backward``), gradient norm clipped to ``--clip``
(``rnnlib.optim.clip_grad_norm``, inside ``rnnlib.train.fit``), Adam. Weights drawn like PyTorch's
defaults, U(-1/sqrt(H), 1/sqrt(H)): the same model as ``torch.nn.RNN`` with a linear head.

One run per (T, learning rate, seed). Every minibatch is made of fresh sequences (``--batch`` of them);
the initial weights and the training data depend only on ``(seed, T)`` and ``(seed, T, step)``, so the
learning rates of one seed are compared on the same start and the same data. Every ``--eval-every``
steps the accuracy on a validation set is recorded, and a run stops once it reaches ``--solved``
(at most ``--steps`` minibatches: the budget). The parameters with the best validation accuracy are
kept, and their accuracy is measured on a separate test set of ``--test`` sequences, together with the
baseline that always predicts the mean training target.

Writes JSON (default ``experiments/results/ch06_adding_rnn.json``) with the configuration, one
record per run and the provenance: command, git commit, date, machine, versions, run time. The file is
rewritten after every run (``"complete": false`` until the last), so a long grid can be watched.

    nice python experiments/ch06_adding_rnn.py --no-progress     # the committed results (~30 min, 1 core)
    python experiments/ch06_adding_rnn.py --quick --out /tmp/tiny.json       # seconds: the test's run

A grid can be split over processes (``--lengths``, ``--seeds``) and the parts merged into one record:

    python experiments/ch06_adding_rnn.py --merge part1.json part2.json --out merged.json

The merged record keeps every run once (the first file that has it wins), in grid order, and the
provenance of every part under ``provenance["parts"]``; the configurations must agree on everything
but ``lengths``, ``seeds`` and ``lrs``. ``complete`` says whether every (T, lr, seed) of the merged
lists is there (parts may leave some learning rates out at some lengths).
"""
import argparse
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from rnnlib import fast, optim, train
from rnnlib.data import adding_accuracy, adding_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance as prov  # noqa: E402  (one provenance module for every experiment script)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "experiments" / "results" / "ch06_adding_rnn.json"
VARIANT = "hochreiter1997"
DEFAULTS = dict(lengths=[10, 20, 30, 50, 100], lrs=[1e-3, 3e-3, 1e-2], seeds=[0, 1, 2], hidden=32,
                batch=64, steps=10_000, clip=1.0, eval_every=200, val=1000, test=2000, solved=0.99)
# --quick: the configuration of the test (seconds)
QUICK = dict(DEFAULTS, lengths=[10, 12], lrs=[1e-3, 1e-2], seeds=[0, 1], hidden=4, batch=16, steps=4,
             eval_every=2, val=50, test=60)


def data_seed(seed, T, part, step=0):
    """Seed of one block of data: different for every (T, part, step)."""
    return int(np.random.SeedSequence([seed, T, part, step]).generate_state(1)[0])


def evaluate(params, X, y, batch=500):
    """Accuracy (``|error| < 0.04``) and mean squared error on ``(X, y)``."""
    pred = np.concatenate([train.rnn_regression_forward(params, X[i:i + batch], fast)[0] for i in range(0, len(X), batch)])
    return adding_accuracy(pred, y), float(np.mean((pred - y) ** 2))


class Solved(Exception):
    """Raised by the validation callback to stop a run that has solved the task."""


def train_one(T, lr, seed, cfg, progress=True):
    """Train one RNN on the adding problem of length ``T`` with Adam's learning rate ``lr``, from the
    weights and data of ``seed``; return its record (a dict)."""
    params = train.rnn_regression_params(2, cfg["hidden"], np.random.default_rng(data_seed(seed, T, 0)))
    X_val, y_val = adding_problem(cfg["val"], T, seed=data_seed(seed, T, 1), variant=VARIANT)
    X_test, y_test = adding_problem(cfg["test"], T, seed=data_seed(seed, T, 2), variant=VARIANT)
    # fit's "epoch" is one block of eval_every fresh minibatches; validation after each block.
    blocks = -(-cfg["steps"] // cfg["eval_every"])

    def block(b):
        first, last = b * cfg["eval_every"], min((b + 1) * cfg["eval_every"], cfg["steps"])
        return [adding_problem(cfg["batch"], T, seed=data_seed(seed, T, 3, s), variant=VARIANT)
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
        train.fit(functools.partial(train.rnn_regression_step, layers=fast), params, optim.Adam(params, lr=lr), block, blocks, clip=cfg["clip"],
                  val_fn=val_fn, progress=progress)
    except Solved:
        pass
    seconds = time.perf_counter() - start
    steps_done = min(len(curve) * cfg["eval_every"], cfg["steps"])
    test_acc, test_mse = evaluate(best["params"], X_test, y_test)  # the parameters of the best validation
    # The baseline: always predict the mean target, estimated on 10,000 fresh training sequences.
    mean_target = float(adding_problem(10_000, T, seed=data_seed(seed, T, 4), variant=VARIANT)[1].mean())
    base = np.full_like(y_test, mean_target)
    return {"T": T, "lr": lr, "seed": seed, "test_accuracy": test_acc, "test_mse": test_mse,
            "baseline_mean_prediction": mean_target, "baseline_accuracy": adding_accuracy(base, y_test),
            "baseline_mse": float(np.mean((base - y_test) ** 2)),
            "best_val_accuracy": best["acc"], "best_val_steps": best["steps"],
            "steps": steps_done, "sequences_seen": steps_done * cfg["batch"],
            "solved": best["acc"] >= cfg["solved"], "stopped_early": steps_done < cfg["steps"],
            "seconds": round(seconds, 2), "curve": curve}


def provenance(argv, commit, seconds):
    """Where the results came from. ``commit`` is taken when the run starts (others may commit meanwhile)."""
    return {"command": prov.command(["experiments/ch06_adding_rnn.py", *argv]),
            "git_commit": commit, "date": prov.utc_now(),
            "machine": {"node": platform.node(), "platform": platform.platform(), "processor": platform.processor(),
                        "cpus": os.cpu_count()},
            "versions": prov.versions(np), "seconds": round(seconds, 1)}


def merge(paths, argv):
    """One record from the records in ``paths`` (see the module docstring)."""
    parts = [json.loads(Path(f).read_text()) for f in paths]
    free = ("lengths", "seeds", "lrs")
    cfg = {k: v for k, v in parts[0]["config"].items() if k not in free}
    for f, part in zip(paths, parts):
        other = {k: v for k, v in part["config"].items() if k not in free}
        if other != cfg:
            raise ValueError(f"{f}: its configuration differs from {paths[0]}'s: {other} != {cfg}")
    runs = {}
    for part in parts:
        for r in part["results"]:
            runs.setdefault((r["T"], r["lr"], r["seed"]), r)
    cfg["lengths"] = sorted({T for T, _, _ in runs})
    cfg["seeds"] = sorted({s for _, _, s in runs})
    cfg["lrs"] = sorted({lr for _, lr, _ in runs})
    grid = [(T, lr, s) for T in cfg["lengths"] for lr in cfg["lrs"] for s in cfg["seeds"]]
    merged = {k: v for k, v in parts[0].items() if k not in ("config", "results", "provenance", "complete")}
    merged.update(config=cfg, results=[runs[key] for key in grid if key in runs],
                  complete=all(key in runs for key in grid))
    merged["provenance"] = dict(provenance(argv, prov.git_commit(__file__), sum(p["provenance"]["seconds"] for p in parts)),
                                parts=[dict(p["provenance"], **{k: p["config"][k] for k in free},
                                            runs=len(p["results"]), complete=p.get("complete", True)) for p in parts])
    return merged


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=DEFAULTS["lengths"], help="sequence lengths T")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"], help="hidden units H")
    p.add_argument("--lrs", type=float, nargs="+", default=DEFAULTS["lrs"], help="Adam's learning rates")
    p.add_argument("--seeds", type=int, nargs="+", default=DEFAULTS["seeds"], help="seeds (weights and data)")
    p.add_argument("--batch", type=int, default=DEFAULTS["batch"], help="sequences per minibatch")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="the budget: most minibatches per run")
    p.add_argument("--clip", type=float, default=DEFAULTS["clip"], help="gradient-norm clipping threshold")
    p.add_argument("--eval-every", type=int, default=DEFAULTS["eval_every"], help="minibatches between validations")
    p.add_argument("--val", type=int, default=DEFAULTS["val"], help="validation sequences")
    p.add_argument("--test", type=int, default=DEFAULTS["test"], help="test sequences")
    p.add_argument("--solved", type=float, default=DEFAULTS["solved"], help="validation accuracy that stops a run")
    p.add_argument("--quick", action="store_true", help="a tiny grid in seconds (the test's configuration); "
                   "options given explicitly still override it")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--merge", type=Path, nargs="+", metavar="JSON", help="merge these records into --out; no training")
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.merge:
        out = merge(args.merge, argv)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
        print(f"merged {len(out['results'])} runs (complete: {out['complete']}) into {args.out}")
        return out
    base = QUICK if args.quick else DEFAULTS
    given = {a.split("=")[0][2:].replace("-", "_") for a in argv if a.startswith("--")}
    cfg = {k: getattr(args, k) if k in given else base[k] for k in DEFAULTS}
    start, commit = time.perf_counter(), prov.git_commit(__file__)
    results = []
    out = {"experiment": "adding problem, vanilla tanh RNN (rnnlib, NumPy): lengths x learning rates x seeds",
           "variant": VARIANT, "fixed_length": True, "tolerance": 0.04, "config": cfg, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = [(T, lr, seed) for T in cfg["lengths"] for lr in cfg["lrs"] for seed in cfg["seeds"]]
    for k, (T, lr, seed) in enumerate(runs):
        rec = train_one(T, lr, seed, cfg, progress=not args.no_progress)
        print(f"[{k + 1}/{len(runs)}] T={T:4d} lr={lr:g} seed={seed}: test accuracy {rec['test_accuracy']:.3f} "
              f"(predicting the mean: {rec['baseline_accuracy']:.3f}), test MSE {rec['test_mse']:.4f} "
              f"(mean: {rec['baseline_mse']:.4f}), {rec['steps']} steps, {rec['seconds']:.0f} s", flush=True)
        results.append(rec)
        out.update(complete=k + 1 == len(runs), provenance=provenance(argv, commit, time.perf_counter() - start))
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
