"""Checks for problem set 9 (chapter 10): a padded-batch sequence classifier in PyTorch.

The task (:func:`make_task`): sequences of one-hot symbols A, B, C, D of random lengths; the label is
1 if the sequence contains the three symbols A, B, C next to each other, in that order, and 0 if it
does not (half of each). The notebook shows this generator; the checks draw fresh data from it.

The checks only pass plain data (tensors, lists, numbers) to the student's functions and read plain
data back (tensors; a returned ``PackedSequence`` is read field by field; a model is only handed back
to the student's own functions), so they work the same whether the student's code runs in this
process or in a sandboxed kernel.
"""
import secrets
import time

import numpy as np

from checks.grading import GradingError, compare_arrays, watch_calls

SYMBOLS = "ABCD"
PATTERN = (0, 1, 2)  # A, B, C
MIN_LEN, MAX_LEN = 5, 30
ACCURACY_THRESHOLD = 0.9
N_TRAIN, N_TEST = 2000, 1000


def contains_pattern(symbols, pattern=PATTERN):
    """True if the list of symbol indices contains ``pattern`` as consecutive entries."""
    symbols, k = list(symbols), len(pattern)
    return any(tuple(symbols[i:i + k]) == tuple(pattern) for i in range(len(symbols) - k + 1))


def make_task(n, seed, min_len=MIN_LEN, max_len=MAX_LEN):
    """``n`` labelled sequences: a list of float32 tensors ``(L_i, 4)`` (one-hot A, B, C, D) with
    ``L_i`` uniform in ``[min_len, max_len]``, and int64 labels ``(n,)``, 1 if the sequence contains
    A, B, C consecutively. Each label is 0 or 1 with probability 1/2; a positive gets the pattern
    written at a random place, a negative is redrawn until it does not contain it."""
    import torch

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    eye = np.eye(len(SYMBOLS), dtype=np.float32)
    seqs = []
    for y in labels:
        length = int(rng.integers(min_len, max_len + 1))
        while True:
            s = rng.integers(0, len(SYMBOLS), length)
            if y:
                i = int(rng.integers(0, length - len(PATTERN) + 1))
                s[i:i + len(PATTERN)] = PATTERN
            if contains_pattern(s) == bool(y):
                break
        seqs.append(torch.from_numpy(eye[s]))
    return seqs, torch.from_numpy(labels)


# ----------------------------------------------------------------------------------------------
# References (what the checks compare with)


def pad_reference(seqs):
    """``(padded (B, T_max, D), lengths (B,) int64)``: zeros after each sequence's end."""
    import torch

    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    padded = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1], dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    return padded, lengths


def alone_reference(module, seqs):
    """Run ``module`` on every sequence by itself (batch of one, no padding): the last states
    ``h_n`` (and ``c_n``) stacked along the batch axis, and the output of every sequence."""
    import torch

    states, outputs = [], []
    with torch.no_grad():
        for s in seqs:
            out, state = module(s[None])
            states.append(state if isinstance(state, tuple) else (state,))
            outputs.append(out[0])
    return tuple(torch.cat(parts, dim=1) for parts in zip(*states)), outputs


def _reference_codes():
    return {f.__code__ for f in (pad_reference, alone_reference)}


def _call(fn, name, args, describe):
    """Call the student's ``fn``; turn its errors into messages; refuse answers that call our references."""
    if not callable(fn):
        raise GradingError(f"{name} is not a function (got {type(fn).__name__})")
    try:
        with watch_calls(_reference_codes()) as called:
            got = fn(*args)
    except NotImplementedError:
        raise GradingError(f"{name} is not implemented yet (it raised NotImplementedError)") from None
    except GradingError:
        raise
    except Exception as exc:  # the student's error, reported as a message
        raise GradingError(f"{name}({describe}) raised {type(exc).__name__}: {exc}") from None
    if called:
        raise GradingError(f"{name} calls the grader's reference ({', '.join(sorted(set(called)))}): "
                           f"this part scores 0")
    return got


