"""Small PyTorch sequence models for chapters 10-11 (batch-first, nanoGPT style).

Four models share one interface, so that a benchmark can swap them freely:

* :class:`RecurrentLM` wraps ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (cuDNN on a GPU) between a
  token embedding and an output head.
* :class:`TransformerLM` is a causal, pre-LayerNorm Transformer whose attention is
  ``torch.nn.functional.scaled_dot_product_attention``.

Both take ``tokens`` of shape ``(B, T)`` (``int64``) and return ``logits`` of shape ``(B, T, V)``.
For the adding problem, which has continuous inputs, pass ``input_dim`` (the input becomes
``(B, T, input_dim)`` and goes through a small linear projection instead of the embedding) and
``out_dim`` (the size of the output head, 1 for a regression).

Streaming, one new token at a time (batch-first, ``token`` of shape ``(B,)``, or
``(B, input_dim)`` with a continuous input):

* ``RecurrentLM.step(token, state) -> (logits, state)``: the state is the fixed-size hidden state
  (``h`` or ``(h, c)``, each ``(n_layers, B, d_model)``), the same size after 10 tokens or 10,000.
* ``TransformerLM.step(token, cache) -> (logits, cache)``: the cache (:class:`KVCache`) holds the
  keys and values of every token seen so far and grows by ``2 * n_layers * d_model`` numbers per
  token.

:func:`matched_models` picks the widths that bring every model to the same parameter budget.
Only ``torch`` (CPU build is enough) is needed to import this module.
"""
import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

RECURRENT_KINDS = ("rnn", "lstm", "gru")
MODEL_NAMES = ("rnn", "lstm", "gru", "transformer")


