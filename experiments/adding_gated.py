"""The adding problem for a vanilla RNN, an LSTM and a GRU at several lengths (chapters 7 and 8).

Data: :func:`rnnlib.data.adding_problem`, variant ``"hochreiter1997"`` (values in [-1, 1], markers
in {1, 0, -1}, target ``0.5 + (X1 + X2) / 4``), fixed length ``T``. A sequence counts as solved if
``|prediction - target| < 0.04`` (:func:`rnnlib.data.adding_accuracy`, the 1997 paper's criterion).

Models: ``torch.nn.RNN`` (tanh), ``torch.nn.LSTM`` or ``torch.nn.GRU`` with ``--hidden`` units and a
linear read-out of the last state, on the CPU. PyTorch's default initialisation, except that the gated
models start with a long memory (``--gate-bias b``): the LSTM's forget-gate bias is ``b`` and its
input-gate bias ``-b`` (a fixed-value version of the "chrono" initialisation of Tallec & Ollivier,
2018; the memory time scale is about ``1 + exp(b)`` steps), the GRU's update-gate bias is ``b``.
The model ``lstm_default`` is the LSTM left at PyTorch's initialisation. Loss: mean squared error at
the last step only. Adam, gradient norm clipped to ``--clip``.

The same training budget for every model: at most ``--steps`` minibatches of ``--batch`` fresh
sequences. The training batches depend only on ``(seed, T, step)``, so every model sees exactly the
same sequences. Every ``--eval-every`` steps the accuracy on a validation set is recorded; a run
stops early once it reaches ``--solved`` (the task is then solved; training on would only cost time).
The final accuracy is measured on a separate test set of ``--test`` sequences.

Writes JSON (default ``experiments/results/adding_gated.json``) with the configuration, one record
per (model, T) and the provenance: command, git commit, date, machine, versions, run time.

    nice python experiments/adding_gated.py                     # the committed results (minutes)
    python experiments/adding_gated.py --lengths 10 --steps 5 --out /tmp/tiny.json   # a smoke test
"""
import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from rnnlib.data import adding_accuracy, adding_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance as prov  # noqa: E402  (one provenance module for every experiment script)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "experiments" / "results" / "adding_gated.json"
# Model name -> torch module. "lstm_default" is the LSTM left at PyTorch's initialisation (--gate-bias
# ignored), to show what the gate biases are for.
MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU, "lstm_default": nn.LSTM}
VARIANT = "hochreiter1997"
TOLERANCE = 0.04


def set_long_memory(rnn, gate_bias):
    """Start every layer of an ``nn.LSTM`` or ``nn.GRU`` with a long memory, in place.

    LSTM: forget gate f (rows H:2H) open and input gate i (rows 0:H) mostly shut,
    ``b_f = -b_i = gate_bias`` (a fixed-value version of Tallec & Ollivier's chrono initialisation).
    GRU: the update gate z (rows H:2H) does both jobs, ``h = (1 - z) n + z h_prev``: keep with z,
    write with 1 - z; ``b_z = gate_bias`` is the same start as the LSTM's. The summed bias
    ``b_ih + b_hh`` of each gate gets the value (``b_hh`` of those rows is set to 0).
    """
    H = rnn.hidden_size
    if not isinstance(rnn, (nn.LSTM, nn.GRU)):
        raise ValueError(f"rnn: expected an nn.LSTM or nn.GRU, got {type(rnn).__name__}")
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
            b_ih[H:2 * H], b_hh[H:2 * H] = gate_bias, 0.0
            if isinstance(rnn, nn.LSTM):
                b_ih[:H], b_hh[:H] = -gate_bias, 0.0


