"""A character-level language model on text that ships with Python (chapter 10).

The text is :func:`rnnlib.data.char_corpus`: the source of a few standard-library modules (nothing
is downloaded). The first 90 % of the characters train the model, the last 10 % are held out and only
ever evaluated. The model is :class:`rnnlib.torch.models.RecurrentLM` (character embedding -> stacked LSTM
-> linear head), trained with cross-entropy on the next character of chunks of ``seq_len``
characters (:func:`rnnlib.data.char_batches`), Adam with a cosine learning-rate schedule and
gradient-norm clipping, PyTorch on the CPU.

Reported: the training curve, bits per character on the held-out text (cross-entropy in base 2; every
held-out chunk starts from a zero state, as in training), the final model's bits per character on an
equally long slice of the training text read the same way, the same for a unigram model that ignores
context, and samples at several temperatures.

Run (about 6 minutes on two shared CPU cores with the defaults)::

    nice python experiments/char_lm.py                 # -> experiments/results/char_lm.json
    python experiments/char_lm.py --tiny --out /tmp/char_lm.json   # seconds: the test's config

The functions are imported by chapter 10 for its small live run.
"""
import math
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
OUT = ROOT / "experiments" / "results" / "char_lm.json"  # where --out defaults to

FULL = dict(kind="lstm", d_model=128, n_layers=2, seq_len=100, batch_size=32, steps=1200, lr=3e-3,
            lr_min=3e-4, clip=1.0, eval_every=100, held_out=0.1, max_chars=400_000, seed=0,
            temperatures=(0.2, 0.5, 0.8, 1.0, 1.5), sample_chars=300, prompt="def ")
TINY = dict(FULL, d_model=16, n_layers=1, seq_len=32, batch_size=8, steps=6, eval_every=3,
            max_chars=20_000, temperatures=(0.5, 1.0), sample_chars=40)
LN2 = math.log(2.0)


def split_text(max_chars=200_000, held_out=0.1):
    """``(vocab, train_ids, held_out_ids)``: the corpus cut at ``1 - held_out`` of its length.

    The vocabulary is built from the whole text so that the held-out part has no unknown
    characters (it only fixes the size of the output layer; no statistics of the held-out text are
    learned from it)."""
    text = data.char_corpus(max_chars)
    vocab = data.Vocab(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * (1.0 - held_out))
    return vocab, ids[:cut], ids[cut:]


def unigram_bpc(train_ids, held_out_ids, vocab_size):
    """Bits per character of the character frequencies of the training text (add-one smoothed) on
    the held-out text: what a model that ignores all context achieves."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    p = counts / counts.sum()
    return float(-np.mean(np.log2(p[held_out_ids])))


@torch.no_grad()
def bits_per_char(model, ids, seq_len):
    """Mean cross-entropy in bits of every next character of ``ids``, read in chunks of ``seq_len``
    (as :func:`rnnlib.data.char_batches` cuts them, all chunks in one batch, zero initial state)."""
    model.eval()
    n_chunks = len(range(0, len(ids) - seq_len, seq_len))
    x, y = next(data.char_batches(ids, n_chunks, seq_len, shuffle=False))
    logits = model(torch.from_numpy(x))
    model.train()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1)).item() / LN2


def make_model(kind, vocab_size, d_model, n_layers, seed):
    torch.manual_seed(seed)
    return RecurrentLM(kind, vocab_size, d_model, n_layers)


def train(model, train_ids, held_out_ids, *, seq_len, batch_size, steps, lr, lr_min, clip, eval_every, seed,
          weight_decay=0.0, progress=True, **_):
    """Train ``model`` for ``steps`` minibatches; returns the history (training loss in bits per
    character averaged over each ``eval_every`` steps, and held-out bits per character).
    ``weight_decay > 0`` trains with AdamW (decoupled weight decay) instead of Adam."""
    if weight_decay > 0:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr_min)
    history = {"step": [], "train_bpc": [], "held_out_bpc": [], "seconds": []}
    epoch, batches, running = 0, iter(()), []
    t0 = time.perf_counter()
    for step in tqdm(range(1, steps + 1), desc=f"char LM ({model.kind})", disable=not progress):
        batch = next(batches, None)
        while batch is None:  # a new epoch: the chunks in a new order
            batches = data.char_batches(train_ids, batch_size, seq_len, shuffle=True, seed=seed + epoch)
            epoch += 1
            batch = next(batches, None)
        x, y = (torch.from_numpy(a) for a in batch)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        running.append(loss.item() / LN2)
        if step % eval_every == 0 or step == steps:
            history["step"].append(step)
            history["train_bpc"].append(float(np.mean(running)))
            history["held_out_bpc"].append(bits_per_char(model, held_out_ids, seq_len))
            history["seconds"].append(round(time.perf_counter() - t0, 2))
            running = []
    history["epochs"] = epoch
    return history


@torch.no_grad()
def sample(model, vocab, prompt, n_chars, temperature, seed):
    """Generate ``n_chars`` characters after ``prompt``, one at a time through ``model.step``,
    drawing each from ``softmax(logits / temperature)`` (a torch generator seeded with ``seed``)."""
    if temperature <= 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature}")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    state = None
    for token in vocab.encode(prompt):  # read the prompt, keeping only the final state
        logits, state = model.step(torch.tensor([token]), state)
    out = []
    for _ in range(n_chars):
        probs = torch.softmax(logits[0] / temperature, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=gen))
        out.append(token)
        logits, state = model.step(torch.tensor([token]), state)
    model.train()
    return prompt + vocab.decode(out)


def run(config, progress=True):
    vocab, train_ids, held_out_ids = split_text(config["max_chars"], config["held_out"])
    model = make_model(config["kind"], len(vocab), config["d_model"], config["n_layers"], config["seed"])
    history = train(model, train_ids, held_out_ids, progress=progress, **config)
    samples = {str(t): sample(model, vocab, config["prompt"], config["sample_chars"], t, seed=config["seed"])
               for t in config["temperatures"]}
    return {
        "config": {**config, "temperatures": list(config["temperatures"])},
        "data": {"source": "rnnlib.data.char_corpus", "modules": list(data.CORPUS_MODULES),
                 "python": sys.version.split()[0], "chars": int(len(train_ids) + len(held_out_ids)),
                 "train_chars": int(len(train_ids)), "held_out_chars": int(len(held_out_ids)),
                 "vocab_size": len(vocab)},
        "params": count_params(model),
        "held_out_bpc": history["held_out_bpc"][-1],
        "train_bpc": history["train_bpc"][-1],
        # the final model on the last len(held_out) characters of the TRAINING text, read like the held-out
        # text: the fair comparison (train_bpc averages the last steps, with weights still changing)
        "train_slice_bpc": bits_per_char(model, train_ids[-len(held_out_ids):], config["seq_len"]),
        "unigram_held_out_bpc": unigram_bpc(train_ids, held_out_ids, len(vocab)),
        "history": history,
        "samples": samples,
    }


def main(argv=None):
    args, config = prov.lm_command_line(argv, __doc__, FULL, TINY, OUT, "seconds: the configuration of the test",
                                        override=("steps", "override the number of training steps"))
    result = prov.lm_run(run, config, args, "experiments/char_lm.py", argv, ensure_ascii=False)
    print(f"{result['params']} parameters; held-out {result['held_out_bpc']:.3f} bits/char "
          f"(unigram {result['unigram_held_out_bpc']:.3f})")
    for t, text in result["samples"].items():
        print(f"--- temperature {t}\n{text}")
    print(f"wrote {args.out} in {result['provenance']['seconds']} s")


if __name__ == "__main__":
    main()
