"""experiments/char_lm.py in its tiny configuration, and the pieces chapter 10 relies on."""
import math
import sys

import numpy as np
import pytest
import torch

from experiment_helpers import ROOT, run_tiny

sys.path.insert(0, str(ROOT / "experiments"))
import char_lm  # noqa: E402


def test_tiny_run_writes_results_with_provenance(tmp_path):
    result = run_tiny("char_lm", tmp_path)
    hist = result["history"]
    assert hist["step"][-1] == char_lm.TINY["steps"] and len(hist["held_out_bpc"]) == len(hist["step"])
    assert result["held_out_bpc"] == hist["held_out_bpc"][-1] > 0
    assert set(result["samples"]) == {str(t) for t in char_lm.TINY["temperatures"]}
    for text in result["samples"].values():
        assert text.startswith(char_lm.TINY["prompt"])
        assert len(text) == len(char_lm.TINY["prompt"]) + char_lm.TINY["sample_chars"]
    d = result["data"]
    assert d["train_chars"] + d["held_out_chars"] == d["chars"] == char_lm.TINY["max_chars"]


def test_split_keeps_the_held_out_text_apart():
    vocab, train_ids, held_ids = char_lm.split_text(10_000, held_out=0.1)
    assert len(train_ids) == 9_000 and len(held_ids) == 1_000
    assert vocab.decode(np.concatenate([train_ids, held_ids])) == char_lm.data.char_corpus(10_000)


def test_bits_per_char_of_a_uniform_model_is_log2_vocab():
    V = 37

    class Uniform(torch.nn.Module):
        kind = "uniform"

        def forward(self, tokens):
            return torch.zeros(*tokens.shape, V)

    ids = np.random.default_rng(0).integers(0, V, 1000)
    assert char_lm.bits_per_char(Uniform(), ids, 50) == pytest.approx(math.log2(V), rel=1e-6)
    # the unigram baseline of a uniform stream is close to log2(V), never below the entropy of its counts
    assert char_lm.unigram_bpc(ids, ids, V) == pytest.approx(math.log2(V), abs=0.1)


def test_low_temperature_sampling_is_greedy_and_temperature_must_be_positive():
    vocab, train_ids, _ = char_lm.split_text(2_000)
    model = char_lm.make_model("gru", len(vocab), 8, 1, seed=0)
    a = char_lm.sample(model, vocab, "ab", 20, 1e-4, seed=1)
    b = char_lm.sample(model, vocab, "ab", 20, 1e-4, seed=2)
    assert a == b  # at a tiny temperature the draw no longer depends on the random seed
    with pytest.raises(ValueError, match="temperature"):
        char_lm.sample(model, vocab, "ab", 5, 0.0, seed=0)


# experiments/char_lm_regularisation.py: dropout, variational dropout and weight decay on the same model
import char_lm_regularisation as reg  # noqa: E402


def test_regularisation_tiny_run_writes_every_variant(tmp_path):
    result = run_tiny("char_lm_regularisation", tmp_path)
    assert set(result["variants"]) == set(reg.TINY["variants"]) == {"none", "dropout", "variational", "weight_decay"}
    for r in result["variants"].values():
        assert r["history"]["step"][-1] == reg.TINY["steps"]
        assert r["held_out_bpc"] == r["history"]["held_out_bpc"][-1] >= r["best_held_out_bpc"] > 0
        assert r["train_slice_bpc"] > 0


def test_variational_dropout_shares_its_mask_across_time_and_plain_dropout_does_not():
    torch.manual_seed(0)
    h = torch.ones(4, 50, 16)
    for variational in (True, False):
        model = reg.DropoutLSTMLM(10, 16, 1, dropout=0.5, variational=variational)
        out = model.drop(h)
        assert set(out.unique().tolist()) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
        same_every_step = bool((out == out[:, :1]).all())
        assert same_every_step == variational
        model.eval()
        assert torch.equal(model.drop(h), h)  # no dropout at evaluation


def test_weight_decay_uses_decoupled_adamw():
    vocab, train_ids, held_ids = char_lm.split_text(3_000)
    cfg = dict(seq_len=16, batch_size=4, steps=2, lr=1e-2, lr_min=1e-3, clip=1.0, eval_every=2, seed=0)
    models = []
    for wd in (0.0, 0.5):
        torch.manual_seed(0)
        model = reg.DropoutLSTMLM(len(vocab), 8, 1)
        char_lm.train(model, train_ids, held_ids, weight_decay=wd, progress=False, **cfg)
        models.append(model)
    # same data, same start: weight decay alone makes the weights smaller
    norm = [sum(float(p.detach().norm() ** 2) for p in m.parameters()) for m in models]
    assert norm[1] < norm[0]
