"""Small PyTorch sequence models for chapters 10-11 (batch-first, nanoGPT style).

Four models share one interface, so that a benchmark can swap them freely:

* :class:`RecurrentLM` wraps ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (cuDNN on a GPU), or
  :class:`MinGRU`, between a token embedding and an output head.
* :class:`MinGRU` (Feng et al. 2024) is a GRU whose gates see the input only, so the whole sequence
  is a linear recurrence ``h_t = a_t * h_{t-1} + b_t``: :func:`linear_recurrence_scan` computes it
  with a parallel scan (depth ``O(log T)``), :func:`linear_recurrence_loop` one step at a time.
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

RECURRENT_KINDS = ("rnn", "lstm", "gru", "mingru", "mingru_loop")
MODEL_NAMES = ("rnn", "lstm", "gru", "transformer")     # the four models of chapter 12
EXTRA_MODEL_NAMES = ("mingru", "mingru_loop")           # minGRU by parallel scan / by a loop
ALL_MODEL_NAMES = MODEL_NAMES + EXTRA_MODEL_NAMES


def count_params(model):
    """Number of trainable parameters of ``model`` (buffers such as sinusoidal positions excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _input_layer(vocab, d_model, input_dim):
    """Token embedding, or a linear projection of continuous inputs when ``input_dim`` is given."""
    if input_dim is None:
        return nn.Embedding(vocab, d_model)
    return nn.Linear(input_dim, d_model)


# --------------------------------------------------------------------------------------------
# minGRU: a recurrence that is linear in its state, computed by a parallel scan
# --------------------------------------------------------------------------------------------
def linear_recurrence_loop(a, b, h0=None):
    """Reference: ``h_t = a_t * h_{t-1} + b_t`` for ``t = 0 .. T-1``, one step after the other.

    ``a, b`` of shape ``(B, T, D)``, ``h0`` of shape ``(B, D)`` (default zeros). Returns every
    ``h_t``, shape ``(B, T, D)``. ``T`` dependent steps: the depth of the computation is ``T``."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    hs = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        hs.append(h)
    return torch.stack(hs, dim=1)


def linear_recurrence_scan(a, b, h0=None):
    """The same ``h`` as :func:`linear_recurrence_loop`, by a parallel scan over time.

    Two steps in a row compose into one step of the same form:
    ``(a1, b1)`` then ``(a2, b2)`` is ``h -> a2 * (a1 * h + b1) + b2 = (a2 a1) * h + (a2 b1 + b2)``.
    :func:`_scan` pairs neighbouring steps, solves the half-length recurrence of the pairs
    (recursively), then fills in the other half with one more step each. Every level is a few
    elementwise products over the whole sequence: ``O(T)`` work in all, ``O(log T)`` levels."""
    if h0 is not None:                       # fold the initial state into the first step
        b = torch.cat([a[:, :1] * h0.unsqueeze(1) + b[:, :1], b[:, 1:]], dim=1)
    return _scan(a, b)


def _scan(a, b):
    """Inclusive scan of the steps ``(a_t, b_t)`` from ``h_{-1} = 0`` (Blelloch-style, recursive)."""
    T = a.shape[1]
    if T == 1:
        return b
    if T % 2:                                # pad with the identity step (a = 1, b = 0)
        a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
        b = torch.cat([b, torch.zeros_like(b[:, :1])], dim=1)
    a_even, a_odd = a[:, 0::2], a[:, 1::2]
    b_even, b_odd = b[:, 0::2], b[:, 1::2]
    # 1. steps (2i, 2i+1) composed into one: its scan is h at every odd position 2i+1
    h_odd = _scan(a_odd * a_even, a_odd * b_even + b_odd)
    # 2. one more step from h_{2i-1} gives h_{2i} = a_{2i} h_{2i-1} + b_{2i}
    h_before = torch.cat([torch.zeros_like(h_odd[:, :1]), h_odd[:, :-1]], dim=1)
    h_even = a_even * h_before + b_even
    return torch.stack([h_even, h_odd], dim=2).flatten(1, 2)[:, :T]    # interleave, unpad


class MinGRU(nn.Module):
    """Stacked minGRU layers (Feng et al. 2024) with the interface of ``nn.GRU(batch_first=True)``.

    Per layer, from its input ``x_t`` only::

        z_t  = sigmoid(W_z x_t + b_z)                 update gate
        h~_t = W_h x_t + b_h                          candidate state
        h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t       = a_t * h_{t-1} + b_t

    With ``scan=True`` the recurrence runs as a parallel scan, else as a loop (the reference).
    ``forward(x (B, T, input_size), h0 (num_layers, B, hidden_size) or None)`` returns
    ``(output (B, T, hidden_size), h_n (num_layers, B, hidden_size))``, as ``nn.GRU`` does.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, batch_first=True, scan=True):
        super().__init__()
        if not batch_first:
            raise ValueError("MinGRU is batch-first only")
        self.hidden_size, self.num_layers, self.scan = hidden_size, num_layers, scan
        # one Linear per layer makes both z and h~ (2 * hidden_size outputs)
        self.linears = nn.ModuleList(nn.Linear(input_size if i == 0 else hidden_size, 2 * hidden_size)
                                     for i in range(num_layers))

    def coefficients(self, layer, x):
        """``a_t = 1 - z_t`` and ``b_t = z_t * h~_t`` of layer ``layer`` for input ``x (B, T, .)``."""
        gate, candidate = self.linears[layer](x).chunk(2, dim=-1)
        z = torch.sigmoid(gate)
        return torch.sigmoid(-gate), z * candidate            # 1 - sigmoid(u) = sigmoid(-u)

    def forward(self, x, h0=None):
        recurrence = linear_recurrence_scan if self.scan else linear_recurrence_loop
        finals = []
        for layer in range(self.num_layers):
            a, b = self.coefficients(layer, x)
            x = recurrence(a, b, None if h0 is None else h0[layer])
            finals.append(x[:, -1])
        return x, torch.stack(finals)