def random_sequences(rng):
    """A batch of 2-7 float64 sequences of different random lengths 1-9, not sorted longest first."""
    import torch

    B, D = int(rng.integers(2, 8)), int(rng.integers(1, 5))
    lengths = rng.choice(np.arange(1, 10), size=B, replace=False)
    if np.all(np.diff(lengths) < 0):  # never already sorted longest first: sorting must change the order
        lengths = lengths[::-1]
    return [torch.from_numpy(rng.standard_normal((int(L), D))) for L in lengths]


def _shapes(seqs):
    return f"a list of {len(seqs)} sequences of lengths {[len(s) for s in seqs]}, {seqs[0].shape[1]} features"


# ----------------------------------------------------------------------------------------------
# Checks, one per graded cell


def pad_sequences(pad_sequences, trials=3):
    """``pad_sequences(seqs) -> (padded, lengths)`` on fresh random lengths."""
    for _ in range(trials):
        seed = secrets.randbits(32)
        seqs = random_sequences(np.random.default_rng(seed))
        padded, lengths = pad_reference(seqs)
        call = f"pad_sequences({_shapes(seqs)}) [seed {seed}]"
        got = _call(pad_sequences, "pad_sequences", [[s.clone() for s in seqs]], _shapes(seqs))
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise GradingError(f"{call} must return two values (padded, lengths), got {type(got).__name__}")
        compare_arrays(f"{call}: output padded (batch first, zeros after each end)", _numpy(got[0]),
                       padded.numpy(), 0.0, 0.0)
        compare_arrays(f"{call}: output lengths", _numpy(got[1]), lengths.numpy(), 0.0, 0.0)
    return trials


def _numpy(value):
    """A tensor (or array, or list) as a NumPy array, for :func:`compare_arrays`."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def _as_packed(obj, call):
    """The student's return value as a ``PackedSequence`` (rebuilt from its fields if it lives elsewhere)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(obj, PackedSequence):
        return obj
    try:
        fields = [getattr(obj, f) for f in ("data", "batch_sizes", "sorted_indices", "unsorted_indices")]
        if not all(f is None or isinstance(f, torch.Tensor) for f in fields) or fields[0] is None:
            raise TypeError
        return PackedSequence(*fields)
    except Exception:
        raise GradingError(f"{call} must return a PackedSequence (from "
                           f"torch.nn.utils.rnn.pack_padded_sequence), got {type(obj).__name__}") from None


def pack_sequences(pack_sequences, trials=4):
    """``pack_sequences(seqs)`` must give a ``PackedSequence`` on which a recurrent module's last
    states equal those of running each sequence alone (and, unpacked, the same outputs)."""
    import torch
    from torch.nn.utils.rnn import pad_packed_sequence

    for trial in range(trials):
        seed = secrets.randbits(32)
        rng = np.random.default_rng(seed)
        seqs = random_sequences(rng)
        D = seqs[0].shape[1]
        kind = ("gru", "lstm")[trial % 2]
        num_layers, bidirectional = int(rng.integers(1, 3)), bool(trial >= 2)
        torch.manual_seed(seed)
        module = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](
            D, int(rng.integers(1, 6)), num_layers=num_layers, bidirectional=bidirectional, batch_first=True).double()
        call = f"pack_sequences({_shapes(seqs)}) [seed {seed}]"
        packed = _as_packed(_call(pack_sequences, "pack_sequences", [[s.clone() for s in seqs]], _shapes(seqs)),
                            call)
        expected_states, expected_outputs = alone_reference(module, seqs)
        where = (f"nn.{kind.upper()}(num_layers={num_layers}, bidirectional={bidirectional}) run on what "
                 f"{call} returned")
        try:
            with torch.no_grad():
                out, state = module(packed)
        except Exception as exc:
            raise GradingError(f"{where} raised {type(exc).__name__}: {exc}") from None
        states = state if isinstance(state, tuple) else (state,)
        for label, got, expected in zip(("h_n", "c_n"), states, expected_states):
            try:
                compare_arrays(f"{label}", got.numpy(), expected.numpy(), 1e-9, 1e-12)
            except GradingError as err:
                raise GradingError(
                    f"{where}:\n{err}\nThe last state of every sequence must equal running that sequence alone "
                    f"(batch index i = the i-th sequence of the list, its state after its own last step: "
                    f"pass the true lengths, and enforce_sorted=False keeps the list's order).") from None
        padded_out, out_lengths = pad_packed_sequence(out, batch_first=True)
        for i, expected in enumerate(expected_outputs):
            compare_arrays(f"{where}: outputs of sequence {i} (length {len(expected)}) after pad_packed_sequence",
                           padded_out[i, :len(expected)].numpy(), expected.numpy(), 1e-9, 1e-12)
    return trials


