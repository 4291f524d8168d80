"""experiments/seq2seq_dates.py in its tiny configuration, the date data, and the decoders of
rnnlib.torch.seq2seq (greedy, beam search, attention vs rnnlib.attention)."""
import datetime
import sys

import numpy as np
import torch

from rnnlib import attention
from rnnlib.torch import seq2seq

from experiment_helpers import ROOT, run_tiny

sys.path.insert(0, str(ROOT / "experiments"))
import seq2seq_dates as sd  # noqa: E402


def test_tiny_run_writes_results_with_provenance(tmp_path):
    result = run_tiny("seq2seq_dates", tmp_path)
    assert set(result["models"]) == {"bottleneck", "attention"}
    for r in result["models"].values():
        assert sum(v["n"] for v in r["by_dates"].values()) == result["data"]["n_test"] == sd.TINY["n_test"]
        assert sum(v["n"] for v in r["by_length"].values()) == sd.TINY["n_test"]
        assert 0 <= r["beam"]["greedy_accuracy"] <= 100 and r["beam"]["n"] == sd.TINY["n_beam"]
        assert set(r["by_date_position"]) == set(r["by_dates"])
        assert all(len(v) == int(n) for n, v in r["by_date_position"].items())
    align = result["models"]["attention"]["alignments"]
    assert len(align) == sd.TINY["n_align"]
    for a in align:  # a row of weights per output character and the end (if reached); rows sum to 1
        w = np.array(a["weights"])
        assert w.shape[1] == len(a["source"]) and len(a["output"]) <= w.shape[0] <= len(a["output"]) + 1
        np.testing.assert_allclose(w.sum(1), 1.0, atol=5e-3)


def test_every_format_is_read_back_to_the_same_date():
    """The source formats are faithful: each one, parsed by hand here, gives the date it wrote."""
    d = datetime.date(1996, 3, 5)
    written = {name: f(d) for name, f in sd.FORMATS.items()}
    assert written["en_long"] == "Tuesday, 5 March 1996"
    assert written["us_short"] == "3/5/96"
    assert written["fr"] == "5 mars 1996" and written["fr_long"] == "mardi 5 mars 1996"
    assert written["de_long"] == "Dienstag, 5. März 1996" and written["de_numeric"] == "05.03.1996"
    assert written["en_ordinal"] == "5th of March 1996" and sd.ordinal(22) == "22nd" and sd.ordinal(13) == "13th"
    assert len(set(written.values())) == len(sd.FORMATS)
    pairs = sd.make_pairs(300, seed=1)
    for src, tgt in pairs:
        assert len(src.split(sd.SEPARATOR)) == len(tgt.split(" ")) == sd.n_dates(src)
        assert all(c in sd.SRC_INDEX for c in src)
        for part, iso in zip(src.split(sd.SEPARATOR), tgt.split(" ")):
            d = datetime.date.fromisoformat(iso)
            assert part in {f(d) for f in sd.FORMATS.values()}


def test_encode_and_decode_round_trip():
    pairs = [("3/5/96", "1996-03-05"), ("5 mars 1996 ; 1/1/01", "1996-03-05 2001-01-01")]
    src, src_len, tgt_in, tgt_out = sd.encode(pairs)
    assert src.shape == (2, 20) and src_len.tolist() == [6, 20] and tgt_in.shape == tgt_out.shape == (2, 22)
    assert tgt_in[0, 0] == seq2seq.SOS and tgt_out[0, 10] == seq2seq.EOS and tgt_out[0, 11:].eq(0).all()
    assert torch.equal(tgt_in[:, 1:11], tgt_out[:, :10])  # the decoder input is the target shifted right
    assert [sd.decode_target(t) for t in tgt_out] == [t for _, t in pairs]


def test_date_position_accuracy():
    pairs = [("a", "1996-03-05 2001-01-01"), ("b", "1996-03-05 2001-01-01"), ("c", "2000-01-01")]
    outputs = ["1996-03-05 2001-01-02", "1996-03-05", "2000-01-01 2000-01-01"]
    assert sd.date_position_accuracy(outputs, pairs) == {"1": [100.0], "2": [100.0, 0.0]}


def test_no_test_source_is_in_the_training_set():
    train, test = sd.make_data(2000, 200, 2, data_seed=3)
    assert len(test) == 200 and not {s for s, _ in test} & {s for s, _ in train}


def test_torch_additive_attention_equals_rnnlib(rng):
    torch.manual_seed(0)
    att = seq2seq.AdditiveAttention(5, 3, 4).double()
    q, k, v = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 2))
    mask = np.array([True, True, False, True])[None, None, :]
    out, a = att(torch.tensor(q), torch.tensor(k), torch.tensor(v), torch.tensor(mask))
    expected, cache = attention.additive_attention_forward(
        q, k, v, att.W_q.weight.detach().numpy(), att.W_k.weight.detach().numpy(), att.w.weight.detach().numpy()[0],
        mask)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(a.detach().numpy(), cache[-1], rtol=1e-12, atol=1e-15)


