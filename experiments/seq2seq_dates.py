"""Human-written dates -> ISO 8601: a GRU encoder-decoder with and without attention (chapter 11).

Task: the source is one to three dates, each written in one of several human formats in English,
French or German ("Tuesday, 5 March 1996", "3/5/96", "5 mars 1996", "5. März 1996", ...), joined by
" ; "; the target is the same dates in ISO form ("1996-03-05"), joined by spaces. Everything is
generated offline from Python's ``datetime`` and ``calendar`` (English names; the French and
German names are written out below). The number of dates sets the source length (about 6 to 90
characters) and how much the encoder must pass on: the bottleneck model (attention=False) has to
squeeze all of it into one hidden vector, the attention model can look back at the source.

Both models (:class:`rnnlib.torch.seq2seq.Seq2Seq`) are trained with teacher forcing (Adam,
gradient clipping) on the same data, then scored on held-out sources by exact match of the whole
output: greedy decoding by number of dates and by source length, teacher-forced against free-running
token accuracy (exposure bias), greedy against beam search on a subset, and, for the attention
model, the attention weights of a few examples (the alignment heatmap).

Run (15 minutes of wall time with the defaults, one thread under ``nice`` on two busy shared cores;
the record keeps the seconds)::

    nice python experiments/seq2seq_dates.py          # -> experiments/results/seq2seq_dates.json
    python experiments/seq2seq_dates.py --tiny --out /tmp/s.json   # seconds: the test's config

The data functions and :func:`train` are imported by chapter 11 for its small live run.
"""
import calendar
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnlib.torch.models import count_params
from rnnlib.torch.seq2seq import EOS, PAD, SOS, Seq2Seq, beam_search, greedy_decode, loss_fn, model_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance as prov  # noqa: E402  (one provenance module for every experiment script)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "results" / "seq2seq_dates.json"

FRENCH_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                 "octobre", "novembre", "décembre"]
FRENCH_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
GERMAN_MONTHS = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
                 "Oktober", "November", "Dezember"]
GERMAN_DAYS = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"]
ENGLISH_MONTHS = list(calendar.month_name)[1:]
ENGLISH_DAYS = list(calendar.day_name)  # Monday first, as date.weekday() counts


def ordinal(n):
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# Each format writes a datetime.date; two-digit years mean 1950-2049.
FORMATS = {
    "en_long": lambda d: f"{ENGLISH_DAYS[d.weekday()]}, {d.day} {ENGLISH_MONTHS[d.month - 1]} {d.year}",
    "en_dmy": lambda d: f"{d.day} {ENGLISH_MONTHS[d.month - 1]} {d.year}",
    "en_mdy": lambda d: f"{ENGLISH_MONTHS[d.month - 1]} {d.day}, {d.year}",
    "en_abbr": lambda d: f"{calendar.month_abbr[d.month]} {d.day} {d.year}",
    "en_ordinal": lambda d: f"{ordinal(d.day)} of {ENGLISH_MONTHS[d.month - 1]} {d.year}",
    "us_short": lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
    "de_numeric": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "iso": lambda d: d.isoformat(),
    "fr": lambda d: f"{d.day} {FRENCH_MONTHS[d.month - 1]} {d.year}",
    "fr_long": lambda d: f"{FRENCH_DAYS[d.weekday()]} {d.day} {FRENCH_MONTHS[d.month - 1]} {d.year}",
    "de": lambda d: f"{d.day}. {GERMAN_MONTHS[d.month - 1]} {d.year}",
    "de_long": lambda d: f"{GERMAN_DAYS[d.weekday()]}, {d.day}. {GERMAN_MONTHS[d.month - 1]} {d.year}",
}
FIRST_DAY, N_DAYS = datetime.date(1950, 1, 1), (datetime.date(2050, 1, 1) - datetime.date(1950, 1, 1)).days
SEPARATOR = " ; "


def make_pairs(n, seed, max_dates=3, n_dates=None):
    """``n`` (source, target) string pairs. Each source holds ``n_dates`` dates (when given) or a
    number drawn uniformly from 1..``max_dates``, each in a random format."""
    rng = np.random.default_rng(seed)
    names = list(FORMATS)
    pairs = []
    for _ in range(n):
        k = n_dates or int(rng.integers(1, max_dates + 1))
        dates = [FIRST_DAY + datetime.timedelta(days=int(rng.integers(N_DAYS))) for _ in range(k)]
        src = SEPARATOR.join(FORMATS[names[rng.integers(len(names))]](d) for d in dates)
        pairs.append((src, " ".join(d.isoformat() for d in dates)))
    return pairs


def source_alphabet():
    """Every character a source can contain, sorted: what the source vocabulary is built from."""
    words = ENGLISH_MONTHS + ENGLISH_DAYS + FRENCH_MONTHS + FRENCH_DAYS + GERMAN_MONTHS + GERMAN_DAYS
    return sorted(set("".join(words) + "0123456789 ,./-;" + "stndrdthof" + "".join(calendar.month_abbr)))


