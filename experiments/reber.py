"""The embedded Reber grammar as a long-lag test: RNN vs LSTM vs GRU (chapter 9).

Task (Hochreiter & Schmidhuber 1997, Experiment 1): read an embedded Reber string one symbol at a
time and, after every symbol, predict the set of symbols that may legally come next. A string counts
as correct when at every step every legal next symbol scores above every illegal one
(:func:`rnnlib.data.legal_next_correct`). The hard step is the second-to-last symbol: it must repeat
the second symbol (T or P), read before the whole inner Reber string.

Training: next-symbol prediction with the legal-next-symbol sets as multi-hot targets (binary
cross-entropy per symbol), Adam, gradient-norm clipping, PyTorch on the CPU. Models are
:class:`rnnlib.torch.models.RecurrentLM` (symbol embedding -> one recurrent layer -> linear head).
Validation and test strings are drawn from other seeds and every string that also occurs in the
training set is removed, so both measure held-out strings only. A run stops early once all
validation strings have been fully correct for ``stop_after`` epochs in a row; the test strings are
scored once, at the end.

Run (about 5 minutes on two shared CPU cores with the defaults)::

    nice python experiments/reber.py                 # -> experiments/results/reber.json
    python experiments/reber.py --tiny --out /tmp/reber.json   # a few seconds: the test's config

The functions are imported by chapter 9 for its small live run.
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from rnnlib import data
from rnnlib.torch.models import RecurrentLM, count_params

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance as prov  # noqa: E402  (one provenance module for every experiment script)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "results" / "reber.json"  # where --out defaults to
KINDS = ("rnn", "lstm", "gru")
V = len(data.REBER_SYMBOLS)

FULL = dict(n_train=1000, n_val=200, n_test=1000, hidden=32, epochs=20, batch_size=16, lr=1e-2, clip=1.0,
            stop_after=3, seeds=(0, 1, 2), data_seed=1997)
TINY = dict(n_train=64, n_val=32, n_test=64, hidden=8, epochs=2, batch_size=16, lr=1e-2, clip=1.0,
            stop_after=3, seeds=(0,), data_seed=1997)


def make_data(n_train, n_val, n_test, data_seed):
    """Training, validation and test strings; no validation or test string occurs in the training set.

    The validation strings decide when to stop; the test strings are only used at the end."""
    train = data.embedded_reber(n_train, seed=data_seed)
    seen = set(train)
    held_out, k = [], 0
    while len(held_out) < n_val + n_test:  # draw in rounds from fresh seeds until enough unseen strings
        held_out += [s for s in data.embedded_reber(n_val + n_test, seed=data_seed + 1 + k) if s not in seen]
        k += 1
    return train, held_out[:n_val], held_out[n_val:n_val + n_test]


def encode(strings):
    """Padded batch: ``tokens (N, L)`` int64 (symbol indices, order BTPSXVE), multi-hot targets
    ``(N, L, 7)`` of the legal next symbols after each position, and a ``mask (N, L)`` that is 1 where
    a target exists (every symbol but the last of each string)."""
    L = max(len(s) for s in strings)
    tokens = np.zeros((len(strings), L), dtype=np.int64)
    targets = np.zeros((len(strings), L, V), dtype=np.float32)
    mask = np.zeros((len(strings), L), dtype=np.float32)
    for i, s in enumerate(strings):
        tokens[i, :len(s)] = [data.REBER_SYMBOLS.index(c) for c in s]
        targets[i, :len(s) - 1] = data.next_symbols_multi_hot(data.embedded_reber_next_symbols(s))
        mask[i, :len(s) - 1] = 1.0
    return torch.from_numpy(tokens), torch.from_numpy(targets), torch.from_numpy(mask)


def make_model(kind, hidden, seed):
    torch.manual_seed(seed)
    return RecurrentLM(kind, V, hidden, n_layers=1)


@torch.no_grad()
def evaluate(model, strings):
    """Percent of strings fully correct and percent correct at the second-to-last symbol."""
    model.eval()
    tokens, _, _ = encode(strings)
    scores = model(tokens).numpy()
    full = penult = 0
    for i, s in enumerate(strings):
        sets = data.embedded_reber_next_symbols(s)
        full += data.legal_next_correct(scores[i, :len(s) - 1], sets)
        penult += data.legal_next_correct(scores[i, len(s) - 3:len(s) - 2], sets[-2:-1])
    model.train()
    return {"full": 100.0 * full / len(strings), "penultimate": 100.0 * penult / len(strings)}


def train(kind, train_strings, val_strings, *, hidden, epochs, batch_size, lr, clip, seed, stop_after=None,
          progress=None, **_):
    """Train one model for at most ``epochs`` epochs; returns ``(model, history)`` with the training
    loss and the validation scores after every epoch. Training stops early once every validation
    string has been fully correct for ``stop_after`` epochs in a row (None: never)."""
    model = make_model(kind, hidden, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = {"epoch": [], "loss": [], "val_full": [], "val_penultimate": []}
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(train_strings))
        total, count = 0.0, 0.0
        for start in range(0, len(order), batch_size):
            tokens, targets, mask = encode([train_strings[i] for i in order[start:start + batch_size]])
            logits = model(tokens)
            per_step = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
            loss = (per_step * mask).sum() / mask.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            total += loss.item() * mask.sum().item()
            count += mask.sum().item()
        scores = evaluate(model, val_strings)
        history["epoch"].append(epoch)
        history["loss"].append(total / count)
        history["val_full"].append(scores["full"])
        history["val_penultimate"].append(scores["penultimate"])
        if progress is not None:
            progress.update(1)
            progress.set_postfix(kind=kind, seed=seed, val_full=f"{scores['full']:.0f}%")
        if stop_after and len(history["val_full"]) >= stop_after and min(history["val_full"][-stop_after:]) == 100.0:
            break
    if progress is not None:
        progress.update(epochs - epoch)  # the epochs skipped by stopping early
    return model, history


def run(config, kinds=KINDS, progress=True):
    train_strings, val_strings, test_strings = make_data(config["n_train"], config["n_val"], config["n_test"],
                                                         config["data_seed"])
    runs = []
    total = len(kinds) * len(config["seeds"]) * config["epochs"]
    with tqdm(total=total, desc="reber", disable=not progress) as bar:
        for kind in kinds:
            for seed in config["seeds"]:
                t0 = time.perf_counter()
                model, history = train(kind, train_strings, val_strings, seed=seed, progress=bar, **config)
                scores = evaluate(model, test_strings)
                solved = [e for e, v in zip(history["epoch"], history["val_full"]) if v == 100.0]
                runs.append({"kind": kind, "seed": seed, "params": count_params(model),
                             "seconds": round(time.perf_counter() - t0, 2), "epochs_run": history["epoch"][-1],
                             "first_epoch_val_solved": solved[0] if solved else None,
                             "test_full": scores["full"], "test_penultimate": scores["penultimate"],
                             "history": history})
    summary = {}
    for kind in kinds:
        mine = [r for r in runs if r["kind"] == kind]
        summary[kind] = {
            "params": mine[0]["params"],
            "seeds": [r["seed"] for r in mine],
            "first_epoch_val_solved": [r["first_epoch_val_solved"] for r in mine],
            "test_full_mean": float(np.mean([r["test_full"] for r in mine])),
            "test_full_min": float(np.min([r["test_full"] for r in mine])),
            "test_full_max": float(np.max([r["test_full"] for r in mine])),
            "test_penultimate_mean": float(np.mean([r["test_penultimate"] for r in mine])),
            "test_penultimate_min": float(np.min([r["test_penultimate"] for r in mine])),
            "test_penultimate_max": float(np.max([r["test_penultimate"] for r in mine])),
        }
    lengths = [len(s) for s in test_strings]
    return {
        "config": {**config, "seeds": list(config["seeds"])},
        "data": {"n_train": len(train_strings), "n_val": len(val_strings), "n_test": len(test_strings),
                 "distinct_train": len(set(train_strings)), "test_length_min": min(lengths),
                 "test_length_mean": float(np.mean(lengths)), "test_length_max": max(lengths)},
        "summary": summary,
        "runs": runs,
    }


def main(argv=None):
    args, config = prov.lm_command_line(argv, __doc__, FULL, TINY, OUT, "a few seconds: the configuration of the test",
                                        override=("epochs", "override the number of epochs"))
    result = prov.lm_run(run, config, args, "experiments/reber.py", argv)
    for kind, s in result["summary"].items():
        print(f"{kind:5s} params {s['params']:5d}  fully correct {s['test_full_mean']:6.1f}%  "
              f"penultimate {s['test_penultimate_mean']:6.1f}%")
    print(f"wrote {args.out} in {result['provenance']['seconds']} s")


if __name__ == "__main__":
    main()
