"""ps09 graded for plausible wrong answers (partial credit, messages that say what is wrong), and the
task generator the notebook shows is the one the grader uses."""
import inspect

import nbformat
import numpy as np
import torch

from nbgrader_helpers import ROOT, autograde, course_copy, feedback_html, make_submission, solution_answers
from checks import ps09

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
