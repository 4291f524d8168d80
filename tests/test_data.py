"""rnnlib.data: shapes, determinism, and the rules of every task."""
import numpy as np
import pytest

from rnnlib import data

# ---------------------------------------------------------------- synthetic weather and windows


def test_synthetic_weather_shape_range_and_seed():
    s = data.synthetic_weather(500, seed=3)
    assert s.shape == (500, 3) and s.dtype == np.float64
    np.testing.assert_array_equal(s, data.synthetic_weather(500, seed=3))
    assert not np.array_equal(s, data.synthetic_weather(500, seed=4))
    assert data.synthetic_weather(50, seed=3, dtype=np.float32).dtype == np.float32
    # humidity and wind are uniform in [0, 1); temperature stays near [0, 1] around 0.5
    assert s[:, 1:].min() >= 0 and s[:, 1:].max() < 1
    assert abs(s[:, 0].mean() - 0.5) < 0.1 and 0.05 < s[:, 0].std() < 0.3


def test_synthetic_temperature_follows_the_recipe():
    # T[t] = 0.5 + (1 - pull) * (mean of 3 previous days - 0.5) + N(0, noise): residual std = noise
    s = data.synthetic_weather(5000, seed=0, noise=0.1, pull=0.2)
    T = s[:, 0]
    prev = np.stack([T[i:len(T) - 3 + i] for i in range(3)], axis=1).mean(axis=1)
    resid = T[3:] - (0.5 + 0.8 * (prev - 0.5))
    assert abs(resid.mean()) < 0.01 and abs(resid.std() - 0.1) < 0.005


def test_make_windows_predicts_the_next_day():
    series = np.arange(30, dtype=np.float64).reshape(10, 3)  # day d = [3d, 3d+1, 3d+2]
    X, y = data.make_windows(series, window=3, target_col=1)
    assert X.shape == (7, 3, 3) and y.shape == (7, 1)
    np.testing.assert_array_equal(X[0], series[0:3])
    np.testing.assert_array_equal(X[6], series[6:9])
    np.testing.assert_array_equal(y[:, 0], series[3:, 1])
    with pytest.raises(ValueError, match="series"):
        data.make_windows(np.zeros(10), 3)
    with pytest.raises(ValueError, match="target_col"):
        data.make_windows(series, 3, target_col=3)


# ---------------------------------------------------------------- Seattle


@pytest.fixture(scope="module")
def seattle():
    return data.seattle_windows(window=3)


def test_seattle_weather_table():
    df = data.seattle_weather()
    assert len(df) == 1461
    assert list(df.columns) == ["date", "temp_max", "temp_min", "precipitation", "wind"]
    assert str(df["date"].iloc[0].date()) == "2012-01-01" and str(df["date"].iloc[-1].date()) == "2015-12-31"
    assert (df["temp_max"] >= df["temp_min"]).all()


def test_seattle_windows(seattle):
    X, y, dates = seattle
    df = data.seattle_weather()
    assert X.shape == (1458, 3, 4) and y.shape == (1458, 1) and dates.shape == (1458,)
    assert str(dates[0]) == "2012-01-04"
    np.testing.assert_array_equal(X[0, :, 0], df["temp_max"].to_numpy()[:3])
    np.testing.assert_array_equal(X[0, :, 3], df["wind"].to_numpy()[:3])
    assert y[0, 0] == df["temp_max"].iloc[3]
    assert y[-1, 0] == df["temp_max"].iloc[-1]


def test_chronological_split_sizes_and_no_overlap(seattle):
    train, val, test = data.chronological_split(*seattle)
    assert (len(train.y), len(val.y), len(test.y)) == (728, 365, 365)
    assert train.X.shape == (728, 3, 4) and test.y.shape == (365, 1)
    assert train.dates.max() < val.dates.min() and val.dates.max() < test.dates.min()
    assert not set(train.dates) & set(val.dates) and not set(val.dates) & set(test.dates)
    assert str(train.dates.max()) == "2013-12-31" and str(val.dates.min()) == "2014-01-01"
    # no training window contains a day of 2014 or later (its last input is the day before its target)
    assert str(train.dates.max() - np.timedelta64(1, "D")) < "2014-01-01"
    strict = data.chronological_split(*seattle, drop_boundary=True)
    assert [len(s.y) for s in strict] == [728, 362, 362]
    assert str(strict[1].dates.min()) == "2014-01-04"