def _logits(model, seqs, call):
    """The student's ``model(seqs)`` as a float64 array of shape ``(len(seqs), 2)``."""
    try:
        logits = _numpy(model([s.clone() for s in seqs]))
    except Exception as exc:
        raise GradingError(f"{call} raised {type(exc).__name__}: {exc}") from None
    if np.shape(logits) != (len(seqs), 2):
        raise GradingError(f"{call}: expected logits of shape (B, 2) = ({len(seqs)}, 2), got shape "
                           f"{np.shape(logits)}")
    return np.asarray(logits, dtype=np.float64)


def _float_state(model, call):
    """``{name: array}`` of the floating-point entries of ``model.state_dict()`` (its parameters)."""
    try:
        items = list(model.state_dict().items())
    except Exception as exc:
        raise GradingError(f"{call}: could not read the model's parameters (state_dict() raised "
                           f"{type(exc).__name__}: {exc})") from None
    state = {}
    for name, value in items:
        value = _numpy(value)
        if isinstance(name, str) and isinstance(value, np.ndarray) and value.dtype.kind == "f":
            state[name] = value
    return state


def check_uses_its_parameters(model, seqs, call, rng):
    """The logits come from the model's recurrent layer and parameters, not from a fixed rule: the model
    holds a recurrent layer (``weight_ih_l0``, ``weight_hh_l0``), and perturbing its parameters (in a
    copy loaded with ``load_state_dict``) changes its logits. Leaves the model perturbed."""
    import torch

    state = _float_state(model, call)
    if not any(n.endswith("weight_hh_l0") for n in state) or not any(n.endswith("weight_ih_l0") for n in state):
        raise GradingError(f"{call}: the model must hold a recurrent layer (nn.GRU or nn.LSTM, whose parameters "
                           f"are weight_ih_l0, weight_hh_l0, ...); its parameters are {sorted(state) or 'none'}")
    before = _logits(model, seqs, call)
    moved = {n: torch.from_numpy((v + 0.1 * rng.standard_normal(v.shape)).astype(v.dtype)) for n, v in state.items()}
    try:
        model.load_state_dict(moved, strict=False)
    except Exception as exc:
        raise GradingError(f"{call}: load_state_dict raised {type(exc).__name__}: {exc}") from None
    if not np.max(np.abs(_logits(model, seqs, call) - before)) > 1e-6:
        raise GradingError(f"{call}: the logits stay the same when the model's parameters change: they must be "
                           f"computed by the recurrent layer and the linear layer from the sequences")


def classifier_batch_independent(SequenceClassifier, trials=2):
    """``SequenceClassifier(input_size, hidden_size)`` maps a list of sequences to logits ``(B, 2)``;
    the logits of a sequence do not depend on the other sequences of its batch (padding), they differ
    from sequence to sequence, and they are computed from the model's parameters (a model that returns
    constants, or applies a rule, fails).

    Both sides of the padding comparison are the student's model (batch, and each sequence alone); what
    makes it a test of a classifier is that the logits must depend on the sequence and on the parameters
    (:func:`check_uses_its_parameters`)."""
    for _ in range(trials):
        seed = secrets.randbits(32)
        rng = np.random.default_rng(seed)
        seqs, _ = make_task(int(rng.integers(3, 9)), seed)
        call = f"SequenceClassifier(input_size=4, hidden_size=16) on {_shapes(seqs)} [seed {seed}]"
        model = _call(SequenceClassifier, "SequenceClassifier", [4, 16], "input_size=4, hidden_size=16")
        try:
            model.eval()
        except Exception as exc:
            raise GradingError(f"{call}: model.eval() raised {type(exc).__name__}: {exc}") from None
        batch = _logits(model, seqs, call)
        alone = np.concatenate([_logits(model, [s], call) for s in seqs])
        try:
            compare_arrays("logits", batch, alone, 1e-4, 1e-5)
        except GradingError as err:
            raise GradingError(f"{call}: the logits of a sequence in the batch differ from those of the same "
                               f"sequence alone (batch of one):\n{err}\nA sequence's prediction must not depend "
                               f"on the padding added for the longer ones.") from None
        if not np.max(np.abs(batch - batch[0])) > 1e-6:
            raise GradingError(f"{call}: every sequence gets the same logits {batch[0].round(4).tolist()}: the "
                               f"logits must depend on the sequence")
        check_uses_its_parameters(model, seqs, call, rng)
    return trials