class AddingNet(nn.Module):
    """A one-layer recurrent network read out by a linear layer at its last step."""

    def __init__(self, kind, hidden, gate_bias=0.0):
        super().__init__()
        if kind not in MODULES:
            raise ValueError(f"kind: expected one of {sorted(MODULES)}, got {kind!r}")
        self.rnn = MODULES[kind](2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        if gate_bias and kind in ("lstm", "gru"):
            set_long_memory(self.rnn, gate_bias)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def data_seed(seed, T, part, step=0):
    """Seed of one block of data: the same for every model, different for every (T, part, step)."""
    return int(np.random.SeedSequence([seed, T, part, step]).generate_state(1)[0])


def evaluate(model, X, y, batch=1000):
    """Accuracy (``|error| < 0.04``) and mean squared error of ``model`` on ``(X, y)`` (NumPy arrays)."""
    model.eval()
    with torch.no_grad():
        pred = np.concatenate([model(torch.from_numpy(X[i:i + batch])).numpy() for i in range(0, len(X), batch)])
    model.train()
    return adding_accuracy(pred.astype(np.float64), y.astype(np.float64)), float(np.mean((pred - y) ** 2))


def train_one(kind, T, cfg, progress=True):
    """Train one model on the adding problem of length ``T``; return its record (a dict)."""
    torch.manual_seed(data_seed(cfg["seed"], T, 0))  # the same initial weights for a model at every run
    model = AddingNet(kind, cfg["hidden"], cfg["gate_bias"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    X_val, y_val = adding_problem(cfg["val"], T, seed=data_seed(cfg["seed"], T, 1), variant=VARIANT, dtype=np.float32)
    X_test, y_test = adding_problem(cfg["test"], T, seed=data_seed(cfg["seed"], T, 2), variant=VARIANT,
                                    dtype=np.float32)
    curve = []  # (sequences seen, validation accuracy, validation MSE)
    start = time.perf_counter()
    steps_done = 0
    bar = tqdm(range(cfg["steps"]), desc=f"{kind:4s} T={T}", leave=False, disable=not progress)
    for step in bar:
        X, y = adding_problem(cfg["batch"], T, seed=data_seed(cfg["seed"], T, 3, step), variant=VARIANT,
                              dtype=np.float32)
        loss = torch.mean((model(torch.from_numpy(X)) - torch.from_numpy(y)) ** 2)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
        steps_done = step + 1
        if steps_done % cfg["eval_every"] == 0 or steps_done == cfg["steps"]:
            acc, mse = evaluate(model, X_val, y_val)
            curve.append([steps_done * cfg["batch"], acc, mse])
            bar.set_postfix(val_acc=f"{acc:.3f}", val_mse=f"{mse:.4f}")
            if acc >= cfg["solved"]:
                break
    test_acc, test_mse = evaluate(model, X_test, y_test)
    return {"model": kind, "T": T, "test_accuracy": test_acc, "test_mse": test_mse,
            "steps": steps_done, "sequences_seen": steps_done * cfg["batch"],
            "stopped_early": steps_done < cfg["steps"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "seconds": round(time.perf_counter() - start, 2), "curve": curve}


def provenance(argv, commit, threads, seconds):
    """Where the results came from. ``commit`` is taken when the run starts (others may commit meanwhile)."""
    return {"command": prov.command(argv), "git_commit": commit, "date": prov.utc_now(),
            "machine": prov.machine(torch_threads=threads, device="cpu"), "versions": prov.versions(torch, np),
            "seconds": round(seconds, 1)}


def setup_torch(threads):
    """CPU settings of every run: ``threads`` intra-op threads, and denormal numbers flushed to zero.

    Flushing matters: a vanishing gradient passes through numbers below 1e-38, the float32 denormals,
    on which a CPU is many times slower; at T = 200 an untrained LSTM spent most of its time there.
    Rounding them to 0 changes no result that is printed.
    """
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def _worker(job):
    kind, T, cfg, threads = job
    setup_torch(threads)
    return train_one(kind, T, cfg, progress=False)


def run(lengths, models, hidden=32, steps=2000, batch=64, lr=1e-2, clip=1.0, val=500, test=2000, eval_every=100,
        solved=0.99, seed=0, gate_bias=5.0, jobs=1, threads=1, progress=True):
    """Train every model at every length; return ``(config, records)`` (the records in run order).

    ``jobs > 1`` trains that many runs at once in separate processes (``threads`` torch threads each);
    the results do not depend on ``jobs``.
    """
    cfg = dict(lengths=list(lengths), models=list(models), hidden=hidden, steps=steps, batch=batch, lr=lr,
               clip=clip, val=val, test=test, eval_every=eval_every, solved=solved, seed=seed,
               gate_bias=gate_bias, jobs=jobs, threads=threads, variant=VARIANT, tolerance=TOLERANCE, optimizer="Adam",
               loss="MSE at the last step", init="PyTorch default, then gate biases (see gate_bias)")
    runs = [(kind, T, cfg, threads) for T in cfg["lengths"] for kind in cfg["models"]]
    if jobs <= 1:
        setup_torch(threads)
        return cfg, [train_one(kind, T, cfg, progress=progress)
                     for kind, T, _, _ in tqdm(runs, desc="runs", disable=not progress)]
    records = [None] * len(runs)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_worker, job): k for k, job in enumerate(runs)}
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(runs), desc="runs",
                           disable=not progress):
            records[futures[future]] = future.result()
    return cfg, records


def accuracy_table(records):
    """``{T: {model: test accuracy}}`` from a list of records."""
    table = {}
    for r in records:
        table.setdefault(r["T"], {})[r["model"]] = r["test_accuracy"]
    return table


def main(argv=None):
    argv = sys.argv if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[10, 50, 100, 200])
    p.add_argument("--models", nargs="+", default=["rnn", "lstm", "gru", "lstm_default"], choices=sorted(MODULES))
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--steps", type=int, default=2000, help="training budget: minibatches per run (at most)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping threshold")
    p.add_argument("--val", type=int, default=500, help="validation sequences (early stop, learning curves)")
    p.add_argument("--test", type=int, default=2000, help="test sequences (the reported accuracy)")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--solved", type=float, default=0.99, help="stop once the validation accuracy reaches this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gate-bias", type=float, default=5.0,
                   help="start with a long memory: LSTM b_f = -b_i = this, GRU b_z = this (0: PyTorch's init)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once, in separate processes")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv[1:])
    start, commit = time.perf_counter(), prov.git_commit(__file__)
    cfg, records = run(a.lengths, a.models, hidden=a.hidden, steps=a.steps, batch=a.batch, lr=a.lr, clip=a.clip,
                       val=a.val, test=a.test, eval_every=a.eval_every, solved=a.solved, seed=a.seed,
                       gate_bias=a.gate_bias, jobs=a.jobs, threads=a.threads, progress=not a.no_progress)
    result = {"experiment": "adding problem: vanilla RNN vs LSTM vs GRU", "config": cfg,
              "provenance": provenance(argv, commit, a.threads, time.perf_counter() - start), "results": records}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    table = accuracy_table(records)
    print(f"test accuracy (|error| < {TOLERANCE}) -> {a.out}")
    width = max(len(m) for m in cfg["models"]) + 2
    print("T     " + "".join(f"{m:>{width}s}" for m in cfg["models"]))
    for T, row in table.items():
        print(f"{T:<6d}" + "".join(f"{row[m]:{width}.3f}" for m in cfg["models"]))
    return result


if __name__ == "__main__":
    main()