def test_scaler_fitted_on_train_only(seattle):
    train, val, test = data.chronological_split(*seattle)
    sx = data.StandardScaler().fit(train.X)
    np.testing.assert_allclose(sx.mean, train.X.reshape(-1, 4).mean(axis=0))
    np.testing.assert_allclose(sx.std, train.X.reshape(-1, 4).std(axis=0))
    assert not np.allclose(sx.mean, test.X.reshape(-1, 4).mean(axis=0), atol=0.05)
    Xtr = sx.transform(train.X)
    np.testing.assert_allclose(Xtr.reshape(-1, 4).mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Xtr.reshape(-1, 4).std(axis=0), 1, atol=1e-12)
    Xte = sx.transform(test.X)
    assert np.abs(Xte.reshape(-1, 4).mean(axis=0)).max() > 0.01  # test not re-centred on itself
    sy = data.StandardScaler().fit(train.y)
    assert sy.mean[0] == pytest.approx(train.y.mean())
    np.testing.assert_allclose(sy.inverse_transform(sy.transform(test.y)), test.y, atol=1e-12)
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 1\)"):
        sy.transform(test.X)
    with pytest.raises(ValueError, match="fit"):
        data.StandardScaler().transform(test.y)


def test_scaler_keeps_float32_and_constant_features():
    a = np.ones((5, 2), dtype=np.float32)
    a[:, 1] = np.arange(5)
    s = data.StandardScaler().fit(a)
    out = s.transform(a)
    assert out.dtype == np.float32 and np.all(out[:, 0] == 0)


# ---------------------------------------------------------------- adding problem


