"""ps09 graded for plausible wrong answers (partial credit, messages that say what is wrong), and the
task generator the notebook shows is the one the grader uses."""
import inspect

import nbformat
import numpy as np
import pytest
import torch

from nbgrader_helpers import ROOT, autograde, course_copy, feedback_html, make_submission, run_answers, solution_answers
from checks import ps09
from checks.grading import GradingError
from visible_helpers import fixed_grading_seeds  # noqa: F401 (a fixture)

LEFT_PADDED = '''def pad_sequences(seqs):
    lengths = torch.tensor([len(s) for s in seqs])
    T = int(lengths.max())
    padded = torch.zeros(len(seqs), T, seqs[0].shape[1], dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        padded[i, T - len(s):] = s          # zeros first, then the sequence
    return padded, lengths
'''
SORTED_PACK = '''def pack_sequences(seqs):
    seqs = sorted(seqs, key=len, reverse=True)   # sorted by hand: h_n comes back in sorted order
    lengths = torch.tensor([len(s) for s in seqs])
    return pack_padded_sequence(pad_sequence(seqs, batch_first=True), lengths, batch_first=True)
'''
OWN_PACKING_MODEL = '''class SequenceClassifier(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 2)

    def forward(self, seqs):
        lengths = torch.tensor([len(s) for s in seqs])
        packed = pack_padded_sequence(pad_sequence(seqs, batch_first=True), lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.rnn(packed)
        return self.head(h_n[-1])
'''
UNPACKED_MODEL = '''class SequenceClassifier(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 2)

    def forward(self, seqs):
        _, h_n = self.rnn(pad_sequence(seqs, batch_first=True))   # the padding is read as input
        return self.head(h_n[-1])
'''
UNDERTRAINED = '''def train_classifier(seqs, labels, seed=0):
    torch.manual_seed(seed)  # keep this line: the grader passes the seed
    model = SequenceClassifier(4, 32)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for start in range(0, 256, 64):                  # a few steps of slow SGD
        loss = nn.functional.cross_entropy(model(seqs[start:start + 64]), labels[start:start + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def predict(model, seqs):
    with torch.no_grad():
        return model(seqs).argmax(dim=1)
'''


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps09")
    make_submission(course, "ps09", "wrong", {**good, "pad": LEFT_PADDED, "pack": SORTED_PACK,
                                               "model": OWN_PACKING_MODEL, "train": UNDERTRAINED})
    make_submission(course, "ps09", "unpacked", {**good, "model": UNPACKED_MODEL, "train": UNDERTRAINED})
    cells, totals = autograde(course, "ps09")

    wrong = cells["wrong"]
    assert wrong["test-pad"][0] == 0 and wrong["test-pack"][0] == 0 and wrong["test-train"][0] == 0
    assert wrong["test-model"][0] == 2  # its own (correct) packing
    assert totals["wrong"] == 2
    assert "output padded" in wrong["test-pad"][2] and "largest error" in wrong["test-pad"][2]
    assert "h_n" in wrong["test-pack"][2] and "enforce_sorted=False" in wrong["test-pack"][2]
    assert "accuracy on 1000 freshly drawn test sequences" in wrong["test-train"][2]

    unpacked = cells["unpacked"]
    assert unpacked["test-model"][0] == 0
    assert "must not depend on the padding" in unpacked["test-model"][2]
    assert unpacked["test-pad"][0] == 2 and unpacked["test-pack"][0] == 3 and totals["unpacked"] == 5
    html = feedback_html(course, "wrong", "ps09")
    assert "largest error" in html and "checks.pack_sequences" not in html


# Finding 5 of issue 11: answers that passed because a check compared the student with the student, or
# because the public labelling rule gave every label.
CONSTANT_MODEL = '''class SequenceClassifier(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)   # there, never used

    def forward(self, seqs):
        return torch.zeros(len(seqs), 2)
'''
RULE_MODEL = '''class SequenceClassifier(nn.Module):
    """Applies the notebook's labelling rule; holds a GRU that it adds with weight 0."""
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, seqs):
        found = torch.tensor([float(contains_pattern(s.argmax(1).tolist())) for s in seqs])
        zero = 0.0 * sum(p.sum() for p in self.parameters())
        return torch.stack([1 - found, found], dim=1) + zero
'''
RULE_PREDICT = '''def train_classifier(seqs, labels, seed=0):
    torch.manual_seed(seed)  # keep this line: the grader passes the seed
    return SequenceClassifier(4, 8)                      # no training at all


def predict(model, seqs):
    return torch.tensor([int(contains_pattern(s.argmax(1).tolist())) for s in seqs])
'''
RULE_PREDICT_THROUGH_MODEL = RULE_MODEL + '''

def train_classifier(seqs, labels, seed=0):
    torch.manual_seed(seed)  # keep this line: the grader passes the seed
    return SequenceClassifier(4, 8)


def predict(model, seqs):
    with torch.no_grad():
        return model(seqs).argmax(dim=1)
'''
# Finds the pattern by counting (no network), keeps it beside an untrained model and predicts with it.
COUNTS_INSTEAD = '''def train_classifier(seqs, labels, seed=0):
    torch.manual_seed(seed)  # keep this line: the grader passes the seed
    model = SequenceClassifier(4, 8)
    best = 0
    for p in [(a, b, c) for a in range(4) for b in range(4) for c in range(4)]:
        hits = sum(contains_pattern(s.argmax(1).tolist(), p) == bool(y) for s, y in zip(seqs[:300], labels[:300]))
        if hits > best:
            best, model.pattern = hits, p
    return model


def predict(model, seqs):
    return torch.tensor([int(contains_pattern(s.argmax(1).tolist(), model.pattern)) for s in seqs])
'''
TORCH_IMPORTS = ("import torch\nimport torch.nn as nn\nfrom torch.nn.utils.rnn import PackedSequence, "
                 "pack_padded_sequence, pad_packed_sequence, pad_sequence\n")