SRC_CHARS = source_alphabet()
TGT_CHARS = list("0123456789- ")
SRC_INDEX = {c: i + 1 for i, c in enumerate(SRC_CHARS)}  # 0 is padding
TGT_INDEX = {c: i + 3 for i, c in enumerate(TGT_CHARS)}  # 0, 1, 2: PAD, SOS, EOS
SRC_VOCAB, TGT_VOCAB = len(SRC_CHARS) + 1, len(TGT_CHARS) + 3


def encode(pairs):
    """Padded tensors: ``src (N, S)``, ``src_len (N,)``, decoder input ``tgt_in (N, T)`` (SOS +
    target) and output ``tgt_out (N, T)`` (target + EOS), all int64 with 0 as padding."""
    S = max(len(s) for s, _ in pairs)
    T = max(len(t) for _, t in pairs) + 1
    src = torch.zeros(len(pairs), S, dtype=torch.long)
    tgt_in = torch.zeros(len(pairs), T, dtype=torch.long)
    tgt_out = torch.zeros(len(pairs), T, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, :len(s)] = torch.tensor([SRC_INDEX[c] for c in s])
        ids = [TGT_INDEX[c] for c in t]
        tgt_in[i, :len(ids) + 1] = torch.tensor([SOS] + ids)
        tgt_out[i, :len(ids) + 1] = torch.tensor(ids + [EOS])
    src_len = torch.tensor([len(s) for s, _ in pairs])
    return src, src_len, tgt_in, tgt_out


def decode_target(tokens):
    """Token indices -> string, stopping at EOS (padding and SOS dropped)."""
    chars = []
    for t in tokens:
        t = int(t)
        if t == EOS:
            break
        if t >= 3:
            chars.append(TGT_CHARS[t - 3])
    return "".join(chars)