def test_adding_hochreiter1997_rules():
    T, n = 50, 2000
    X, y = data.adding_problem(n, T, seed=0)
    assert X.shape == (n, T, 2) and y.shape == (n, 1)
    values, markers = X[..., 0], X[..., 1]
    assert values.min() >= -1 and values.max() <= 1
    assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
    assert np.all((markers == 1).sum(axis=1) == 2)
    assert np.all(markers[:, -1] == -1)
    first_marked = markers[:, 0] == 1
    assert np.all(markers[~first_marked, 0] == -1)
    assert np.all(values[first_marked, 0] == 0)  # "X1 = 0 if the first pair got marked"
    assert 0 < first_marked.sum() < n * 0.2  # rare but happens
    assert np.all((markers == -1).sum(axis=1) == 2 - first_marked)
    pos = np.sort(np.argwhere(markers == 1)[:, 1].reshape(n, 2), axis=1)
    # one mark among the first 10 pairs, both among the first max(10, T/2 - 1)
    assert np.all(pos[:, 0] < 10) and np.all(pos[:, 1] < max(10, T // 2 - 1))
    assert pos[:, 1].max() == T // 2 - 2  # X2 can reach the last of the first T/2 - 1 pairs
    expected = 0.5 + (values * (markers == 1)).sum(axis=1) / 4
    np.testing.assert_allclose(y[:, 0], expected, rtol=0, atol=1e-15)
    assert y.min() >= 0 and y.max() <= 1


def test_adding_determinism_and_variable_length():
    X1, y1 = data.adding_problem(10, 30, seed=5)
    X2, y2 = data.adding_problem(10, 30, seed=5)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, data.adding_problem(10, 30, seed=6)[0])
    Xs, y = data.adding_problem(200, 100, seed=1, variable_length=True)
    lengths = np.array([x.shape[0] for x in Xs])
    assert lengths.min() >= 100 and lengths.max() <= 110 and len(set(lengths)) > 5
    for x, target in zip(Xs, y[:, 0]):
        assert x[-1, 1] == -1 and (x[:, 1] == 1).sum() == 2
        assert target == pytest.approx(0.5 + x[x[:, 1] == 1, 0].sum() / 4)
    assert data.adding_problem(3, 20, seed=0, dtype=np.float32)[0].dtype == np.float32


def test_adding_le2015():
    T = 40
    X, y = data.adding_problem(500, T, seed=2, variant="le2015")
    assert X.shape == (500, T, 2) and y.shape == (500, 1)
    values, markers = X[..., 0], X[..., 1]
    assert values.min() >= 0 and values.max() <= 1
    assert set(np.unique(markers)) == {0.0, 1.0} and np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :T // 2].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), atol=1e-15)
    with pytest.raises(ValueError, match="variant"):
        data.adding_problem(5, 20, seed=0, variant="nope")
    with pytest.raises(ValueError, match="T"):
        data.adding_problem(5, 4, seed=0)


def test_adding_accuracy():
    y = np.array([[0.5], [0.2], [0.9], [0.1]])
    pred = y + np.array([[0.0], [0.039], [-0.05], [0.041]])
    assert data.adding_accuracy(pred, y) == 0.5
    assert data.adding_accuracy(pred, y, tol=0.1) == 1.0
    with pytest.raises(ValueError, match="y"):
        data.adding_accuracy(pred, y[:3])


# ---------------------------------------------------------------- temporal XOR


def test_temporal_xor():
    d = data.temporal_xor(1000, seed=0)
    assert d.bits.shape == (3000,) and set(np.unique(d.bits)) == {0, 1}
    triples = d.bits.reshape(-1, 3)
    np.testing.assert_array_equal(triples[:, 2], triples[:, 0] ^ triples[:, 1])
    assert 0.45 < triples[:, :2].mean() < 0.55
    assert d.X.shape == d.y.shape == (1, 2999, 1)
    np.testing.assert_array_equal(d.X[0, 1:, 0], d.y[0, :-1, 0])  # y is X shifted by one
    np.testing.assert_array_equal(d.y[0, :, 0], d.bits[1:])
    # the predictable targets are exactly the XOR bits, every third step
    assert d.predictable.sum() == 1000 and d.predictable[1] and not d.predictable[0]
    xb = d.X[0, :, 0]
    prev2 = np.concatenate([[0.0], xb[:-1]])
    np.testing.assert_array_equal(d.y[0, d.predictable, 0], np.logical_xor(prev2, xb)[d.predictable])
    np.testing.assert_array_equal(d.bits, data.temporal_xor(1000, seed=0).bits)


# ---------------------------------------------------------------- Reber grammar


@pytest.mark.parametrize("s", ["BTSSXXTVVE", "BPVVE", "BTXXVPSE"])
def test_reber_legal_examples(s):
    assert data.reber_is_valid(s)
    assert data.embedded_reber_is_valid("BT" + s + "TE") and data.embedded_reber_is_valid("BP" + s + "PE")
    assert not data.embedded_reber_is_valid("BT" + s + "PE")  # must repeat the second symbol


@pytest.mark.parametrize("s", ["BTSSPXSE", "TSSXXTVVE", "BTSSXXTVV", "BTSSXXTVVEE", "", "BPVVEX"])
def test_reber_illegal_examples(s):
    assert not data.reber_is_valid(s)
    assert not data.embedded_reber_is_valid("BT" + s + "TE")


def test_embedded_reber_generated_strings_are_valid():
    strings = data.embedded_reber(500, seed=0)
    assert strings == data.embedded_reber(500, seed=0)
    assert all(data.embedded_reber_is_valid(s) for s in strings)
    assert all(data.reber_is_valid(s[2:-2]) for s in strings)
    assert 0.4 < np.mean([s[1] == "T" for s in strings]) < 0.6
    assert all(data.reber_is_valid(s) for s in data.reber_strings(200, seed=1))


def test_reber_next_symbols_and_encoding():
    assert data.reber_next_symbols("BPVVE") == [{"T", "P"}, {"T", "V"}, {"P", "V"}, {"E"}]
    sets = data.embedded_reber_next_symbols("BPBPVVEPE")
    assert sets == [{"T", "P"}, {"B"}, {"T", "P"}, {"T", "V"}, {"P", "V"}, {"E"}, {"P"}, {"E"}]
    # every generated string: each actual next symbol is legal
    for s in data.embedded_reber(100, seed=3):
        sets = data.embedded_reber_next_symbols(s)
        assert len(sets) == len(s) - 1 and all(s[i + 1] in sets[i] for i in range(len(s) - 1))
    oh = data.reber_one_hot("BTE")
    np.testing.assert_array_equal(oh, np.eye(7)[[0, 1, 6]])
    mh = data.next_symbols_multi_hot([{"T", "P"}, {"E"}])
    np.testing.assert_array_equal(mh, [[0, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1]])
    with pytest.raises(ValueError, match="s"):
        data.reber_one_hot("BTQ")


def test_legal_next_correct():
    sets = data.embedded_reber_next_symbols("BPBPVVEPE")
    perfect = data.next_symbols_multi_hot(sets)
    assert data.legal_next_correct(perfect, sets)
    wrong = perfect.copy()
    wrong[6] = data.next_symbols_multi_hot([{"T"}])[0]  # forgot the second symbol: predicts T, not P
    assert not data.legal_next_correct(wrong, sets)


# ---------------------------------------------------------------- characters


def test_char_corpus_and_vocab():
    text = data.char_corpus(max_chars=50_000)
    assert len(text) == 50_000 and text == data.char_corpus(max_chars=50_000)
    assert "def " in text
    vocab = data.Vocab(text)
    assert vocab.itos == sorted(set(text)) and len(vocab) == len(set(text))
    ids = vocab.encode(text[:1000])
    assert ids.dtype == np.int64 and vocab.decode(ids) == text[:1000]
    assert all(vocab.stoi[c] == i for i, c in enumerate(vocab.itos))
    with pytest.raises(ValueError, match="vocabulary"):
        vocab.encode("\x00")


def test_char_batches():
    ids = np.arange(1000)
    batches = list(data.char_batches(ids, batch_size=4, seq_len=10, seed=0))
    assert len(batches) == 99 // 4
    for x, y in batches:
        assert x.shape == y.shape == (4, 10) and x.dtype == np.int64
        np.testing.assert_array_equal(y, x + 1)  # y is the next id
        assert np.all(x[:, 0] % 10 == 0)
    starts = np.concatenate([x[:, 0] for x, _ in batches])
    assert len(set(starts)) == len(starts)
    again = list(data.char_batches(ids, batch_size=4, seq_len=10, seed=0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
    in_order = next(data.char_batches(ids, batch_size=2, seq_len=10, shuffle=False))
    np.testing.assert_array_equal(in_order[0][:, 0], [0, 10])


@pytest.mark.parametrize("n_ids,expected_chunks", [(2 * 5 + 1, 2), (2 * 5, 1), (2 * 5 + 2, 2), (5, 0), (6, 1)])
def test_char_batches_keeps_the_last_chunk_when_it_fits_exactly(n_ids, expected_chunks):
    """A chunk needs seq_len + 1 ids: 11 ids make two chunks of 5 steps (0..5 and 5..10), 10 ids one."""
    batches = list(data.char_batches(np.arange(n_ids), batch_size=1, seq_len=5, shuffle=False))
    assert len(batches) == expected_chunks
    if expected_chunks:
        np.testing.assert_array_equal(np.concatenate([x[0] for x, _ in batches]), np.arange(5 * expected_chunks))
        assert batches[-1][1][0, -1] == 5 * expected_chunks
    with pytest.raises(ValueError, match=r"^ids: expected a 1-D integer array, got shape \(2, 3\) dtype int64$"):
        next(data.char_batches(np.zeros((2, 3), dtype=np.int64), 1, 2))
    with pytest.raises(ValueError, match=r"^ids: expected a 1-D integer array, got shape \(3,\) dtype float64$"):
        next(data.char_batches(np.zeros(3), 1, 2))


def exact_message(call, message, error=ValueError):
    with pytest.raises(error) as err:
        call()
    assert str(err.value) == message


def test_make_windows_defaults_bounds_and_messages():
    series = np.arange(20.0).reshape(10, 2)
    X, y = data.make_windows(series)
    X3, y3 = data.make_windows(series, 3, 0)
    assert np.array_equal(X, X3) and np.array_equal(y, y3) and X.shape == (7, 3, 2)
    X1, y1 = data.make_windows(series, window=1)  # one day of history is allowed
    assert X1.shape == (9, 1, 2) and np.array_equal(y1[:, 0], series[1:, 0])
    X9, _ = data.make_windows(series, window=9)
    assert X9.shape == (1, 9, 2)
    exact_message(lambda: data.make_windows(series, window=10), "window: expected 1 <= window < n_days = 10, got 10")
    exact_message(lambda: data.make_windows(series, window=0), "window: expected 1 <= window < n_days = 10, got 0")
    exact_message(lambda: data.make_windows(series[:, 0]), "series: expected shape (?, ?), got (10,)")


def test_seattle_windows_window_and_dtype():
    X, y, dates = data.seattle_windows()
    assert X.shape == (1458, 3, 4) and y.shape == (1458, 1) and X.dtype == y.dtype == np.float64
    X5, y5, dates5 = data.seattle_windows(window=5, dtype=np.float32)
    assert X5.shape == (1456, 5, 4) and X5.dtype == y5.dtype == np.float32
    np.testing.assert_array_equal(dates5, dates[2:])


def test_chronological_split_messages_and_boundary():
    X, y, dates = data.seattle_windows()
    exact_message(lambda: data.chronological_split(X.astype(np.int64), y, dates),
                  "X: expected dtype float32 or float64, got int64")
    exact_message(lambda: data.chronological_split(X, y[:-1], dates),
                  "y: expected shape (1458, ?), got (1457, 1)")
    exact_message(lambda: data.chronological_split(X, y, dates[:-1]), "dates: expected shape (1458,), got (1457,)")
    _, val, test = data.chronological_split(X, y, dates, drop_boundary=True)
    assert len(val.X) == 365 - 3 and len(test.X) == 365 - 3  # the first input day of each is 3 days back


def test_standard_scaler_statistics_in_float64_and_edge_cases():
    a = np.array([[2.0 ** 25, 0.5], [1.0, -0.5], [1.0, 0.5], [1.0, -0.5], [-2.0 ** 25, 0.5]], dtype=np.float32)
    s = data.StandardScaler().fit(a)
    np.testing.assert_allclose(s.mean, a.astype(np.float64).mean(axis=0), rtol=1e-15)  # float32 sums lose the 1s
    np.testing.assert_allclose(s.std, a.astype(np.float64).std(axis=0), rtol=1e-15)
    assert s.std[1] == pytest.approx(0.48989794855663565)  # below 1 and kept
    const = data.StandardScaler().fit(np.full((4, 1), 3.0))
    assert const.std[0] == 1.0
    z = s.transform(a)
    assert z.dtype == np.float32 and s.inverse_transform(z).dtype == np.float32
    np.testing.assert_allclose(s.transform(np.array([1.0, 0.5])), (np.array([1.0, 0.5]) - s.mean) / s.std)
    np.testing.assert_array_equal(data.StandardScaler().fit_transform(a), s.transform(a))
    exact_message(lambda: data.StandardScaler().transform(a), "StandardScaler: call fit(train) before transform")
    exact_message(lambda: data.StandardScaler().fit(np.zeros((2, 2), dtype=np.int64)),
                  "a: expected dtype float32 or float64, got int64")
    exact_message(lambda: s.transform(np.zeros((2, 2), dtype=np.int64)), "a: expected dtype float32 or float64, got int64")
    exact_message(lambda: s.transform(np.float64(1.0)),
                  "a: expected shape (..., 2) (the features seen by fit), got ()")


def test_adding_accuracy_is_strict_and_checks_names():
    y = np.zeros((4, 1))
    pred = np.array([[0.25], [-0.25], [0.1], [0.0]])
    assert data.adding_accuracy(pred, y, tol=0.25) == 0.5  # |error| = tol is not a hit
    exact_message(lambda: data.adding_accuracy(pred.astype(int), y), "pred: expected dtype float32 or float64, got int64")
    exact_message(lambda: data.adding_accuracy(pred, y[:3]), "y: expected shape (4, 1), got (3, 1)")


def test_temporal_xor_and_reber_encodings_keep_the_dtype():
    xor = data.temporal_xor(5, seed=0, dtype=np.float32)
    assert xor.X.dtype == xor.y.dtype == np.float32
    assert data.reber_one_hot("BTSE", dtype=np.float32).dtype == np.float32
    assert data.next_symbols_multi_hot([{"T", "P"}], dtype=np.float32).dtype == np.float32


def test_legal_next_correct_edge_rows():
    every, none = set(data.REBER_SYMBOLS), set()
    scores = np.zeros((2, 7))
    assert data.legal_next_correct(scores, [every, none])  # nothing to rank in either row: skipped
    bad = np.zeros((2, 7))
    bad[1, data.REBER_SYMBOLS.index("B")] = -1.0  # the legal symbol scores lowest
    assert not data.legal_next_correct(bad, [every, {"B"}])  # a skipped row does not end the check
    tie = np.zeros((1, 7))
    assert not data.legal_next_correct(tie, [{"B"}])  # a tie is not "higher"
    tie[0, data.REBER_SYMBOLS.index("B")] = 1e-9
    assert data.legal_next_correct(tie, [{"B"}])
    exact_message(lambda: data.legal_next_correct(np.zeros((1, 6)), [{"B"}]), "scores: expected shape (1, 7), got (1, 6)")


def test_char_corpus_joins_modules_with_a_newline_and_cuts(monkeypatch):
    import inspect
    import string
    import textwrap
    parts = [open(inspect.getsourcefile(m), encoding="utf-8").read() for m in (textwrap, string)]
    assert data.char_corpus(10 ** 7, ("textwrap", "string")) == parts[0] + "\n" + parts[1]
    assert len(data.char_corpus()) == 200_000
    import sys
    import types
    fake = types.ModuleType("compiled_only")
    fake.__file__ = "/nowhere/compiled_only.cpython-311-x86_64-linux-gnu.so"
    monkeypatch.setitem(sys.modules, "compiled_only", fake)
    exact_message(lambda: data.char_corpus(modules=("compiled_only",)),
                  "char_corpus: no source file for the module 'compiled_only'", RuntimeError)


def test_char_batches_shuffles_with_seed_0_by_default():
    ids = np.arange(200)
    default = [x for x, _ in data.char_batches(ids, 2, 5)]
    seeded = [x for x, _ in data.char_batches(ids, 2, 5, shuffle=True, seed=0)]
    ordered = [x for x, _ in data.char_batches(ids, 2, 5, shuffle=False)]
    assert all(np.array_equal(a, b) for a, b in zip(default, seeded)) and len(default) == len(seeded)
    assert not all(np.array_equal(a, b) for a, b in zip(default, ordered))


def test_synthetic_weather_is_exactly_the_recipe():
    """Recomputed from the same draws: days 0-2 uniform, every later day the pulled mean plus noise."""
    n, seed = 40, 7
    s = data.synthetic_weather(n, seed)
    np.testing.assert_array_equal(s, data.synthetic_weather(n, seed, noise=0.1, pull=0.2))  # the defaults
    rng = np.random.default_rng(seed)
    expected = rng.random((n, 3))
    eps = rng.normal(0.0, 0.1, n)
    for t in range(3, n):
        expected[t, 0] = 0.5 + 0.8 * (expected[t - 3:t, 0].mean() - 0.5) + eps[t]
    np.testing.assert_allclose(s, expected, rtol=0, atol=1e-15)
    assert data.synthetic_weather(4, seed).shape == (4, 3)
    exact_message(lambda: data.synthetic_weather(3, seed), "n_days: expected at least 4 days, got 3")


def marked(X):
    """The (sorted) positions of the two markers 1.0 of each sequence."""
    return [tuple(np.flatnonzero(row == 1.0)) for row in X[..., 1]]


def test_adding_hochreiter1997_marker_positions_are_all_reachable():
    """T = 7: X1 in the first min(10, T - 1) = 6 pairs, X2 in the first T//2 - 1 = 2 other than X1's;
    every such pair of places occurs in 5000 sequences, and no other."""
    X, y = data.adding_problem(5000, 7, seed=0)
    seen = marked(X)
    allowed = {tuple(sorted((i1, i2))) for i1 in range(6) for i2 in range(2) if i2 != i1}
    assert set(seen) == allowed
    # X1 uniform over its 6 places: the pair (0, 1) comes from X1 = 0 or X1 = 1, 1/3 of the sequences
    assert abs(seen.count((0, 1)) / len(seen) - 1 / 3) < 0.03
    assert X[:, :, 0].min() < -0.99 and X[:, :, 0].max() > 0.99  # values fill [-1, 1]
    X, y = data.adding_problem(3, 20, seed=0, dtype=np.float32)
    assert X.dtype == y.dtype == np.float32


def test_adding_variable_lengths_cover_t_to_t_plus_a_tenth():
    Xs, _ = data.adding_problem(400, 30, seed=1, variable_length=True)
    assert {len(x) for x in Xs} == {30, 31, 32, 33}


def test_adding_le2015_positions_bounds_and_messages():
    T = 9
    X, y = data.adding_problem(3000, T, seed=3, variant="le2015")
    firsts, seconds = zip(*marked(X))
    assert set(firsts) == set(range(T // 2)) and set(seconds) == set(range(T // 2, T))
    X2, y2 = data.adding_problem(5, 2, seed=0, variant="le2015", dtype=np.float32)  # T = 2 is enough
    assert X2.shape == (5, 2, 2) and X2.dtype == y2.dtype == np.float32
    exact_message(lambda: data.adding_problem(5, 1, seed=0, variant="le2015"),
                  "T: expected T >= 2 for variant 'le2015', got 1")
    exact_message(lambda: data.adding_problem(5, 10, seed=0, variant="le2015", variable_length=True),
                  "variable_length: only the 'hochreiter1997' variant has random lengths")
    assert data.adding_problem(2, 6, seed=0)[0].shape == (2, 6, 2)  # T = 6 is enough for 1997
    exact_message(lambda: data.adding_problem(2, 5, seed=0), "T: expected T >= 6 for variant 'hochreiter1997', got 5")


def test_reber_checks_name_the_problem():
    assert data.reber_strings(30, seed=1) == data.reber_strings(30, seed=1)
    exact_message(lambda: data.reber_next_symbols("TTE"), "s: a Reber string starts with 'B', got 'TTE'")
    exact_message(lambda: data.reber_next_symbols("BTQSE"), "s: 'BTQSE' is not a Reber string (symbol 'Q' at position 2)")
    exact_message(lambda: data.reber_next_symbols("BTXS"), "s: 'BTXS' is not a Reber string (it stops before 'E')")
    assert data.embedded_reber_is_valid("BTBTXSETE")
    for s in ("PTBTXSETE", "BXBTXSEXE", "BTBTXSEPE", "BTBTXSETX"):  # one condition broken in each
        assert not data.embedded_reber_is_valid(s), s
        exact_message(lambda: data.embedded_reber_next_symbols(s),
                      f"s: {s!r} is not an embedded Reber string (B, T|P, <reber>, same T|P, E)")
    exact_message(lambda: data.embedded_reber_next_symbols("BTTE"),
                  "s: 'BTTE' is not an embedded Reber string (B, T|P, <reber>, same T|P, E)")
    # five or six symbols pass the outer checks and fail inside
    exact_message(lambda: data.embedded_reber_next_symbols("BTBTE"), "s: 'B' is not a Reber string (it stops before 'E')")


@pytest.mark.parametrize("broken", ["gap", "repeat"])
def test_seattle_weather_refuses_a_broken_table(monkeypatch, broken):
    from vega_datasets import local_data
    original = local_data.seattle_weather

    def damaged():
        df = original()
        if broken == "gap":
            return df.drop(index=100)
        df.loc[100, "date"] = df.loc[99, "date"]  # 1461 rows, one day twice
        return df

    monkeypatch.setattr(local_data, "seattle_weather", damaged)
    exact_message(data.seattle_weather, "seattle_weather: expected 1461 consecutive days from vega_datasets", RuntimeError)
