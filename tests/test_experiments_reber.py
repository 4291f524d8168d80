"""experiments/reber.py in its tiny configuration, and the pieces chapter 9 relies on."""
import sys

import torch

from rnnlib import data

from experiment_helpers import ROOT, run_tiny

sys.path.insert(0, str(ROOT / "experiments"))
import reber  # noqa: E402


def test_tiny_run_writes_results_with_provenance(tmp_path):
    result = run_tiny("reber", tmp_path)
    assert set(result["summary"]) == {"rnn", "lstm", "gru"}
    for run in result["runs"]:
        # a fully correct string is also correct at its second-to-last symbol
        assert 0 <= run["test_full"] <= run["test_penultimate"] <= 100
        assert run["epochs_run"] == len(run["history"]["val_full"]) == reber.TINY["epochs"]
    assert result["data"]["n_test"] == reber.TINY["n_test"]


def test_held_out_strings_are_not_in_the_training_set():
    train, val, test = reber.make_data(200, 50, 100, data_seed=3)
    assert len(train) == 200 and len(val) == 50 and len(test) == 100
    assert not (set(val) | set(test)) & set(train)
    assert all(data.embedded_reber_is_valid(s) for s in val + test)


def test_encode_targets_are_the_legal_next_symbols():
    strings = ["BTBTSSXXTVVETE", "BPBPVVEPE"]
    tokens, targets, mask = reber.encode(strings)
    assert tokens.shape == (2, 14) and targets.shape == (2, 14, 7)
    assert mask.sum(1).tolist() == [13, 8]
    assert data.REBER_SYMBOLS[int(tokens[1, 0])] == "B" and tokens[1, 9:].eq(0).all()
    # after "BP...VVE" the only legal symbol is P (the second symbol), then E
    assert targets[1, 6].tolist() == data.next_symbols_multi_hot([{"P"}])[0].tolist()


class Oracle(torch.nn.Module):
    """Scores 1 exactly on the legal next symbols: every string correct. With ``forget`` it scores
    T and P equally at the second-to-last step (it has forgotten the second symbol)."""

    def __init__(self, strings, forget=False):
        super().__init__()
        self.strings, self.forget = strings, forget

    def forward(self, tokens):
        _, targets, _ = reber.encode(self.strings)
        if self.forget:
            for i, s in enumerate(self.strings):
                targets[i, len(s) - 3, [1, 2]] = 1.0
        return targets


def test_evaluate_counts_full_and_penultimate_correctness():
    strings = data.embedded_reber(30, seed=5)
    assert reber.evaluate(Oracle(strings), strings) == {"full": 100.0, "penultimate": 100.0}
    assert reber.evaluate(Oracle(strings, forget=True), strings) == {"full": 0.0, "penultimate": 0.0}
