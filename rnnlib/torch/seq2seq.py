"""GRU encoder-decoder, with or without attention, and its decoders (chapter 11).

Batch first. A source ``src (B, S)`` of token indices (0 = padding) with lengths ``src_len (B,)``
goes through an embedding and a GRU encoder: its outputs ``enc (B, S, H)`` and its final state
``h (1, B, H)``. The decoder is a GRU started from ``h`` that reads the previous target token and
predicts the next one:

* ``Seq2Seq(attention=False)``: the bottleneck model (Sutskever et al. 2014; Cho et al. 2014). All
  the decoder knows about the source is the one vector ``c = h``, the encoder's final state. As in
  Cho et al. (2014), it starts the decoder and is fed to every decoder step: concatenated to the
  decoder's input, ``s_t = GRU([E y_{t-1}, c], s_{t-1})``, and to its output,
  ``logits = W_out [s_t, c] + b_out``.
* ``Seq2Seq(attention=True)``: after each decoder step its output ``s_t`` queries the encoder
  outputs with additive attention (the score of Bahdanau et al. 2015), and the context ``c_t``
  joins ``s_t`` in the output layer: ``logits = W_out [s_t, c_t] + b_out``. Querying with the
  decoder's *new* state is the arrangement of Luong et al. (2015); it lets training run the decoder
  over the whole (teacher-forced) target in one ``nn.GRU`` call.

Training uses teacher forcing: :meth:`Seq2Seq.forward` takes the target shifted right (``SOS``
first) as the decoder's input. Decoding feeds the model its own predictions:
:func:`greedy_decode` (a batch, the most probable token each step) and :func:`beam_search` (one
sequence, the ``beam_size`` best partial hypotheses each step). The token indices ``PAD, SOS, EOS``
are fixed: 0, 1, 2.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, SOS, EOS = 0, 1, 2


class AdditiveAttention(nn.Module):
    """``s_ij = w . tanh(W_q q_i + W_k k_j)``, softmax over the keys ``j`` where ``mask`` is True.

    The torch twin of :func:`rnnlib.attention.additive_attention_forward` (same names and mask
    convention). ``forward(q (B, Tq, Dq), k (B, Tk, Dk), v (B, Tk, dv), mask)`` returns
    ``(out (B, Tq, dv), a (B, Tq, Tk))``.
    """

    def __init__(self, d_query, d_key, d_attn):
        super().__init__()
        self.W_q = nn.Linear(d_query, d_attn, bias=False)
        self.W_k = nn.Linear(d_key, d_attn, bias=False)
        self.w = nn.Linear(d_attn, 1, bias=False)

    def forward(self, q, k, v, mask=None):
        s = self.w(torch.tanh(self.W_q(q)[:, :, None, :] + self.W_k(k)[:, None, :, :])).squeeze(-1)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=-1)
        return a @ v, a


class Seq2Seq(nn.Module):
    """GRU encoder-decoder; ``attention=True`` adds additive attention over the encoder outputs.

    src_vocab, tgt_vocab: vocabulary sizes (index 0 is padding in both); d_emb: embedding width;
    hidden: GRU width H of encoder and decoder; d_attn: width of the attention's tanh layer.
    """

    def __init__(self, src_vocab, tgt_vocab, d_emb=32, hidden=64, attention=False, d_attn=32):
        super().__init__()
        self.src_emb = nn.Embedding(src_vocab, d_emb, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(tgt_vocab, d_emb, padding_idx=PAD)
        self.encoder = nn.GRU(d_emb, hidden, batch_first=True)
        # the bottleneck model reads the summary c at every step: input [E y, c]
        self.decoder = nn.GRU(d_emb if attention else d_emb + hidden, hidden, batch_first=True)
        self.attention = AdditiveAttention(hidden, hidden, d_attn) if attention else None
        self.out = nn.Linear(2 * hidden, tgt_vocab)  # both models: W_out [s_t, c_t] + b_out

    def encode(self, src, src_len):
        """src (B, S) int64, src_len (B,) -> what the decoder may read of the source, ``enc``, the
        decoder's initial state ``h (1, B, H)`` (the encoder's final state) and the source mask
        ``(B, 1, S)``, True at real tokens. ``enc`` is every encoder output ``(B, S, H)`` (zeros at
        padding) for the attention model, and only the summary ``c = h`` as ``(B, 1, H)`` for the
        bottleneck model."""
        packed = nn.utils.rnn.pack_padded_sequence(self.src_emb(src), src_len.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        enc, h = self.encoder(packed)  # h: the state after each sequence's last real token
        enc, _ = nn.utils.rnn.pad_packed_sequence(enc, batch_first=True, total_length=src.shape[1])
        mask = (torch.arange(src.shape[1]) < src_len[:, None])[:, None, :]
        if self.attention is None:
            enc = h.transpose(0, 1)  # (B, 1, H): the bottleneck
        return enc, h, mask

    def decode(self, tgt_in, h, enc, mask):
        """Run the decoder over ``tgt_in (B, T)`` from state ``h (1, B, H)``.

        Returns ``logits (B, T, V)``, the new state ``h (1, B, H)`` and the attention weights
        ``a (B, T, S)`` (None without attention)."""
        x = self.tgt_emb(tgt_in)
        if self.attention is None:  # the same summary c at every step
            c, a = enc.expand(-1, tgt_in.shape[1], -1), None
            o, h = self.decoder(torch.cat([x, c], dim=-1), h)
        else:
            o, h = self.decoder(x, h)
            c, a = self.attention(o, enc, enc, mask)
        return self.out(torch.cat([o, c], dim=-1)), h, a

    def forward(self, src, src_len, tgt_in):
        """Teacher forcing: the decoder reads the true previous tokens ``tgt_in (B, T)``
        (``SOS`` then the target without its last token). Returns ``logits (B, T, V)``."""
        enc, h, mask = self.encode(src, src_len)
        return self.decode(tgt_in, h, enc, mask)[0]


def loss_fn(logits, tgt_out):
    """Mean cross-entropy per target token, padding (index 0) excluded."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD)


