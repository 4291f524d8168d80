"""Data sets of the course, all generated or shipped locally (nothing is downloaded).

In the order the chapters use them:

1. weather, synthetic (the recipe of chapter 5's blog post, below) and real (Seattle 2012-2015
   from ``vega_datasets``), cut into windows of 3 days, split by date and scaled with training
   statistics only;
2. the adding problem (Hochreiter & Schmidhuber 1997, and the Le, Jaitly & Hinton 2015 variant);
3. Elman's (1990) temporal XOR;
4. the embedded Reber grammar (Hochreiter & Schmidhuber 1997, Experiment 1);
5. a character corpus read from the standard library's own source, with a vocabulary.

Arrays are batch-first: inputs ``X (N, T, D)``, targets ``y (N, 1)`` for one value per sequence.
Every random function takes a ``seed`` and gives the same arrays for the same seed.
"""
import importlib
import inspect
from collections import namedtuple

import numpy as np

from rnnlib._checks import as_float_array, check_shape

# ----------------------------------------------------------------------------------------------
# 1a. Synthetic weather, after the blog post of chapter 5 (a NumPy RNN trained on made-up weather)

SYNTHETIC_COLUMNS = ("temperature", "humidity", "wind")


def synthetic_weather(n_days, seed, noise=0.1, pull=0.2, dtype=np.float64):
    """A synthetic daily series ``(n_days, 3)``: columns temperature, humidity, wind, all near [0, 1].

    The blog post that chapter 5 starts from (a NumPy RNN written without a framework, one of the
    course's source texts) draws temperature, humidity and wind uniformly from [0, 1)
    (``np.random.rand``) and makes the target "the mean temperature of the 3 days + N(0, 0.1)
    noise" (0.1 is the standard deviation: N(0, 0.1²) in the book's notation); humidity and wind
    carry no information (a model has to learn to ignore them). The post draws every window
    independently, so its windows are not one series. We keep the recipe but make it a series,
    so that :func:`make_windows` can cut it like real data:

    * humidity and wind: independent U[0, 1) every day, as in the post;
    * temperature: the first 3 days U[0, 1); then each day is the mean of the previous 3 days
      plus N(0, ``noise``) noise, pulled a fraction ``pull`` back towards 0.5::

          T[t] = 0.5 + (1 - pull) * (mean(T[t-3:t]) - 0.5) + N(0, noise)

    With ``pull=0`` this is the post's rule exactly, but then the series is a random walk (the
    three weights sum to one) and wanders far outside [0, 1] over a few hundred days; the pull
    keeps it stationary (mean 0.5, standard deviation about 0.14 with the defaults).
    """
    if n_days < 4:
        raise ValueError(f"n_days: expected at least 4 days, got {n_days}")
    rng = np.random.default_rng(seed)
    series = rng.random((n_days, 3))
    eps = rng.normal(0.0, noise, n_days)
    temp = series[:, 0]
    for t in range(3, n_days):
        temp[t] = 0.5 + (1.0 - pull) * (temp[t - 3:t].mean() - 0.5) + eps[t]
    return series.astype(dtype)


def make_windows(series, window=3, target_col=0):
    """Cut a daily series ``(n_days, D)`` into inputs and next-day targets.

    Window ``i`` holds days ``i .. i+window-1`` (all D columns) and its target is column
    ``target_col`` of day ``i+window``. Returns ``X (n_days - window, window, D)`` and
    ``y (n_days - window, 1)``, both copies in the dtype of ``series``.
    """
    series = check_shape("series", series, (None, None))
    n_days, D = series.shape
    if not 1 <= window < n_days:
        raise ValueError(f"window: expected 1 <= window < n_days = {n_days}, got {window}")
    if not 0 <= target_col < D:
        raise ValueError(f"target_col: expected a column in [0, {D}), got {target_col}")
    N = n_days - window
    X = np.stack([series[i:i + N] for i in range(window)], axis=1)  # X[n, k] = series[n + k]
    y = series[window:, target_col:target_col + 1].copy()
    return X, y


# ----------------------------------------------------------------------------------------------
# 1b. Real weather: Seattle 2012-2015

SEATTLE_FEATURES = ("temp_max", "temp_min", "precipitation", "wind")


