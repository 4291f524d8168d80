"""Regularising the character-level LSTM of chapter 10: dropout, variational dropout, weight decay.

The same two-layer LSTM language model as ``char_lm.py``, trained on a small slice of the same text
(:func:`rnnlib.data.char_corpus`, first 90 % for training, last 10 % held out) for many passes, so
that the model without regularisation overfits. Four variants, same initial weights, same batches:

* ``none``: no regularisation;
* ``dropout``: dropout with a fresh mask at every time step on the embedding, between the two layers
  and before the head (what ``nn.LSTM(dropout=p)`` does between layers);
* ``variational``: the same places and rate, but one mask per sequence, shared by all its time steps
  (Gal & Ghahramani 2016 on the non-recurrent connections; "locked" dropout);
* ``weight_decay``: no dropout, decoupled weight decay (AdamW).

Dropout never touches the recurrent connection ``h_{t-1} -> h_t`` here (``nn.LSTM`` runs it).

Reported for each: held-out and training bits per character over training, and at the end.

Run (14 minutes with the defaults, one thread, on a busy two-core machine)::

    nice python experiments/char_lm_regularisation.py   # -> experiments/results/char_lm_regularisation.json
    python experiments/char_lm_regularisation.py --tiny --out /tmp/r.json   # seconds: the test's config
"""
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import char_lm  # noqa: E402
import provenance as prov  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "results" / "char_lm_regularisation.json"

FULL = dict(d_model=128, n_layers=2, seq_len=100, batch_size=32, steps=1000, lr=3e-3, lr_min=3e-4,
            clip=1.0, eval_every=50, held_out=0.1, max_chars=60_000, seed=0,
            variants={"none": dict(dropout=0.0, variational=False, weight_decay=0.0),
                      "dropout": dict(dropout=0.3, variational=False, weight_decay=0.0),
                      "variational": dict(dropout=0.3, variational=True, weight_decay=0.0),
                      "weight_decay": dict(dropout=0.0, variational=False, weight_decay=0.1)})
TINY = dict(FULL, d_model=16, seq_len=32, batch_size=8, steps=4, eval_every=2, max_chars=8_000)


class DropoutLSTMLM(nn.Module):
    """Embedding -> ``n_layers`` LSTM layers of ``d_model`` units -> linear head, with dropout of rate
    ``dropout`` on the embedding, between layers and before the head.

    ``variational=False``: a new mask for every element of ``(B, T, d_model)`` (every time step);
    ``variational=True``: one mask ``(B, 1, d_model)`` per sequence, the same at every time step.
    """

    kind = "lstm"

    def __init__(self, vocab, d_model, n_layers, dropout=0.0, variational=False):
        super().__init__()
        self.p, self.variational = dropout, variational
        self.embed = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList(nn.LSTM(d_model, d_model, batch_first=True) for _ in range(n_layers))
        self.head = nn.Linear(d_model, vocab)

    def drop(self, h):
        if not self.training or self.p == 0.0:
            return h
        shape = (h.shape[0], 1, h.shape[2]) if self.variational else h.shape
        mask = h.new_empty(shape).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return h * mask  # (B, 1, D) broadcasts over the T steps: the same units dropped at every step

    def forward(self, tokens):
        """``tokens (B, T)`` -> ``logits (B, T, vocab)``."""
        h = self.drop(self.embed(tokens))
        for lstm in self.layers:
            h, _ = lstm(h)
            h = self.drop(h)
        return self.head(h)


def run(config, progress=True):
    vocab, train_ids, held_out_ids = char_lm.split_text(config["max_chars"], config["held_out"])
    train_cfg = {k: config[k] for k in ("seq_len", "batch_size", "steps", "lr", "lr_min", "clip",
                                        "eval_every", "seed")}
    results = {}
    for name, v in config["variants"].items():
        torch.manual_seed(config["seed"])  # the same initial weights for every variant
        model = DropoutLSTMLM(len(vocab), config["d_model"], config["n_layers"], v["dropout"], v["variational"])
        history = char_lm.train(model, train_ids, held_out_ids, progress=progress,
                                weight_decay=v["weight_decay"], **train_cfg)
        results[name] = {
            **v,
            "held_out_bpc": history["held_out_bpc"][-1],
            "best_held_out_bpc": min(history["held_out_bpc"]),
            # the final model on the last len(held_out) characters of the training text, read like the held-out text
            "train_slice_bpc": char_lm.bits_per_char(model, train_ids[-len(held_out_ids):], config["seq_len"]),
            "history": history,
        }
    return {
        "config": config,
        "data": {"source": "rnnlib.data.char_corpus", "python": sys.version.split()[0],
                 "train_chars": int(len(train_ids)), "held_out_chars": int(len(held_out_ids)),
                 "vocab_size": len(vocab)},
        "params": sum(p.numel() for p in model.parameters()),
        "variants": results,
    }


def main(argv=None):
    args, config = prov.lm_command_line(argv, __doc__, FULL, TINY, OUT, "seconds: the configuration of the test",
                                        override=("steps", "override the number of training steps"))
    result = prov.lm_run(run, config, args, "experiments/char_lm_regularisation.py", argv)
    for name, r in result["variants"].items():
        print(f"{name:13s} held-out {r['held_out_bpc']:.3f} (best {r['best_held_out_bpc']:.3f}), "
              f"training slice {r['train_slice_bpc']:.3f} bits/char")
    print(f"wrote {args.out} in {result['provenance']['seconds']} s")


if __name__ == "__main__":
    main()