@torch.no_grad()
def greedy_decode(model, src, src_len, max_len):
    """Feed back the most probable token each step, for a batch.

    Returns ``tokens (B, max_len)`` (after ``EOS`` everything is ``PAD``), their summed
    log-probabilities ``(B,)`` up to and including ``EOS``, and the attention weights
    ``(B, max_len, S)`` (None without attention)."""
    enc, h, mask = model.encode(src, src_len)
    B = src.shape[0]
    token = torch.full((B, 1), SOS, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    tokens, score, weights = [], torch.zeros(B, dtype=torch.float64), []
    for _ in range(max_len):
        logits, h, a = model.decode(token, h, enc, mask)
        logp = torch.log_softmax(logits[:, 0], dim=-1)
        token = logp.argmax(dim=-1, keepdim=True)
        score += torch.where(done, 0.0, logp.gather(1, token)[:, 0].double())
        tokens.append(torch.where(done, PAD, token[:, 0]))
        weights.append(a)
        done |= token[:, 0] == EOS
        if done.all():
            break
    tokens = torch.stack(tokens, dim=1)
    tokens = F.pad(tokens, (0, max_len - tokens.shape[1]), value=PAD)
    weights = None if weights[0] is None else torch.cat(weights, dim=1)
    return tokens, score, weights


def beam_search(step, state, beam_size, max_len, sos=SOS, eos=EOS):
    """Beam search over a model given by its one-step function.

    ``step(token, state) -> (log_probs, new_state)``: ``log_probs`` a 1-D array over the
    vocabulary (log-probabilities of the next token after ``token``), ``state`` anything.
    Keeps the ``beam_size`` best unfinished hypotheses (by summed log-probability); a hypothesis
    that emits ``eos`` is finished. Stops when no unfinished hypothesis can beat the best finished
    one (scores only fall as a hypothesis grows), or after ``max_len`` tokens.

    Returns ``(tokens, score)``: the best hypothesis without ``sos``, ending in ``eos`` unless
    ``max_len`` cut it, and its summed log-probability. Ties go to the hypothesis found first.
    """
    beams = [(0.0, [sos], state)]  # (score, tokens, state), best first
    finished = []
    for _ in range(max_len):
        candidates = []
        for score, tokens, st in beams:
            log_probs, new_st = step(tokens[-1], st)
            log_probs = np.asarray(log_probs, dtype=np.float64)
            for t in np.argsort(-log_probs, kind="stable")[:beam_size]:
                candidates.append((score + float(log_probs[t]), tokens + [int(t)], new_st))
        candidates.sort(key=lambda c: -c[0])  # a stable sort: ties keep their order
        beams = []
        for cand in candidates[:beam_size]:
            (finished if cand[1][-1] == eos else beams).append(cand)
        best_finished = max((f[0] for f in finished), default=-np.inf)
        if not beams or beams[0][0] <= best_finished:
            break
    score, tokens, _ = max(finished + beams, key=lambda c: c[0])  # max keeps the first of equals
    return tokens[1:], score


def model_step(model, src, src_len):
    """The one-step function of ``model`` for :func:`beam_search`, for one source ``src (1, S)``,
    and its initial state. Each call runs one decoder step; log-probabilities come back as NumPy."""
    enc, h, mask = model.encode(src, src_len)

    @torch.no_grad()
    def step(token, h):
        logits, h, _ = model.decode(torch.tensor([[token]]), h, enc, mask)
        return torch.log_softmax(logits[0, 0].double(), dim=-1).numpy(), h

    return step, h