def seattle_weather():
    """Seattle daily weather, 2012-01-01 to 2015-12-31: 1461 rows, one per day, no gaps.

    A pandas DataFrame with columns ``date`` (datetime64), ``temp_max`` and ``temp_min`` (°C),
    ``precipitation`` (mm) and ``wind`` (m/s), sorted by date. The data ship inside the
    ``vega_datasets`` package (``local_data``): nothing is downloaded.
    """
    from vega_datasets import local_data

    df = local_data.seattle_weather()
    df = df[["date", *SEATTLE_FEATURES]].sort_values("date").reset_index(drop=True)
    days = df["date"].to_numpy().astype("datetime64[D]")
    if len(df) != 1461 or np.any(np.diff(days) != np.timedelta64(1, "D")):
        raise RuntimeError("seattle_weather: expected 1461 consecutive days from vega_datasets")
    return df


def seattle_windows(window=3, dtype=np.float64):
    """Windows for "tomorrow's temp_max from the last ``window`` days of all four features".

    Returns ``X (1461 - window, window, 4)`` with columns :data:`SEATTLE_FEATURES`, ``y (N, 1)``
    the next day's ``temp_max`` in °C, and ``dates (N,)`` (``datetime64[D]``), the date of each
    TARGET day: window ``i`` reads days ``dates[i] - window .. dates[i] - 1``.
    """
    df = seattle_weather()
    X, _ = make_windows(df[list(SEATTLE_FEATURES)].to_numpy(dtype=dtype), window)
    y = df["temp_max"].to_numpy(dtype=dtype)[window:, None]
    dates = df["date"].to_numpy().astype("datetime64[D]")[window:]
    return X, y, dates


Split = namedtuple("Split", ["X", "y", "dates"])


def _years(dates):
    return np.asarray(dates).astype("datetime64[Y]").astype(int) + 1970


def chronological_split(X, y, dates, train_years=(2012, 2013), val_years=(2014,),
                        test_years=(2015,), drop_boundary=False):
    """Split windows by the year of their TARGET day: returns ``(train, val, test)`` Splits.

    Each split is a ``Split(X, y, dates)``. With the defaults, train = targets in 2012-2013, val =
    2014, test = 2015; for Seattle with ``window=3`` that is 728, 365 and 365 windows (the first 3
    days of 2012 have no history).

    Why by the target's date: a training window never contains a day after 2013 (its inputs come
    before its target), so nothing from the validation or test years reaches training. The first
    windows of 2014 do read the last days of 2013 as INPUTS; that is not a leak (on 2014-01-01 the
    forecaster knows yesterday's weather) and every target is used exactly once. If you want each
    split to touch only its own years, ``drop_boundary=True`` also drops the windows whose first
    input day lies in another year-group (3 windows at the start of val and of test for
    ``window=3``).
    """
    X = as_float_array("X", X)
    y = check_shape("y", y, (X.shape[0], None))
    dates = np.asarray(dates).astype("datetime64[D]")
    if dates.shape != (X.shape[0],):
        raise ValueError(f"dates: expected shape ({X.shape[0]},), got {dates.shape}")
    target_year = _years(dates)
    first_input_year = _years(dates - np.timedelta64(X.shape[1], "D"))
    splits = []
    for years in (train_years, val_years, test_years):
        keep = np.isin(target_year, years)
        if drop_boundary:
            keep &= np.isin(first_input_year, years)
        splits.append(Split(X[keep], y[keep], dates[keep]))
    return tuple(splits)


class StandardScaler:
    """Subtract a mean and divide by a standard deviation, per feature (the last axis).

    ``fit`` on the TRAINING data only, then ``transform`` train, val and test with those same
    numbers. Chapter 5's blog post normalises the test set with its own mean and standard deviation:
    the test inputs then carry information about the test period (its mean), and the model's
    output is read on a different scale from the one it was trained on. Use one scaler for the
    inputs ``X (N, T, D)`` and another for the target ``y (N, 1)``; ``inverse_transform`` turns
    scaled predictions back into °C. The standard deviation is the population one (``ddof=0``);
    a constant feature gets a scale of 1.
    """

    def __init__(self):
        self.mean = None
        self.std = None

    def fit(self, a):
        a = as_float_array("a", a)
        axes = tuple(range(a.ndim - 1))
        self.mean = a.mean(axis=axes, dtype=np.float64)
        std = a.std(axis=axes, dtype=np.float64)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def _check(self, a):
        if self.mean is None:
            raise ValueError("StandardScaler: call fit(train) before transform")
        a = as_float_array("a", a)
        if a.ndim == 0 or a.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"a: expected shape (..., {self.mean.shape[0]}) (the features seen by fit), "
                             f"got {a.shape}")
        return a

    def transform(self, a):
        a = self._check(a)
        return ((a - self.mean) / self.std).astype(a.dtype)

    def inverse_transform(self, a):
        a = self._check(a)
        return (a * self.std + self.mean).astype(a.dtype)

    def fit_transform(self, a):
        return self.fit(a).transform(a)