# --------------------------------------------------------------------------------------------
# Recurrent models
# --------------------------------------------------------------------------------------------
class RecurrentLM(nn.Module):
    """Embedding -> ``n_layers`` stacked RNN / LSTM / GRU / minGRU (``d_model`` units) -> linear head.

    Parameters
    ----------
    kind : {'rnn', 'lstm', 'gru', 'mingru', 'mingru_loop'}
        'mingru' is :class:`MinGRU` computed by a parallel scan, 'mingru_loop' the same model
        computed step by step.
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
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU, "mingru": MinGRU,
                "mingru_loop": functools.partial(MinGRU, scan=False)}[kind]
        self.rnn = cell(d_model, d_model, num_layers=n_layers, batch_first=True)
        self.head = nn.Linear(d_model, out_dim or vocab)

    def forward(self, tokens, state=None, return_state=False):
        """``tokens (B, T)`` -> ``logits (B, T, out)``; optionally also the final state."""
        h, state = self.rnn(self.embed(tokens), state)
        logits = self.head(h)
        return (logits, state) if return_state else logits

    def init_state(self, batch, device=None, dtype=None):
        """Zero state for ``batch`` streams: ``h`` (RNN, GRU, minGRU) or ``(h, c)`` (LSTM)."""
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
    """Build ``name`` in {'rnn', 'lstm', 'gru', 'transformer', 'mingru', 'mingru_loop'} at width
    ``d_model`` (the recurrent ones with ``rnn_layers`` layers).

    The Transformer gets ``n_heads`` heads, by default ``heads_for(d_model, head_dim, head_multiple)``."""
    if name in RECURRENT_KINDS:
        return RecurrentLM(name, vocab, d_model, rnn_layers, input_dim=input_dim, out_dim=out_dim)
    if name == "transformer":
        n_heads = n_heads or heads_for(d_model, head_dim, head_multiple)
        if n_heads is None:
            raise ValueError(f"d_model={d_model} has no head size near head_dim={head_dim}")
        return TransformerLM(vocab, d_model, n_heads, tf_layers, max_len,
                             positions=positions, input_dim=input_dim, out_dim=out_dim)
    raise ValueError(f"unknown model {name!r}; expected one of {ALL_MODEL_NAMES}")


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
    (PaLM/nanoGPT convention: no discount for the causal mask). Elementwise work (gates, the
    minGRU scan) is not counted."""
    fwd = 2 * matmul_params(model)
    if isinstance(model, TransformerLM):
        fwd += 4 * model.n_layers * model.d_model * seq_len
    return 3 * fwd if training else fwd
