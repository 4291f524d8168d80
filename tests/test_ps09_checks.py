"""ps09's padding and packing checks on answers the notebook's tests cannot show: a PackedSequence built
by another class, fields that are wrong one at a time, lengths off by one, the modules the packing is
tried on. Cheap (no training, no notebook run); seeds fixed; messages reviewed."""
import signal
import types

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_sequence

from checks import ps09 as checks
from checks.grading import GradingError
from visible_helpers import fixed_grading_seeds  # noqa: F401 (a fixture)


@pytest.fixture(autouse=True)
def at_most_a_minute():
    """Every test here fails after 60 s (SIGALRM, POSIX only) instead of hanging: a wrong label rule in
    make_task (a mutant, say) redraws a sequence forever."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fail(signum, frame):
        raise TimeoutError("still running after 60 s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def pad(seqs):
    lengths = torch.tensor([len(s) for s in seqs])
    return pad_sequence(seqs, batch_first=True), lengths


def pack(seqs):
    padded, lengths = pad(seqs)
    return pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)


def fields(packed, **changed):
    """A plain object (not a PackedSequence) with the four fields of ``packed``, some of them ``changed``."""
    names = ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    return types.SimpleNamespace(**{**{n: getattr(packed, n) for n in names}, **changed})


def test_a_right_answer_passes(fixed_grading_seeds):
    assert checks.pad_sequences(pad) == 3
    assert checks.pack_sequences(pack) == 4


def test_lengths_off_by_one_fail(fixed_grading_seeds):
    for off in (1, -1):
        with pytest.raises(GradingError, match=r"output lengths: \d of \d values differ"):
            checks.pad_sequences(lambda seqs: (pad(seqs)[0], pad(seqs)[1] + off))


@pytest.mark.parametrize("name, error", [("pad_sequences", IndexError("list index out of range")),
                                         ("pack_sequences", RuntimeError("lengths must be on the CPU"))])
def test_an_error_in_the_answer_names_the_input(name, error, fixed_grading_seeds):
    def broken(seqs):
        raise error

    with pytest.raises(GradingError, match=rf"^{name}\(a list of \d sequences of lengths \[[\d, ]+\], \d "
                                           rf"features\) raised {type(error).__name__}: {error}$"):
        getattr(checks, name)(broken)


def test_an_answer_that_calls_the_graders_reference_scores_0():
    """(Under mutation testing every function of checks.ps09 shares mutmut's code, and the one name shown is
    mutmut's: the pattern allows any name, and the messages are not compared with the reviewed ones.)"""
    with pytest.raises(GradingError, match=r"^pad_sequences calls the grader's reference \(\w+\): this part "
                                           r"scores 0$"):
        checks.pad_sequences(checks.pad_reference)

    def both(seqs):
        torch.manual_seed(0)
        checks.alone_reference(torch.nn.GRU(seqs[0].shape[1], 2, batch_first=True).double(), seqs)
        return pack(seqs)

    with pytest.raises(GradingError, match=r"^pack_sequences calls the grader's reference \((alone_reference, "
                                           r"pad_reference|\w+)\): this part scores 0$"):
        checks.pack_sequences(lambda seqs: (checks.pad_reference(seqs), both(seqs))[1])


def test_the_outputs_and_c_n_are_compared_as_well(fixed_grading_seeds, monkeypatch):
    """The last states h_n come first; the outputs after pad_packed_sequence and an LSTM's c_n are compared
    too (to 1e-9). No known answer gets h_n right and those wrong, so the modules here are made to
    return them moved by 1e-6 when they run on a PackedSequence."""
    for kind, moved, message in [("GRU", "output", r"outputs of sequence 0 \(length \d\) after pad_packed_sequence: "
                                                  r"\d+ of \d+ values differ"),
                                 ("LSTM", "c_n", r"\nc_n: \d+ of \d+ values differ")]:
        real = getattr(torch.nn, kind)

        class Moved(real):
            def forward(self, x, *args, _moved=moved):
                out, state = super().forward(x, *args)
                if not isinstance(x, PackedSequence):
                    return out, state
                if _moved == "output":
                    return out._replace(data=out.data * (1 + 1e-6)), state
                return out, (state[0], state[1] * (1 + 1e-6))

        monkeypatch.setattr(torch.nn, kind, Moved)
        with pytest.raises(GradingError, match=r"nn.(GRU|LSTM)\(num_layers=\d, bidirectional=(True|False)\) run on "
                                               r"what pack_sequences\(.*\) \[seed \d+\] returned[:\n ]+" + message):
            checks.pack_sequences(pack)
        monkeypatch.setattr(torch.nn, kind, real)


def test_a_packed_sequence_of_another_class_is_read_field_by_field(fixed_grading_seeds):
    """An object with the four fields (a sandboxed kernel's PackedSequence arrives so) is rebuilt as one:
    each field kept as it was, None indices included."""
    seqs = checks.random_sequences(np.random.default_rng(0))
    unsorted = pack(seqs)
    for packed in (unsorted, pack_padded_sequence(*pad(sorted(seqs, key=len, reverse=True)), batch_first=True)):
        got = checks._as_packed(fields(packed), "call")
        assert isinstance(got, PackedSequence)
        for name in ("data", "batch_sizes", "sorted_indices", "unsorted_indices"):
            expected = getattr(packed, name)
            assert (getattr(got, name) is None) if expected is None else torch.equal(getattr(got, name), expected)
    assert checks.pack_sequences(lambda seqs: fields(pack(seqs))) == 4


@pytest.mark.parametrize("change", [
    {"data": None}, {"batch_sizes": [1, 1]}, {"sorted_indices": "0 1"}, {"unsorted_indices": (0, 1)},
])
def test_an_object_without_the_fields_as_tensors_is_refused(change):
    seqs = checks.random_sequences(np.random.default_rng(1))
    with pytest.raises(GradingError, match=r"^call must return a PackedSequence \(from "
                                           r"torch.nn.utils.rnn.pack_padded_sequence\), got SimpleNamespace$"):
        checks._as_packed(fields(pack(seqs), **change), "call")
    no_indices = types.SimpleNamespace(data=pack(seqs).data, batch_sizes=pack(seqs).batch_sizes)
    with pytest.raises(GradingError, match="must return a PackedSequence"):
        checks._as_packed(no_indices, "call")


@pytest.mark.parametrize("wrong", ["unsorted_indices", "batch_sizes"])
def test_each_field_counts(wrong, fixed_grading_seeds):
    """A packing whose one field is wrong (the order back to the list's, or the batch sizes) fails.
    (``sorted_indices`` only orders an initial state the student does not pass: the checks run from zeros.)"""
    def answer(seqs):
        packed = pack(seqs)
        if wrong == "batch_sizes":
            value = packed.batch_sizes.flip(0)
        else:
            value = packed.sorted_indices
            if torch.equal(value, packed.unsorted_indices):  # (a permutation that is its own inverse)
                value = value.roll(1)
        return fields(packed, **{wrong: value})

    with pytest.raises(GradingError, match=r"run on what pack_sequences\(.*\) \[seed \d+\] returned"):
        checks.pack_sequences(answer)


def test_packing_is_tried_on_every_kind_of_module(fixed_grading_seeds, monkeypatch):
    """GRU and LSTM, one and two layers, one and two directions (a packing that ignored the lengths
    would show in the backward direction first); never more layers than that."""
    seen = []
    for kind in ("GRU", "LSTM"):
        real = getattr(torch.nn, kind)

        def module(*args, _kind=kind, _real=real, **kwargs):
            seen.append((_kind, kwargs["num_layers"], kwargs["bidirectional"]))
            return _real(*args, **kwargs)

        monkeypatch.setattr(torch.nn, kind, module)
    for _ in range(3):
        checks.pack_sequences(pack)
    assert {(k, b) for k, _, b in seen} == {("GRU", False), ("GRU", True), ("LSTM", False), ("LSTM", True)}
    assert {n for _, n, _ in seen} == {1, 2}


# ---- the classifier checks, on small models built here (no training) ----
def contains(symbols, pattern):
    """(The test's own, not checks.contains_pattern: under mutation testing every function of checks.ps09
    shares its code with the references that a student must not call.)"""
    return any(tuple(symbols[i:i + len(pattern)]) == tuple(pattern) for i in range(len(symbols)))


class Classifier(torch.nn.Module):
    """A right SequenceClassifier (packed GRU, last state, linear head); ``rule`` adds a large vote for the
    sequences that contain the pattern ``rule`` (a tuple of symbol indices), so that it scores without
    training while its logits still come from its parameters."""

    def __init__(self, input_size=4, hidden_size=16, rule=None, padded=False):
        super().__init__()
        self.rnn = torch.nn.GRU(input_size, hidden_size, batch_first=True)
        self.head = torch.nn.Linear(hidden_size, 2)
        self.rule, self.padded = rule, padded

    def forward(self, seqs):
        if self.padded:  # the padding read as input
            _, h_n = self.rnn(pad_sequence(seqs, batch_first=True))
        else:
            _, h_n = self.rnn(pack(seqs))
        logits = self.head(h_n[-1])
        return logits if self.rule is None else logits + self.vote(seqs)

    def vote(self, seqs):
        found = torch.tensor([float(contains(s.argmax(1).tolist(), self.rule)) for s in seqs])
        return 20 * torch.stack([1 - found, found], dim=1)


def test_a_right_classifier_passes_and_a_padded_one_fails(fixed_grading_seeds):
    torch.manual_seed(0)
    assert checks.classifier_batch_independent(Classifier) == 2

    class Counting(Classifier):  # an integer buffer: not a parameter, left out of the moved state
        def __init__(self, D, H):
            super().__init__(D, H)
            self.register_buffer("calls", torch.tensor(0))

    assert checks.classifier_batch_independent(Counting) == 2
    with pytest.raises(GradingError, match=r"(?s)the logits of a sequence in the batch differ from those of the "
                                           r"same sequence alone \(batch of one\):\nlogits: .*must not depend on "
                                           r"the padding"):
        checks.classifier_batch_independent(lambda D, H: Classifier(D, H, padded=True))


def test_models_that_break_get_a_message(fixed_grading_seeds):
    class NoEval(Classifier):
        def eval(self):
            raise RuntimeError("no eval")

    class WrongShape(Classifier):
        def forward(self, seqs):
            return super().forward(seqs)[:, :1]

    class NoState(Classifier):
        def state_dict(self, *args, **kwargs):
            raise RuntimeError("no state")

    class NoLoad(Classifier):
        def load_state_dict(self, *args, **kwargs):
            raise RuntimeError("no load")

    class Raises(Classifier):
        def forward(self, seqs):
            raise ValueError("bad input")

    class OnlyBatches(Classifier):
        def forward(self, seqs):
            if len(seqs) == 1:
                raise ValueError("a batch of one")
            return super().forward(seqs)

    class BreaksWhenMoved(Classifier):
        def forward(self, seqs):
            if not hasattr(self, "first"):
                self.first = self.head.bias.detach().clone()
            if not torch.equal(self.head.bias, self.first):
                raise RuntimeError("moved")
            return super().forward(seqs)

    class Constant(Classifier):
        def forward(self, seqs):
            return torch.tensor([[0.123456, -1.0]] * len(seqs))

    head = r"^SequenceClassifier\(input_size=4, hidden_size=16\) on a list of \d sequences of lengths \[[\d, ]+\], " \
           r"4 features \[seed \d+\]"
    for model, message in [
        (NoEval, r": model.eval\(\) raised RuntimeError: no eval$"),
        (WrongShape, r": expected logits of shape \(B, 2\) = \(\d, 2\), got shape \(\d, 1\)$"),
        (NoState, r": could not read the model's parameters \(state_dict\(\) raised RuntimeError: no state\)$"),
        (NoLoad, r": load_state_dict raised RuntimeError: no load$"),
        (Raises, r" raised ValueError: bad input$"),
        (OnlyBatches, r" raised ValueError: a batch of one$"),
        (BreaksWhenMoved, r" raised RuntimeError: moved$"),
        (Constant, r": every sequence gets the same logits \[0.1235, -1.0\]: the logits must depend on the sequence$"),
    ]:
        with pytest.raises(GradingError, match=head + message):
            checks.classifier_batch_independent(model)
    with pytest.raises(GradingError, match=r"^SequenceClassifier\(input_size=4, hidden_size=16\) raised TypeError"):
        checks.classifier_batch_independent(lambda D: Classifier(D))


def test_a_model_without_a_recurrent_layer_names_its_parameters(fixed_grading_seeds):
    class Linear(torch.nn.Module):
        def __init__(self, D, H):
            super().__init__()
            self.head = torch.nn.Linear(D, 2)
            self.register_buffer("count", torch.tensor(3))  # not a float: not a parameter to move

        def forward(self, seqs):
            return self.head(torch.stack([s.mean(0) for s in seqs]))

    with pytest.raises(GradingError, match=r"must hold a recurrent layer \(nn.GRU or nn.LSTM, whose parameters are "
                                           r"weight_ih_l0, weight_hh_l0, ...\); its parameters are "
                                           r"\['head.bias', 'head.weight'\]$"):
        checks.classifier_batch_independent(Linear)
    class NoParameters(torch.nn.Module):
        def __init__(self, D, H):
            super().__init__()

        def forward(self, seqs):
            return torch.stack([torch.stack([s.mean(), s[:, 0].mean()]) for s in seqs])

    with pytest.raises(GradingError, match=r"its parameters are none$"):
        checks.classifier_batch_independent(NoParameters)
    only_hh = type("OnlyHH", (Linear,), {"__init__": lambda self, D, H: (
        Linear.__init__(self, D, H), self.register_parameter("weight_hh_l0", torch.nn.Parameter(torch.ones(1))))[0]})
    with pytest.raises(GradingError, match=r"its parameters are \['head.bias', 'head.weight', 'weight_hh_l0'\]$"):
        checks.classifier_batch_independent(only_hh)


def trained(seed):
    """``train_classifier`` that trains nothing: its model votes with the renamed pattern of ``seed`` (it
    asserts that it is given the grader's data of that seed)."""
    pattern = checks.renamed_pattern(checks.symbol_renaming(np.random.default_rng(seed)))
    grader_labels = checks.make_task(checks.N_TRAIN, seed)[1]

    def train_classifier(seqs, labels, seed=0):
        assert len(seqs) == checks.N_TRAIN and labels.shape == (checks.N_TRAIN,) and seed == 0
        assert torch.equal(labels, grader_labels), "not the data of this seed"
        torch.manual_seed(seed)
        return Classifier(rule=pattern)
    return train_classifier


def predict(model, seqs):
    with torch.no_grad():
        return model(seqs).argmax(dim=1)


def test_train_and_predict_grades_accuracy_and_the_models_own_predictions():
    """Without training (a model that knows the renamed pattern): 100 % passes; the answers that are
    wrong in one way each get their message."""
    assert checks.train_and_predict(trained(5), predict, seed=5) == 1.0
    where = r"1000 freshly drawn test sequences \[data seed 5; the grader renames the symbols, so here the label " \
            r"is 1 for sequences containing [A-D], [A-D], [A-D]\]"
    flipped = lambda model, seqs: 1 - predict(model, seqs)  # noqa: E731
    with pytest.raises(GradingError, match=rf"^accuracy on {where}: 0.0%; at least 90% is needed \(training took "
                                           r"\d+\.\d s\)$") as failed:
        checks.train_and_predict(trained(5), flipped, seed=5)
    assert float(str(failed.value).rpartition("took ")[2][:-3]) < 60  # the time taken, in seconds
    some_wrong = lambda model, seqs: torch.cat([1 - predict(model, seqs[:80]), predict(model, seqs[80:])])  # noqa
    with pytest.raises(GradingError, match=rf"^the model train_classifier returned, on {where}: predict\(model, seqs\) "
                                           r"must return the class with the larger logit of model\(seqs\); it differs "
                                           r"for 80 of 1000 sequences$"):
        checks.train_and_predict(trained(5), some_wrong, seed=5)
    few_wrong = lambda model, seqs: torch.cat([1 - predict(model, seqs[:50]), predict(model, seqs[50:])])  # noqa
    assert checks.train_and_predict(trained(5), few_wrong, seed=5) == 0.95
    with pytest.raises(GradingError, match=r"^predict\(model, 1000 sequences\) must return 1000 labels \(shape "
                                           r"\(1000,\)\), got shape \(1000, 1\)$"):
        checks.train_and_predict(trained(5), lambda model, seqs: predict(model, seqs)[:, None], seed=5)
    with pytest.raises(GradingError, match=r"^predict\(model, 1000 sequences\) raised ZeroDivisionError"):
        checks.train_and_predict(trained(5), lambda model, seqs: 1 / 0, seed=5)
    with pytest.raises(GradingError, match=r"^train_classifier\(2000 sequences, labels \(2000,\), seed=0\) raised "
                                           r"AssertionError"):
        checks.train_and_predict(trained(5), predict, seed=6)


class Flips(Classifier):
    """The rule model, wrong on the sequences ``wrong`` (their bytes): exactly as accurate as it is told."""

    def __init__(self, rule, wrong):
        super().__init__(rule=rule)
        self.wrong = wrong

    def forward(self, seqs):
        logits = super().forward(seqs)
        flip = torch.tensor([s.numpy().tobytes() in self.wrong for s in seqs])
        return torch.where(flip[:, None], logits.flip(1), logits)


def test_ninety_percent_exactly_passes():
    seed = 5
    perm = checks.symbol_renaming(np.random.default_rng(seed))
    test_seqs, _ = checks.renamed_task(checks.N_TEST, seed + 1, perm)
    wrong = set(list(dict.fromkeys(s.numpy().tobytes() for s in test_seqs if len(s) >= 20))[:100])
    assert sum(s.numpy().tobytes() in wrong for s in test_seqs) == 100
    model = Flips(checks.renamed_pattern(perm), wrong)
    assert checks.train_and_predict(lambda seqs, labels, seed: model, predict, seed=seed) == 0.9


def test_the_trained_model_itself_is_run_and_its_parameters_moved():
    model_of = trained(5)

    class InChunks(Classifier):
        def forward(self, seqs):
            if len(seqs) > 500:
                raise MemoryError("batch too large")
            return super().forward(seqs)

    def chunked(model, seqs):
        return torch.cat([predict(model, seqs[i:i + 100]) for i in range(0, len(seqs), 100)])

    where = r"^the model train_classifier returned, on 1000 freshly drawn test sequences \[data seed 5; .*\]"
    with pytest.raises(GradingError, match=where + r" raised MemoryError: batch too large$"):
        checks.train_and_predict(lambda *args: InChunks(rule=model_of(*args).rule), chunked, seed=5)

    class NotTwenty(Classifier):
        def forward(self, seqs):
            if len(seqs) == 20:
                raise ValueError("20 sequences")
            return super().forward(seqs)

    with pytest.raises(GradingError, match=where + r" raised ValueError: 20 sequences$"):
        checks.train_and_predict(lambda *args: NotTwenty(rule=model_of(*args).rule), chunked, seed=5)

    class Frozen(Classifier):
        def forward(self, seqs):
            return self.vote(seqs) + 0 * self.head.bias.sum()  # the parameters are there, without effect

    with pytest.raises(GradingError, match=where + r": the logits stay the same when the model's parameters change"):
        checks.train_and_predict(lambda *args: Frozen(rule=model_of(*args).rule), predict, seed=5)


def test_train_and_predict_draws_its_seed(fixed_grading_seeds):
    """Unseeded, the data seed is drawn (fixed here: 1)."""
    assert checks.train_and_predict(trained(1), predict) == 1.0


# ---- the task generator: its labels ----
def test_make_task_draws_half_and_half_of_the_right_labels():
    seqs, labels = checks.make_task(300, seed=1)
    small = checks.make_task(40, seed=2, min_len=3, max_len=4)
    assert labels.dtype == torch.int64 and labels.shape == (300,) and 0.4 < labels.float().mean() < 0.6
    for batch, (low, high) in [((seqs, labels), (5, 30)), (small, (3, 4))]:
        for s, y in zip(*batch):
            assert s.dtype == torch.float32 and s.shape[1] == 4 and low <= len(s) <= high
            assert torch.equal(s.sum(1), torch.ones(len(s))) and contains(s.argmax(1).tolist(), (0, 1, 2)) == bool(y)
    assert {len(s) for s in seqs} == set(range(5, 31)) and {len(s) for s in small[0]} == {3, 4}
    assert all(torch.equal(a, b) for a, b in zip(checks.make_task(20, seed=1)[0], checks.make_task(20, seed=1)[0]))


@pytest.mark.parametrize("symbols, pattern, found", [
    ([0, 1, 2], (0, 1, 2), True), ([3, 3, 0, 1, 2], (0, 1, 2), True), ([0, 1, 2, 3, 3], (0, 1, 2), True),
    ([0, 1, 3, 2], (0, 1, 2), False), ([0, 1], (0, 1, 2), False), ([], (0, 1, 2), False),
    ([2, 1, 0], (0, 1, 2), False), ([1, 1], (1, 1), True), ([3, 2, 1], (2, 1), True), ((0, 2, 1, 0), (1, 0), True),
])
def test_contains_pattern(symbols, pattern, found):
    assert checks.contains_pattern(symbols, pattern) is found
    if pattern == (0, 1, 2):
        assert checks.contains_pattern(symbols) is found