# ----------------------------------------------------------------------------------------------
# 2. The adding problem


def adding_problem(n, T, seed, variant="hochreiter1997", variable_length=False, dtype=np.float64):
    """``n`` sequences of the adding problem: ``X (n, T, 2)`` (value, marker) and target ``y (n, 1)``.

    ``variant="hochreiter1997"`` (LSTM paper, Experiment 4):

    * values uniform in [-1, 1]; markers in {1.0, 0.0, -1.0};
    * X1: one of the first 10 pairs is marked 1.0; X2: one of the first ``T//2 - 1`` pairs not
      yet marked is marked 1.0 (so X2 may come before X1 in time);
    * the first and the last pair carry marker -1.0, unless the first pair got marked; in that
      rare case its value is set to 0 (the paper's "X1 = 0") and its marker stays 1.0;
    * target ``0.5 + (X1 + X2) / 4`` in [0, 1]; a sequence counts as solved if ``|error| < 0.04``
      (:func:`adding_accuracy`).

    In the paper each sequence has a random length in ``[T, T + T/10]``. With
    ``variable_length=False`` (the default) every sequence has length exactly ``T`` so that
    they stack into one array for batching; ``variable_length=True`` draws the lengths as the
    paper does (integers in ``[T, T + T//10]``) and returns ``X`` as a LIST of ``(L_i, 2)``
    arrays. The marker positions depend on ``T`` only, never on the drawn length.

    ``variant="le2015"`` (Le, Jaitly & Hinton 2015, the modern convention): values uniform in
    [0, 1], markers in {0, 1} with exactly two 1s, target ``X1 + X2`` in [0, 2]. Where the two
    markers go is our choice, the common one since Arjovsky et al. (2016): one uniformly in the
    first half ``[0, T//2)``, one in the second half ``[T//2, T)``. Fixed length only.

    For ``T < 20`` the 1997 rules are kept where possible: X1 comes from the first
    ``min(10, T - 1)`` pairs (never the final one); ``T >= 6`` is required.
    """
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    if variant == "le2015":
        if T < 2:
            raise ValueError(f"T: expected T >= 2 for variant 'le2015', got {T}")
        if variable_length:
            raise ValueError("variable_length: only the 'hochreiter1997' variant has random lengths")
        values = rng.random((n, T))
        markers = np.zeros((n, T))
        i1 = rng.integers(0, T // 2, n)
        i2 = rng.integers(T // 2, T, n)
        markers[rows, i1] = 1.0
        markers[rows, i2] = 1.0
        y = values[rows, i1] + values[rows, i2]
        return np.stack([values, markers], axis=-1).astype(dtype), y[:, None].astype(dtype)
    if variant != "hochreiter1997":
        raise ValueError(f"variant: expected 'hochreiter1997' or 'le2015', got {variant!r}")
    if T < 6:
        raise ValueError(f"T: expected T >= 6 for variant 'hochreiter1997', got {T}")

    lengths = rng.integers(T, T + T // 10 + 1, n) if variable_length else np.full(n, T)
    L = int(lengths.max())
    values = rng.uniform(-1.0, 1.0, (n, L))
    markers = np.zeros((n, L))
    # X1 among the first ten pairs; X2 among the first T//2 - 1 pairs other than X1's.
    i1 = rng.integers(0, min(10, T - 1), n)
    m = T // 2 - 1
    r = rng.integers(0, m - (i1 < m), n)  # one fewer choice when X1 took one of the m places
    i2 = r + ((i1 < m) & (r >= i1))  # skip over X1's place
    markers[:, 0] = -1.0
    markers[rows, lengths - 1] = -1.0
    markers[rows, i1] = 1.0
    markers[rows, i2] = 1.0
    values[markers[:, 0] == 1.0, 0] = 0.0  # the first pair got marked: X1 = 0
    y = 0.5 + (values[rows, i1] + values[rows, i2]) / 4.0
    X = np.stack([values, markers], axis=-1).astype(dtype)
    y = y[:, None].astype(dtype)
    if variable_length:
        return [X[i, :lengths[i]] for i in range(n)], y
    return X, y


def adding_accuracy(pred, y, tol=0.04):
    """Fraction of sequences with ``|pred - y| < tol`` (0.04 is the 1997 paper's criterion)."""
    pred = as_float_array("pred", pred)
    y = check_shape("y", y, pred.shape)
    return float(np.mean(np.abs(pred - y) < tol))


# ----------------------------------------------------------------------------------------------
# 3. Temporal XOR (Elman 1990)

TemporalXOR = namedtuple("TemporalXOR", ["bits", "X", "y", "predictable"])


def temporal_xor(n_triples, seed, dtype=np.float64):
    """Elman's stream: two random bits, then their XOR, repeated ``n_triples`` times.

    Returns ``TemporalXOR(bits, X, y, predictable)``:

    * ``bits (3 * n_triples,)`` int64, with ``bits[3k+2] == bits[3k] ^ bits[3k+1]``;
    * ``X (1, 3n - 1, 1)`` the stream without its last bit and ``y (1, 3n - 1, 1)`` the stream
      without its first bit: one long sequence (batch of 1), predict the next bit at every step;
    * ``predictable (3n - 1,)`` bool, True where the target is an XOR bit (every third step):
      only there can a network do better than chance.

    Elman used 3,000 bits (``n_triples=1000``). This is not the "x_t XOR x_(t-1)" task of many
    modern demos.
    """
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, 2, (n_triples, 2))
    bits = np.concatenate([pairs, pairs[:, :1] ^ pairs[:, 1:]], axis=1).reshape(-1)
    X = bits[:-1].astype(dtype).reshape(1, -1, 1)
    y = bits[1:].astype(dtype).reshape(1, -1, 1)
    predictable = (np.arange(1, 3 * n_triples) % 3) == 2
    return TemporalXOR(bits, X, y, predictable)


# ----------------------------------------------------------------------------------------------
# 4. Embedded Reber grammar

REBER_SYMBOLS = "BTPSXVE"
# state -> {symbol: next state}; entered after the initial B, "end" after E.
REBER_GRAPH = {
    0: {"T": 1, "P": 5},
    1: {"S": 1, "X": 2},
    2: {"S": 3, "X": 5},
    3: {"E": "end"},
    4: {"P": 2, "V": 3},
    5: {"T": 5, "V": 4},
}


def _reber_string(rng):
    """Walk the Reber graph from B to E, choosing each edge with equal probability."""
    out, state = ["B"], 0
    while state != "end":
        edges = REBER_GRAPH[state]
        symbol = list(edges)[rng.integers(len(edges))]
        out.append(symbol)
        state = edges[symbol]
    return "".join(out)


def reber_strings(n, seed):
    """``n`` strings of the (plain) Reber grammar, e.g. ``"BTSSXXTVVE"``."""
    rng = np.random.default_rng(seed)
    return [_reber_string(rng) for _ in range(n)]


def embedded_reber(n, seed):
    """``n`` embedded Reber strings: ``B T <reber> T E`` or ``B P <reber> P E`` (T or P at 50%).

    To predict the second-to-last symbol a network must remember the second one across the whole
    inner string: the long-range part of the task.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = "TP"[rng.integers(2)]
        out.append("B" + c + _reber_string(rng) + c + "E")
    return out


def reber_next_symbols(s):
    """Legal next symbols after each prefix of a Reber string: a list of ``len(s) - 1`` sets.

    Entry ``i`` is the set of symbols that may follow ``s[:i+1]`` (the target of a network that
    has read ``s[i]``). Raises ``ValueError`` if ``s`` is not a legal Reber string.
    """
    if not s or s[0] != "B":
        raise ValueError(f"s: a Reber string starts with 'B', got {s!r}")
    sets, state = [set(REBER_GRAPH[0])], 0
    for i, symbol in enumerate(s[1:], start=1):
        if state == "end" or symbol not in REBER_GRAPH[state]:
            raise ValueError(f"s: {s!r} is not a Reber string (symbol {symbol!r} at position {i})")
        state = REBER_GRAPH[state][symbol]
        sets.append(set() if state == "end" else set(REBER_GRAPH[state]))
    if state != "end":
        raise ValueError(f"s: {s!r} is not a Reber string (it stops before 'E')")
    return sets[:-1]


def embedded_reber_next_symbols(s):
    """Legal next symbols after each prefix of an embedded Reber string (``len(s) - 1`` sets)."""
    if len(s) < 5 or s[0] != "B" or s[1] not in "TP" or s[-2] != s[1] or s[-1] != "E":
        raise ValueError(f"s: {s!r} is not an embedded Reber string (B, T|P, <reber>, same T|P, E)")
    return [{"T", "P"}, {"B"}] + reber_next_symbols(s[2:-2]) + [{s[1]}, {"E"}]


def reber_is_valid(s):
    """True if ``s`` is a string of the Reber grammar (see :data:`REBER_GRAPH`)."""
    try:
        reber_next_symbols(s)
    except ValueError:
        return False
    return True


def embedded_reber_is_valid(s):
    """True if ``s`` is ``B T <reber> T E`` or ``B P <reber> P E``."""
    try:
        embedded_reber_next_symbols(s)
    except ValueError:
        return False
    return True


def reber_one_hot(s, dtype=np.float64):
    """One-hot encoding ``(len(s), 7)`` of a string over :data:`REBER_SYMBOLS` (order BTPSXVE)."""
    if any(c not in REBER_SYMBOLS for c in s):
        raise ValueError(f"s: expected symbols from {REBER_SYMBOLS!r}, got {s!r}")
    out = np.zeros((len(s), len(REBER_SYMBOLS)), dtype=dtype)
    out[np.arange(len(s)), [REBER_SYMBOLS.index(c) for c in s]] = 1.0
    return out


def next_symbols_multi_hot(sets, dtype=np.float64):
    """Turn a list of legal-next-symbol sets into a ``(len(sets), 7)`` 0/1 target array."""
    out = np.zeros((len(sets), len(REBER_SYMBOLS)), dtype=dtype)
    for i, legal in enumerate(sets):
        out[i, [REBER_SYMBOLS.index(c) for c in legal]] = 1.0
    return out


def legal_next_correct(scores, sets):
    """The "predict all legal next symbols" test for one string.

    ``scores (len(sets), 7)`` are a network's outputs after each symbol. The string counts as
    correct if at every step every legal symbol scores higher than every illegal one (so the
    top-k outputs, k = number of legal symbols, are exactly the legal ones).
    """
    scores = check_shape("scores", scores, (len(sets), len(REBER_SYMBOLS)))
    for row, legal in zip(scores, sets):
        mask = np.array([c in legal for c in REBER_SYMBOLS])
        if mask.all() or not mask.any():
            continue
        if row[mask].min() <= row[~mask].max():
            return False
    return True


# ----------------------------------------------------------------------------------------------
# 5. Characters from the standard library

CORPUS_MODULES = ("textwrap", "string", "bisect", "heapq", "random", "functools",
                  "collections", "difflib", "argparse")


def char_corpus(max_chars=200_000, modules=CORPUS_MODULES):
    """Text that ships with Python: the source of a few standard-library modules, concatenated.

    Files are read in the fixed order of ``modules`` (found with ``inspect.getsourcefile``),
    joined by a newline and cut to ``max_chars`` characters. The text is the same on every call
    for one Python installation (it changes with the Python version).
    """
    parts = []
    for name in modules:
        path = inspect.getsourcefile(importlib.import_module(name))
        if path is None:
            raise RuntimeError(f"char_corpus: no source file for the module {name!r}")
        with open(path, encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)[:max_chars]


class Vocab:
    """Character vocabulary: ``itos`` (index -> char, sorted) and ``stoi`` (char -> index)."""

    def __init__(self, text):
        self.itos = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def encode(self, text):
        """String -> int64 array of indices."""
        try:
            return np.array([self.stoi[c] for c in text], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"text: character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        """Sequence of indices -> string."""
        return "".join(self.itos[int(i)] for i in ids)


def char_batches(ids, batch_size, seq_len, shuffle=True, seed=0):
    """Yield ``(x, y)`` int64 batches ``(batch_size, seq_len)`` with ``y`` the next character of ``x``.

    The id stream is cut into non-overlapping chunks of ``seq_len + 1`` ids starting at multiples
    of ``seq_len`` (consecutive chunks share one id); ``x = chunk[:-1]``, ``y = chunk[1:]``. The
    chunks are shuffled with ``seed`` (or kept in order) and grouped into batches; an incomplete
    last batch is dropped so that every batch has the same shape.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids: expected a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
    starts = np.arange(0, len(ids) - seq_len, seq_len)
    if shuffle:
        starts = np.random.default_rng(seed).permutation(starts)
    offsets = np.arange(seq_len + 1)
    for b in range(len(starts) // batch_size):
        chunks = ids[starts[b * batch_size:(b + 1) * batch_size, None] + offsets].astype(np.int64)
        yield chunks[:, :-1], chunks[:, 1:]