def train(model, pairs, *, steps, batch_size, lr, clip, seed, progress=None, **_):
    """Teacher forcing: ``steps`` Adam steps on random minibatches of ``pairs``. Returns the loss
    of every step."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        src, src_len, tgt_in, tgt_out = encode([pairs[i] for i in rng.integers(len(pairs), size=batch_size)])
        loss = loss_fn(model(src, src_len, tgt_in), tgt_out)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
        if progress is not None:
            progress.update(1)
    return losses


@torch.no_grad()
def predict(model, pairs, batch_size=250):
    """Greedy outputs (strings) for the sources of ``pairs``, and teacher-forced token accuracy."""
    model.eval()
    outputs, right, total = [], 0, 0
    for start in range(0, len(pairs), batch_size):
        src, src_len, tgt_in, tgt_out = encode(pairs[start:start + batch_size])
        tokens, _, _ = greedy_decode(model, src, src_len, max_len=tgt_out.shape[1] + 5)
        outputs += [decode_target(t) for t in tokens]
        logits = model(src, src_len, tgt_in)
        real = tgt_out != PAD
        right += int(((logits.argmax(-1) == tgt_out) & real).sum())
        total += int(real.sum())
    model.train()
    return outputs, right / total


def token_accuracy(outputs, pairs):
    """Free-running token accuracy: the fraction of target characters (and the end) that the greedy
    output has right at the same position."""
    right = total = 0
    for out, (_, tgt) in zip(outputs, pairs):
        right += sum(a == b for a, b in zip(out, tgt)) + (len(out) == len(tgt))
        total += len(tgt) + 1
    return right / total


def accuracy_table(outputs, pairs, key):
    """Exact-match accuracy (%) and count grouped by ``key(source)``."""
    groups = {}
    for out, (src, tgt) in zip(outputs, pairs):
        groups.setdefault(key(src), []).append(out == tgt)
    return {str(k): {"accuracy": 100.0 * float(np.mean(v)), "n": len(v)} for k, v in sorted(groups.items())}


def date_position_accuracy(outputs, pairs):
    """For each number of dates n: the accuracy (%) of the 1st, 2nd, ... date of the output (the
    k-th ISO date of the output equal to the k-th of the target)."""
    right = {}
    for out, (src, tgt) in zip(outputs, pairs):
        got, want = out.split(" "), tgt.split(" ")
        right.setdefault(str(len(want)), []).append([k < len(got) and got[k] == w for k, w in enumerate(want)])
    return {n: (100.0 * np.mean(rows, axis=0)).tolist() for n, rows in sorted(right.items())}


def n_dates(src):
    return src.count(SEPARATOR) + 1


def length_bin(src, width=20):
    """The source length rounded down to a multiple of ``width`` characters."""
    return len(src) // width * width


@torch.no_grad()
def beam_vs_greedy(model, pairs, beam_size):
    """Exact-match accuracy of greedy and beam search on ``pairs`` (one source at a time), and how
    often beam search found a more probable output than greedy."""
    model.eval()
    rows = []
    for src_text, tgt in pairs:
        src, src_len, _, tgt_out = encode([(src_text, tgt)])
        step, h = model_step(model, src, src_len)
        max_len = tgt_out.shape[1] + 5
        g_tokens, g_score, _ = greedy_decode(model, src, src_len, max_len)
        b_tokens, b_score = beam_search(step, h, beam_size, max_len)
        rows.append((decode_target(g_tokens[0]) == tgt, decode_target(b_tokens) == tgt,
                     b_score > float(g_score[0]) + 1e-9))
    model.train()
    g, b, better = (np.array(c) for c in zip(*rows))
    return {"n": len(rows), "beam_size": beam_size, "greedy_accuracy": 100.0 * g.mean(),
            "beam_accuracy": 100.0 * b.mean(), "beam_more_probable": int(better.sum()),
            "beam_fixed": int((b & ~g).sum()), "beam_broke": int((g & ~b).sum())}


@torch.no_grad()
def alignments(model, pairs):
    """For each pair: the source, the greedy output and the attention weights (output step x source
    character, rounded to 3 decimals) of the attention model."""
    model.eval()
    result = []
    for src_text, tgt in pairs:
        src, src_len, _, tgt_out = encode([(src_text, tgt)])
        tokens, _, weights = greedy_decode(model, src, src_len, max_len=tgt_out.shape[1] + 5)
        out = decode_target(tokens[0])
        result.append({"source": src_text, "target": tgt, "output": out,
                       "weights": np.round(weights[0, :len(out) + 1].numpy(), 3).tolist()})  # + EOS
    model.train()
    return result


FULL = dict(n_train=30000, n_test=600, max_dates=3, d_emb=32, hidden=64, d_attn=32, steps=3000,
            batch_size=64, lr=3e-3, clip=1.0, seed=0, data_seed=2015, n_beam=150, beam_size=5, n_align=3)
TINY = dict(n_train=300, n_test=40, max_dates=2, d_emb=8, hidden=16, d_attn=8, steps=20,
            batch_size=16, lr=3e-3, clip=1.0, seed=0, data_seed=2015, n_beam=6, beam_size=3, n_align=2)


def make_data(n_train, n_test, max_dates, data_seed, **_):
    """Training and test pairs; no test source occurs in the training set."""
    train_pairs = make_pairs(n_train, data_seed, max_dates)
    seen = {s for s, _ in train_pairs}
    test = [p for p in make_pairs(2 * n_test, data_seed + 1, max_dates) if p[0] not in seen][:n_test]
    return train_pairs, test


def run(config, progress=True):
    train_pairs, test = make_data(**config)
    results = {}
    with tqdm(total=2 * config["steps"], desc="seq2seq dates", disable=not progress) as bar:
        for name, attention in (("bottleneck", False), ("attention", True)):
            torch.manual_seed(config["seed"])
            model = Seq2Seq(SRC_VOCAB, TGT_VOCAB, config["d_emb"], config["hidden"], attention, config["d_attn"])
            t0 = time.perf_counter()
            losses = train(model, train_pairs, progress=bar, **config)
            seconds = time.perf_counter() - t0
            outputs, tf_acc = predict(model, test)
            every = max(1, config["steps"] // 100)
            results[name] = {
                "params": count_params(model), "train_seconds": round(seconds, 1),
                "loss": [float(np.mean(losses[i:i + every])) for i in range(0, len(losses), every)],
                "loss_every": every,
                "accuracy": 100.0 * float(np.mean([o == t for o, (_, t) in zip(outputs, test)])),
                "by_dates": accuracy_table(outputs, test, n_dates),
                "by_length": accuracy_table(outputs, test, length_bin),
                "by_date_position": date_position_accuracy(outputs, test),
                "token_accuracy_teacher_forced": 100.0 * tf_acc,
                "token_accuracy_free_running": 100.0 * token_accuracy(outputs, test),
                "beam": beam_vs_greedy(model, test[:config["n_beam"]], config["beam_size"]),
                "examples": [{"source": s, "target": t, "output": o} for o, (s, t) in list(zip(outputs, test))[:8]],
            }
            if attention:
                picks = [next(p for p in test if n_dates(p[0]) == k) for k in (1, 2)][:config["n_align"]]
                picks += [p for p in test if p not in picks][:config["n_align"] - len(picks)]
                results[name]["alignments"] = alignments(model, picks)
    lengths = [len(s) for s, _ in test]
    return {"config": config, "formats": list(FORMATS), "src_vocab": SRC_VOCAB, "tgt_vocab": TGT_VOCAB,
            "data": {"n_train": len(train_pairs), "n_test": len(test), "test_length_min": min(lengths),
                     "test_length_max": max(lengths), "length_bin_width": 20},
            "models": results}


def main(argv=None):
    args, config = prov.lm_command_line(argv, __doc__, FULL, TINY, OUT, "seconds: the configuration of the test",
                                        override=("steps", "override the number of training steps"))
    result = prov.lm_run(run, config, args, "experiments/seq2seq_dates.py", argv, ensure_ascii=False)
    for name, r in result["models"].items():
        by = "  ".join(f"{k}:{v['accuracy']:5.1f}%" for k, v in r["by_dates"].items())
        b = r["beam"]
        print(f"{name:10s} params {r['params']:6d}  exact {r['accuracy']:5.1f}%  by dates {by}  "
              f"greedy {b['greedy_accuracy']:.1f}% beam {b['beam_accuracy']:.1f}%")
    print(f"wrote {args.out} in {result['provenance']['seconds']} s")


if __name__ == "__main__":
    main()