def task_cell():
    nb = nbformat.read(ROOT / "solutions" / "ps09" / "ps09.ipynb", as_version=4)
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "task").source


def namespace(**answers):
    good = solution_answers("ps09")
    cells = {**good, **answers}
    return run_answers(TORCH_IMPORTS + task_cell(), cells["pad"], cells["pack"], cells["model"], cells["train"],
                       answers.get("extra", ""))


def test_constant_and_rule_models_fail_the_classifier_check(fixed_grading_seeds):
    """(Fixed seeds: with fresh ones, the 7 sequences drawn sometimes all have the same label, and the rule
    model is then caught by the first test, that every sequence gets the same logits.)"""
    torch.set_num_threads(1)
    for model, message in [(CONSTANT_MODEL, "every sequence gets the same logits"),
                           (RULE_MODEL, "the logits stay the same when the model's parameters change")]:
        with pytest.raises(GradingError, match=message):
            ps09.classifier_batch_independent(namespace(model=model)["SequenceClassifier"])
    no_rnn = CONSTANT_MODEL.replace("nn.GRU(input_size, hidden_size, batch_first=True)", "nn.Linear(4, 2)")
    no_rnn = no_rnn.replace("torch.zeros(len(seqs), 2)", "self.rnn(torch.stack([s.mean(0) for s in seqs]))")
    with pytest.raises(GradingError, match="must hold a recurrent layer"):
        ps09.classifier_batch_independent(namespace(model=no_rnn)["SequenceClassifier"])
    assert ps09.classifier_batch_independent(namespace()["SequenceClassifier"]) == 2


def test_rule_based_predictions_fail_train_and_predict(fixed_grading_seeds):
    """The public rule gives 100 % on the notebook's data; the grader's renamed symbols leave it near
    chance. Through the model or around it, it fails; the solution passes on the same data."""
    torch.set_num_threads(1)
    rule = namespace(train=RULE_PREDICT)
    seqs, labels = ps09.make_task(300, seed=5)
    assert (rule["predict"](None, seqs) == labels).all()  # the attack works on the public task
    for seed in (11, 12):
        with pytest.raises(GradingError, match=r"accuracy on 1000 freshly drawn.*renames the symbols"):
            ps09.train_and_predict(rule["train_classifier"], rule["predict"], seed=seed)
        through = namespace(extra=RULE_PREDICT_THROUGH_MODEL)
        with pytest.raises(GradingError, match="accuracy on 1000 freshly drawn"):
            ps09.train_and_predict(through["train_classifier"], through["predict"], seed=seed)
    good = namespace()
    assert ps09.train_and_predict(good["train_classifier"], good["predict"], seed=11) >= ps09.ACCURACY_THRESHOLD
    counts = namespace(train=COUNTS_INSTEAD)
    with pytest.raises(GradingError, match="predict.model, seqs. must return the class with the larger logit"):
        ps09.train_and_predict(counts["train_classifier"], counts["predict"], seed=11)


def test_renamed_task_is_the_task_with_other_names():
    for seed in range(30):
        perm = ps09.symbol_renaming(np.random.default_rng(seed))
        pattern = ps09.renamed_pattern(perm)
        assert pattern != ps09.PATTERN
        seqs, labels = ps09.renamed_task(200, seed, perm)
        assert all(ps09.contains_pattern(s.argmax(1).tolist(), pattern) == bool(y) for s, y in zip(seqs, labels))
        rule = np.array([ps09.contains_pattern(s.argmax(1).tolist()) for s in seqs])
        assert np.mean(rule == labels.numpy()) < 0.75, (seed, perm)


def test_notebook_shows_the_graders_task_generator():
    nb = nbformat.read(ROOT / "exercises" / "ps09" / "ps09.ipynb", as_version=4)
    task = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "task").source
    assert inspect.getsource(ps09.make_task) in task and inspect.getsource(ps09.contains_pattern) in task
    namespace = {}
    exec("import numpy as np\nimport torch\n" + task, namespace)
    for seed in (0, 7):
        mine, theirs = namespace["make_task"](20, seed), ps09.make_task(20, seed)
        assert torch.equal(mine[1], theirs[1]) and all(torch.equal(a, b) for a, b in zip(mine[0], theirs[0]))


def test_task_labels_and_lengths():
    seqs, labels = ps09.make_task(400, seed=3)
    assert 0.4 < labels.float().mean() < 0.6
    assert all(ps09.MIN_LEN <= len(s) <= ps09.MAX_LEN and s.shape[1] == 4 for s in seqs)
    assert all(ps09.contains_pattern(s.argmax(1).tolist()) == bool(y) for s, y in zip(seqs, labels))
    assert {len(s) for s in seqs} == set(range(ps09.MIN_LEN, ps09.MAX_LEN + 1))


def test_random_batches_are_never_sorted_longest_first():
    for seed in range(200):
        lengths = [len(s) for s in ps09.random_sequences(np.random.default_rng(seed))]
        assert len(set(lengths)) == len(lengths) and lengths != sorted(lengths, reverse=True)
