"""The gates of a trained LSTM at work on the adding problem (chapter 7).

Trains the LSTM of ``adding_gated.py`` (one layer of ``--hidden`` units, forget-gate bias ``b`` and
input-gate bias ``-b``, a linear read-out of the last state, Adam, clipping, MSE at the last step) on
the adding problem (variant ``"hochreiter1997"``) of length ``--T`` until it solves the validation
set, then runs it on a few test sequences and records, at every step and for every unit, the input
gate ``i_t``, the forget gate ``f_t`` and the cell state ``c_t``. The gates are recomputed from the
trained ``nn.LSTM``'s weights (PyTorch's gate order i, f, g, o) and the recomputed last state is
checked against ``nn.LSTM``'s.

Writes JSON (default ``experiments/results/lstm_gates.json``) with the configuration, the training
curve, the test accuracy, the recorded sequences and the provenance (command, commit, date, machine).

    nice python experiments/lstm_gates.py                          # the committed record (half a minute)
    python experiments/lstm_gates.py --T 20 --steps 3 --out /tmp/g.json   # a smoke test
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnlib.data import adding_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))
import adding_gated as ag  # noqa: E402  (the model, data seeds and evaluation of chapter 7's experiment)
import provenance as prov  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "experiments" / "results" / "lstm_gates.json"


def lstm_gates(lstm, x):
    """Gates and states of a one-layer ``nn.LSTM`` (batch first) on ``x (B, T, D)``, step by step.

    Returns NumPy arrays ``i, f, g, o, c, h``, each ``(B, T, H)``."""
    W_ih, W_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    B, T, _ = x.shape
    H = lstm.hidden_size
    h, c = x.new_zeros(B, H), x.new_zeros(B, H)
    out = {k: [] for k in "ifgoch"}
    with torch.no_grad():
        for t in range(T):
            a = x[:, t] @ W_ih.T + h @ W_hh.T + b
            i, f, g, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.tanh(a[:, 2 * H:3 * H]), \
                torch.sigmoid(a[:, 3 * H:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            for k, v in zip("ifgoch", (i, f, g, o, c, h)):
                out[k].append(v)
    return {k: torch.stack(v, dim=1).numpy() for k, v in out.items()}


def main(argv=None):
    argv = sys.argv if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--steps", type=int, default=2000, help="at most this many minibatches")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--gate-bias", type=float, default=5.0)
    p.add_argument("--solved", type=float, default=0.99, help="stop at this validation accuracy")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--show", type=int, default=3, help="test sequences whose gates are recorded")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = p.parse_args(argv[1:])
    commit = prov.git_commit(__file__)
    ag.setup_torch(1)
    start = time.perf_counter()

    torch.manual_seed(ag.data_seed(a.seed, a.T, 0))
    model = ag.AddingNet("lstm", a.hidden, a.gate_bias)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    X_val, y_val = adding_problem(500, a.T, seed=ag.data_seed(a.seed, a.T, 1), dtype=np.float32)
    X_test, y_test = adding_problem(2000, a.T, seed=ag.data_seed(a.seed, a.T, 2), dtype=np.float32)
    curve, steps = [], 0
    for step in range(a.steps):
        X, y = adding_problem(a.batch, a.T, seed=ag.data_seed(a.seed, a.T, 3, step), dtype=np.float32)
        loss = torch.mean((model(torch.from_numpy(X)) - torch.from_numpy(y)) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        steps = step + 1
        if steps % a.eval_every == 0 or steps == a.steps:
            acc, mse = ag.evaluate(model, X_val, y_val)
            curve.append([steps, acc, mse])
            if acc >= a.solved:
                break
    test_acc, test_mse = ag.evaluate(model, X_test, y_test)

    x = torch.from_numpy(X_test[:a.show])
    gates = lstm_gates(model.rnn, x)
    with torch.no_grad():
        out, _ = model.rnn(x)
        pred = model.head(out[:, -1]).numpy()[:, 0]
    gap = float(np.abs(out.numpy() - gates["h"]).max())
    if gap > 1e-5:
        raise RuntimeError(f"recomputed states differ from nn.LSTM's by {gap}")
    r4 = lambda arr: np.round(arr, 4).tolist()  # noqa: E731
    sequences = [{"values": r4(X_test[n, :, 0]), "markers": X_test[n, :, 1].tolist(),
                  "marked_steps": np.flatnonzero(X_test[n, :, 1] == 1.0).tolist(),
                  "target": float(y_test[n, 0]), "prediction": float(pred[n]),
                  "i": r4(gates["i"][n]), "f": r4(gates["f"][n]), "c": r4(gates["c"][n])}
                 for n in range(a.show)]
    record = {
        "experiment": "gates of a trained LSTM on the adding problem",
        "config": {"T": a.T, "hidden": a.hidden, "steps_max": a.steps, "batch": a.batch, "lr": a.lr,
                   "clip": a.clip, "gate_bias": a.gate_bias, "solved": a.solved, "seed": a.seed,
                   "variant": ag.VARIANT, "tolerance": ag.TOLERANCE, "optimizer": "Adam"},
        "training": {"steps": steps, "curve": curve, "test_accuracy": test_acc, "test_mse": test_mse,
                     "recompute_gap": gap},
        "sequences": sequences,
        "provenance": ag.provenance(argv, commit, 1, time.perf_counter() - start),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record) + "\n")
    print(f"T = {a.T}: {steps} steps, test accuracy {test_acc:.4f}; wrote {a.out} "
          f"in {record['provenance']['seconds']} s")


if __name__ == "__main__":
    main()