def symbol_renaming(rng):
    """A random permutation ``perm`` of the four symbols, never the identity: the one-hot column ``j`` of a
    renamed sequence is the column ``perm[j]`` of the original, so the pattern A, B, C becomes another."""
    while True:
        perm = rng.permutation(len(SYMBOLS))
        if tuple(perm[:len(PATTERN)]) != tuple(range(len(PATTERN))):
            return perm


def renamed_task(n, seed, perm):
    """:func:`make_task` with the symbols renamed by ``perm`` (:func:`symbol_renaming`); the labels are
    unchanged, so a label is 1 if the sequence contains the renamed pattern :func:`renamed_pattern`."""
    seqs, labels = make_task(n, seed)
    return [s[:, perm] for s in seqs], labels


def renamed_pattern(perm):
    inverse = np.argsort(perm)
    return tuple(int(inverse[k]) for k in PATTERN)


def train_and_predict(train_classifier, predict, seed=None):
    """Train on a freshly drawn training set, predict a freshly drawn test set: accuracy at least
    :data:`ACCURACY_THRESHOLD`. The seed of torch is fixed (``train_classifier`` receives ``seed=0``);
    the time is bounded by the grader's per-cell limit, not here.

    The data come from the notebook's generator with the four symbols renamed at random when grading
    runs (:func:`symbol_renaming`): the task is the same up to names, so a model that learns it learns
    this one as well, but no fixed rule (the notebook's "contains A, B, C") gives the labels. The
    predictions must also be the model's: ``predict(model, seqs)`` equals the argmax of
    ``model(seqs)``, and those logits change when the model's parameters do."""
    seed = secrets.randbits(31) if seed is None else seed
    perm = symbol_renaming(np.random.default_rng(seed))
    pattern = ", ".join(SYMBOLS[k] for k in renamed_pattern(perm))
    train_seqs, train_labels = renamed_task(N_TRAIN, seed, perm)
    test_seqs, test_labels = renamed_task(N_TEST, seed + 1, perm)
    t0 = time.perf_counter()
    model = _call(train_classifier, "train_classifier", [train_seqs, train_labels, 0],
                  f"{N_TRAIN} sequences, labels ({N_TRAIN},), seed=0")
    seconds = time.perf_counter() - t0
    pred = _call(predict, "predict", [model, test_seqs], f"model, {N_TEST} sequences")
    pred = np.asarray(_numpy(pred))
    if pred.shape != (N_TEST,):
        raise GradingError(f"predict(model, {N_TEST} sequences) must return {N_TEST} labels (shape ({N_TEST},)), "
                           f"got shape {pred.shape}")
    accuracy = float(np.mean(pred == test_labels.numpy()))
    where = (f"{N_TEST} freshly drawn test sequences [data seed {seed}; the grader renames the symbols, "
             f"so here the label is 1 for sequences containing {pattern}]")
    if not accuracy >= ACCURACY_THRESHOLD:
        raise GradingError(f"accuracy on {where}: {accuracy:.1%}; at least {ACCURACY_THRESHOLD:.0%} is needed "
                           f"(training took {seconds:.1f} s)")
    call = f"the model train_classifier returned, on {where}"
    differ = int(np.sum(pred != _logits(model, test_seqs, call).argmax(axis=1)))
    if differ > 0.05 * N_TEST:
        raise GradingError(f"{call}: predict(model, seqs) must return the class with the larger logit of "
                           f"model(seqs); it differs for {differ} of {N_TEST} sequences")
    check_uses_its_parameters(model, test_seqs[:20], call, np.random.default_rng(seed))
    return accuracy