def count_params(model):
    """Number of trainable parameters of ``model`` (buffers such as sinusoidal positions excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _input_layer(vocab, d_model, input_dim):
    """Token embedding, or a linear projection of continuous inputs when ``input_dim`` is given."""
    if input_dim is None:
        return nn.Embedding(vocab, d_model)
    return nn.Linear(input_dim, d_model)


# --------------------------------------------------------------------------------------------
# Recurrent models
# --------------------------------------------------------------------------------------------
class RecurrentLM(nn.Module):
    """Embedding -> ``n_layers`` stacked RNN / LSTM / GRU (``d_model`` units) -> linear head.

    Parameters
    ----------
    kind : {'rnn', 'lstm', 'gru'}
    vocab : int
        Vocabulary size (size of the embedding and, unless ``out_dim`` is given, of the head).
    d_model : int
        Width of the embedding and of every recurrent layer.
    n_layers : int
    input_dim : int or None
        If given, inputs are continuous ``(B, T, input_dim)`` and a ``Linear(input_dim, d_model)``
        replaces the embedding.
    out_dim : int or None
        Output size of the head (default: ``vocab``).
    """

    def __init__(self, kind, vocab, d_model, n_layers=2, input_dim=None, out_dim=None):
        super().__init__()
        if kind not in RECURRENT_KINDS:
            raise ValueError(f"kind must be one of {RECURRENT_KINDS}, got {kind!r}")
        self.kind, self.d_model, self.n_layers = kind, d_model, n_layers
        self.embed = _input_layer(vocab, d_model, input_dim)
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = cell(d_model, d_model, num_layers=n_layers, batch_first=True)
        self.head = nn.Linear(d_model, out_dim or vocab)

    def forward(self, tokens, state=None, return_state=False):
        """``tokens (B, T)`` -> ``logits (B, T, out)``; optionally also the final state."""
        h, state = self.rnn(self.embed(tokens), state)
        logits = self.head(h)
        return (logits, state) if return_state else logits

    def init_state(self, batch, device=None, dtype=None):
        """Zero state for ``batch`` streams: ``h`` (RNN, GRU) or ``(h, c)`` (LSTM)."""
        w = self.head.weight
        shape = (self.n_layers, batch, self.d_model)
        h = torch.zeros(shape, device=device or w.device, dtype=dtype or w.dtype)
        return (h, torch.zeros_like(h)) if self.kind == "lstm" else h

    def step(self, token, state=None):
        """One streaming step: ``token (B,)`` -> ``(logits (B, out), new_state)``.

        The cost and the size of ``state`` do not depend on how many tokens came before.
        """
        if state is None:
            state = self.init_state(token.shape[0], device=token.device)
        h, state = self.rnn(self.embed(token).unsqueeze(1), state)
        return self.head(h[:, 0]), state

    @staticmethod
    def state_nbytes(state):
        """Bytes held by one recurrent state (all streams of the batch)."""
        tensors = state if isinstance(state, tuple) else (state,)
        return sum(t.numel() * t.element_size() for t in tensors)


# --------------------------------------------------------------------------------------------
# Transformer
# --------------------------------------------------------------------------------------------
@dataclass
class KVCache:
    """Preallocated keys and values, one ``(B, n_heads, max_len, head_dim)`` pair per layer.

    ``pos`` is the number of tokens already stored; a step writes at ``pos`` and reads ``[:pos+1]``.
    """

    k: list
    v: list
    pos: int = 0

    @property
    def max_len(self):
        return self.k[0].shape[2]

    def nbytes_used(self, length=None):
        """Bytes of keys and values for ``length`` tokens (default: the tokens stored so far)."""
        length = self.pos if length is None else length
        per_token = sum(t[:, :, :1].numel() * t.element_size() for t in self.k + self.v)
        return per_token * length

    def nbytes_allocated(self):
        """Bytes of the preallocated buffers (``max_len`` tokens)."""
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


def sinusoidal_positions(max_len, d_model):
    """The fixed sine/cosine position table of Vaswani et al., shape ``(max_len, d_model)``."""
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return table.float()


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through ``F.scaled_dot_product_attention``."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, layer_cache=None, pos=0):
        """``x (B, T, C)``; with ``layer_cache = (k_buf, v_buf)`` the new keys and values are
        written at ``[pos, pos + T)`` and the queries attend to every cached token up to their own."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if layer_cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            k_buf, v_buf = layer_cache
            k_buf[:, :, pos:pos + T] = k
            v_buf[:, :, pos:pos + T] = v
            k, v = k_buf[:, :, :pos + T], v_buf[:, :, :pos + T]
            if T == 1:
                # One query sees every cached key. is_causal=True would align the mask top-left
                # and let the query see key 0 only.
                y = F.scaled_dot_product_attention(q, k, v, is_causal=False)
            elif pos == 0:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                # Lower-right causal mask: query i (absolute position pos + i) sees keys <= pos + i.
                mask = torch.ones(T, pos + T, dtype=torch.bool, device=x.device).tril(diagonal=pos)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    """Position-wise feed-forward network ``d -> 4d -> d`` with GELU."""

    def __init__(self, d_model):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-LN Transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model)

    def forward(self, x, layer_cache=None, pos=0):
        x = x + self.attn(self.ln1(x), layer_cache, pos)
        return x + self.mlp(self.ln2(x))