def test_decoding_step_by_step_equals_teacher_forcing():
    """Running the decoder one token at a time gives the same logits as one call over the sequence."""
    torch.manual_seed(0)
    for use_attention in (False, True):
        model = seq2seq.Seq2Seq(sd.SRC_VOCAB, sd.TGT_VOCAB, 8, 16, use_attention, 8)
        src, src_len, tgt_in, _ = sd.encode(sd.make_pairs(3, seed=2))
        full = model(src, src_len, tgt_in)
        enc, h, mask = model.encode(src, src_len)
        for t in range(tgt_in.shape[1]):
            logits, h, _ = model.decode(tgt_in[:, t:t + 1], h, enc, mask)
            torch.testing.assert_close(logits[:, 0], full[:, t])


def test_bottleneck_decoder_reads_the_summary_at_every_step():
    """Cho et al. (2014): the bottleneck model's c = h_S starts the decoder and is fed to every step;
    the decoder reads nothing else of the source."""
    torch.manual_seed(0)
    model = seq2seq.Seq2Seq(sd.SRC_VOCAB, sd.TGT_VOCAB, 8, 16, False, 8)
    src, src_len, tgt_in, _ = sd.encode(sd.make_pairs(3, seed=2))
    enc, h, mask = model.encode(src, src_len)
    assert enc.shape == (3, 1, 16) and torch.equal(enc[:, 0], h[0])
    _, h_last = model.encoder(model.src_emb(src[:1, :int(src_len[0])]))  # the first source alone
    torch.testing.assert_close(h[:, :1], h_last)
    logits, _, a = model.decode(tgt_in, h, enc, mask)
    assert a is None
    other, _, _ = model.decode(tgt_in, h, enc.roll(1, 0), mask)  # same first state, others' c
    assert (other - logits).abs().amax(dim=-1).gt(1e-6).all()  # every step of every row moves


class TableModel:
    """A next-token model given by a table: log_probs depend on the previous token only."""

    def __init__(self, table):
        self.logp = np.log(np.asarray(table, dtype=np.float64))

    def step(self, token, state):
        return self.logp[token], state + 1


def test_beam_search_finds_what_greedy_misses():
    # tokens: 0 unused, 1 SOS, 2 EOS, 3 'a', 4 'b'. Greedy takes 'a' (0.6), then 'b' (0.55), then
    # EOS (1.0): 0.33 in all. 'b' first (0.4), then EOS (1.0), is more probable: 0.4.
    table = [[0, 0, 1, 0, 0], [0, 0, 0, 0.6, 0.4], [0, 0, 1, 0, 0], [0, 0, 0, 0.45, 0.55], [0, 0, 1, 0, 0]]
    model = TableModel(np.maximum(table, 1e-12))
    tokens, score = seq2seq.beam_search(model.step, 0, beam_size=1, max_len=10)
    assert tokens == [3, 4, 2]  # beam 1 is greedy
    np.testing.assert_allclose(score, np.log(0.6 * 0.55))
    tokens, score = seq2seq.beam_search(model.step, 0, beam_size=2, max_len=10)
    assert tokens == [4, 2] and np.isclose(score, np.log(0.4))


def test_beam_search_equals_exhaustive_search_on_small_random_models():
    rng = np.random.default_rng(0)
    V, L = 5, 4
    for _ in range(20):
        table = rng.dirichlet(np.ones(V) * 0.5, size=V)
        model = TableModel(table)
        # exhaustive: every sequence of length <= L ending in EOS, or of length L
        best = (-np.inf, None)
        for n in range(1, L + 1):
            for seq in np.ndindex(*(V,) * n):
                seq = list(seq)
                if (2 in seq[:-1]) or (n < L and seq[-1] != 2):
                    continue
                prev, s = 1, 0.0
                for t in seq:
                    s, prev = s + model.logp[prev, t], t
                best = max(best, (s, seq), key=lambda b: b[0])
        tokens, score = seq2seq.beam_search(model.step, 0, beam_size=V ** L, max_len=L)
        assert np.isclose(score, best[0]) and tokens == best[1]


def test_greedy_decode_equals_beam_of_one():
    torch.manual_seed(1)
    model = seq2seq.Seq2Seq(sd.SRC_VOCAB, sd.TGT_VOCAB, 8, 16, True, 8)
    for src_text, tgt in sd.make_pairs(4, seed=5):
        src, src_len, _, _ = sd.encode([(src_text, tgt)])
        g_tokens, g_score, _ = seq2seq.greedy_decode(model, src, src_len, max_len=12)
        step, h = seq2seq.model_step(model, src, src_len)
        b_tokens, b_score = seq2seq.beam_search(step, h, beam_size=1, max_len=12)
        assert g_tokens[0, :len(b_tokens)].tolist() == b_tokens
        np.testing.assert_allclose(float(g_score[0]), b_score, rtol=1e-5)