class TransformerLM(nn.Module):
    """Causal pre-LN Transformer language model.

    Parameters
    ----------
    vocab, d_model, n_heads, n_layers : int
    max_len : int
        Longest sequence (and longest KV cache) the position table covers.
    positions : {'sinusoidal', 'learned'}
        Sinusoidal positions add no parameters, so the budget does not depend on ``max_len``.
    input_dim, out_dim : int or None
        As in :class:`RecurrentLM` (continuous inputs, size of the head).
    """

    def __init__(self, vocab, d_model, n_heads, n_layers, max_len, positions="sinusoidal",
                 input_dim=None, out_dim=None):
        super().__init__()
        self.d_model, self.n_heads, self.n_layers, self.max_len = d_model, n_heads, n_layers, max_len
        self.embed = _input_layer(vocab, d_model, input_dim)
        if positions == "learned":
            self.pos_embed = nn.Embedding(max_len, d_model)
        elif positions == "sinusoidal":
            self.pos_embed = None
            self.register_buffer("pos_table", sinusoidal_positions(max_len, d_model), persistent=False)
        else:
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {positions!r}")
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, out_dim or vocab)
        self.apply(self._init_weights)
        # Sinusoidal positions have unit scale: start the inputs at that scale too, so that the
        # position signal does not drown them (nanoGPT's 0.02 suits learned positions of 0.02).
        if positions == "sinusoidal":
            nn.init.normal_(self.embed.weight, mean=0.0, std=1.0)

    @staticmethod
    def _init_weights(module):
        """nanoGPT initialisation: N(0, 0.02) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _positions(self, start, length):
        if start + length > self.max_len:
            raise ValueError(f"position {start + length - 1} is beyond max_len={self.max_len}")
        if self.pos_embed is not None:
            return self.pos_embed.weight[start:start + length]
        return self.pos_table[start:start + length]

    def _run(self, tokens, cache=None, pos=0):
        x = self.embed(tokens)
        x = x + self._positions(pos, x.shape[1]).to(x.dtype)
        for i, block in enumerate(self.blocks):
            layer_cache = None if cache is None else (cache.k[i], cache.v[i])
            x = block(x, layer_cache, pos)
        return self.head(self.ln_f(x))

    def forward(self, tokens):
        """``tokens (B, T)`` -> ``logits (B, T, out)`` (every position at once, causal)."""
        return self._run(tokens)

    def init_cache(self, batch, device=None, dtype=None, max_len=None):
        """Empty :class:`KVCache` for ``batch`` streams and up to ``max_len`` tokens."""
        w = self.head.weight
        max_len = max_len or self.max_len
        shape = (batch, self.n_heads, max_len, self.d_model // self.n_heads)
        kw = dict(device=device or w.device, dtype=dtype or w.dtype)
        return KVCache(k=[torch.zeros(shape, **kw) for _ in self.blocks],
                       v=[torch.zeros(shape, **kw) for _ in self.blocks])

    def prefill(self, tokens, cache):
        """Process a whole prompt ``(B, T)`` at once, storing its keys and values in ``cache``."""
        T = tokens.shape[1]
        if cache.pos + T > cache.max_len:
            raise ValueError(f"cache of {cache.max_len} tokens cannot take {cache.pos + T}")
        logits = self._run(tokens, cache, cache.pos)
        cache.pos += T
        return logits

    def step(self, token, cache):
        """One streaming step: ``token (B,)`` -> ``(logits (B, out), cache)``.

        Costs one query against ``cache.pos + 1`` keys: time and memory grow with the context.
        """
        if cache.pos >= cache.max_len:
            raise ValueError(f"KV cache is full ({cache.max_len} tokens)")
        logits = self._run(token.unsqueeze(1), cache, cache.pos)
        cache.pos += 1
        return logits[:, 0], cache


# --------------------------------------------------------------------------------------------
# Matching a parameter budget
# --------------------------------------------------------------------------------------------
def heads_for(d_model, head_dim=64, head_multiple=8):
    """Number of heads for width ``d_model``: the head size is a multiple of ``head_multiple``
    (8 is what the flash attention kernels need), within a factor 2 of ``head_dim`` and as close
    to it as possible. Returns ``None`` when no such split exists."""
    best = None
    for hd in range(head_multiple, d_model + 1, head_multiple):
        if d_model % hd == 0 and head_dim / 2 <= hd <= 2 * head_dim:
            if best is None or abs(hd - head_dim) < abs(best - head_dim):
                best = hd
    return None if best is None else d_model // best


def build_model(name, vocab, d_model, *, rnn_layers=2, tf_layers=4, head_dim=64, head_multiple=8,
                n_heads=None, max_len=4096, positions="sinusoidal", input_dim=None, out_dim=None):
    """Build ``name`` in {'rnn', 'lstm', 'gru', 'transformer'} at width ``d_model``.

    The Transformer gets ``n_heads`` heads, by default ``heads_for(d_model, head_dim, head_multiple)``."""
    if name in RECURRENT_KINDS:
        return RecurrentLM(name, vocab, d_model, rnn_layers, input_dim=input_dim, out_dim=out_dim)
    if name == "transformer":
        n_heads = n_heads or heads_for(d_model, head_dim, head_multiple)
        if n_heads is None:
            raise ValueError(f"d_model={d_model} has no head size near head_dim={head_dim}")
        return TransformerLM(vocab, d_model, n_heads, tf_layers, max_len,
                             positions=positions, input_dim=input_dim, out_dim=out_dim)
    raise ValueError(f"unknown model {name!r}; expected one of {MODEL_NAMES}")


def width_for_budget(name, budget, vocab, *, multiple=8, **kw):
    """Width (a multiple of ``multiple``; for the Transformer also one that splits into heads, see
    :func:`heads_for`) whose parameter count is closest to ``budget``.

    Counts are exact: candidate models are built on the ``meta`` device (no memory, no init)."""
    return _width_for_budget(name, budget, vocab, multiple, tuple(sorted(kw.items())))


@functools.lru_cache(maxsize=None)
def _width_for_budget(name, budget, vocab, multiple, kw_items):
    kw = dict(kw_items)

    def params(d):   # the count does not depend on the number of heads
        with torch.device("meta"):
            return count_params(build_model(name, vocab, d, n_heads=1, **kw))

    def allowed(d):
        return name != "transformer" or heads_for(d, kw.get("head_dim", 64),
                                                  kw.get("head_multiple", 8)) is not None

    lo, hi = 1, 2                        # widths are k * multiple; find k with params(k) <= budget
    while params(hi * multiple) <= budget:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if params(mid * multiple) <= budget else (lo, mid)
    candidates = [k * multiple for k in range(max(1, lo - 8), hi + 9) if allowed(k * multiple)]
    return min(candidates, key=lambda d: (abs(params(d) - budget), d))


def matched_models(budget, vocab, names=MODEL_NAMES, seed=0, **kw):
    """Models of ``names`` sized to ``budget`` parameters each.

    Keyword arguments go to :func:`build_model` (``rnn_layers``, ``tf_layers``, ``head_dim``,
    ``head_multiple``, ``max_len``, ``positions``, ``input_dim``, ``out_dim``) and ``multiple`` to
    :func:`width_for_budget`. Returns ``{name: model}``; each model is initialised with ``seed``.
    """
    multiple = kw.pop("multiple", 8)
    models = {}
    for name in names:
        d = width_for_budget(name, budget, vocab, multiple=multiple, **kw)
        torch.manual_seed(seed)
        models[name] = build_model(name, vocab, d, **kw)
    return models


def describe(model):
    """A small dict describing ``model`` (kind, widths, parameter count)."""
    if isinstance(model, RecurrentLM):
        return dict(kind=model.kind, d_model=model.d_model, n_layers=model.n_layers,
                    params=count_params(model))
    return dict(kind="transformer", d_model=model.d_model, n_layers=model.n_layers,
                n_heads=model.n_heads, head_dim=model.d_model // model.n_heads,
                max_len=model.max_len, params=count_params(model))


def matmul_params(model):
    """Parameters that take part in a matrix product for every token (embeddings and position
    tables, which are lookups, and LayerNorm/bias vectors are left out)."""
    n = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            n += module.weight.numel()
        elif isinstance(module, nn.RNNBase):
            n += sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight"))
    if isinstance(model.embed, nn.Linear):
        n -= model.embed.weight.numel()   # a 2-wide input projection: negligible and not a GEMM
    return n


def flops_per_token(model, seq_len, training=True):
    """Approximate FLOPs per token: ``2 * matmul_params`` forward (x3 with backward) plus, for the
    Transformer, attention scores and weighted sum ``4 * n_layers * d_model * T`` forward
    (PaLM/nanoGPT convention: no discount for the causal mask)."""
    fwd = 2 * matmul_params(model)
    if isinstance(model, TransformerLM):
        fwd += 4 * model.n_layers * model.d_model * seq_len
    return 3 * fwd if training else fwd
