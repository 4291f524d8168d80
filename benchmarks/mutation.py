"""Mutation testing with mutmut: do the tests notice a seeded bug in rnnlib, or in the hidden-test checks?

    python benchmarks/mutation.py                          # every module in MODULES, one after another
    python benchmarks/mutation.py --package checks         # the checks (checks/), into mutation_checks.json
    python benchmarks/mutation.py --modules losses,optim   # some of them (their entries are replaced)
    python benchmarks/mutation.py --modules gradcheck --tests test_gradcheck.py \
        --mutants "rnnlib.gradcheck.x_rel_error*" --out /tmp/m.json                      # a tiny run
    python benchmarks/mutation.py --modules optim --recheck   # after new tests: only the survivors again

mutmut 3 makes small changes to the code (``+`` to ``-``, ``0`` to ``1``, an argument dropped, a
line's value replaced by ``None``, ...), one *mutant* each, and runs the tests that reach the
mutated function; a mutant is *killed* when a test fails. For each module the script copies
``rnnlib/`` and the tests into a scratch folder with a ``setup.cfg`` naming the module and the tests
(mutmut reads its configuration from the folder it runs in), runs ``mutmut run`` there on one CPU,
and reads mutmut's results back. A surviving mutant is either a gap in the tests or *equivalent*
(it computes the same results, so no test can tell): those are listed in ``EQUIVALENT`` with the
reason, and the score is killed / (mutants - equivalent).

With ``--package checks`` the same is done for the hidden-test checks, against the tests that run them
in this process: each check must accept the solution (``test_checks_accept_solutions.py``) and reject
the known wrong answers (the ``test_psNN.py`` slip tests). A surviving mutant there is a check that
cannot tell a wrong answer or a wrong message from the right one.

The record (``benchmarks/results/mutation.json`` or ``mutation_checks.json``, or ``--out``) holds per module the counts and the
run time, every mutant that was not killed with its diff, the tool's version, command, commit, date
and machine; a run over some modules keeps the entries of the others.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["cells", "sequence", "fast", "losses", "optim", "gradcheck", "train", "truncated", "stacked", "data",
           "jacobian", "attention"]
# The fast unit tests (seconds, not minutes; no notebooks, no nbgrader); mutmut runs, for each mutant,
# only those that reached the mutated function.
TESTS = ["test_rnn.py", "test_lstm.py", "test_gru.py", "test_optim.py", "test_train.py", "test_truncated.py",
         "test_stacked.py", "test_jacobian.py", "test_data.py", "test_rnn_regression.py", "test_fast.py",
         "test_losses.py", "test_gradcheck.py", "test_arguments.py", "test_attention.py",
         "test_attention_checks.py"]
# The hidden-test checks (checks/): do they tell a wrong answer from the right one? Their tests run in
# this process: every solution notebook with its hidden tests (each check must accept the solution) and
# the slip tests of each problem set (each check must reject the listed wrong answers and name them).
# The nbgrader runs in the same files (test_partial_credit_and_messages) grade in other processes, which
# mutmut cannot follow, and are deselected; so is the test that compares ps09's task generator with the
# notebook's text (mutmut's copy of the source carries its decorator).
CHECK_MODULES = ["grading", "allowlist"] + [f"ps{n:02d}" for n in range(1, 11)]
CHECK_TESTS = ["test_checks_accept_solutions.py", "test_grading_checks.py", "test_ps04_checks.py",
               "test_ps05_checks.py", "test_ps09_checks.py", "test_allowlist.py", "test_attention_checks.py"] + [
    f"test_ps{n:02d}.py" for n in range(1, 11)]
WHAT = {
    "rnnlib": "mutants of rnnlib's NumPy modules against the fast unit tests; killed = a test failed",
    "checks": "mutants of the hidden-test checks (checks/) against the in-process tests that run them on the "
              "solutions and on known wrong answers; killed = a test failed",
}
PACKAGES = {  # package -> its modules, the tests, what the tests need beside it, pytest's -k, the record
    "rnnlib": (MODULES, TESTS, [], "", "mutation.json"),
    "checks": (CHECK_MODULES, CHECK_TESTS, ["rnnlib", "solutions", "exercises", "coursegrade", "nbgrader_config.py"],
               "not partial_credit and not graders_task_generator", "mutation_checks.json"),
}
# rnnlib.fast's buffers and scratch arrays: mutants that change only where or how precisely an intermediate is kept
FAST_BUFFER = 'the buffer (out=) only saves an allocation: without it NumPy allocates an array with the same values'
FAST_SCRATCH_DTYPE = ('a float64 scratch array in a float32 run only holds an intermediate more precisely before it is adde'
                      'd into a float32 array: the outputs stay float32 and agree to float32 rounding (no test can tell)')
FAST_SCALE_DTYPE = ('a float64 gate scale (0.5 or 1, exact in both dtypes) makes the scaled weights float64: the products '
                    'are computed more precisely and written into the float32 buffers (out=), so outputs stay float32 '
                    'and agree to float32 rounding')
FAST_BLOCK_ROWS = ('the input part of every later step computed again at each block: later blocks overwrite their rows '
                   'with the same values before they use them (only extra work)')
NEGATIVE_RESHAPE = "NumPy's reshape takes any negative size as the unknown one: -2 acts as -1"
# Surviving mutants that compute the same results as the original: mutant name -> (a piece of the
# mutated line, which the diff must contain, so that a renumbering cannot mislabel another mutant; why no
# test can fail).
EQUIVALENT = {
    "rnnlib.losses.x_softmax_cross_entropy__mutmut_58": (
        "targets[..., None], )", "NumPy >= 2.3: take_along_axis's axis defaults to -1, the axis given"),
    "rnnlib.losses.x_softmax_cross_entropy__mutmut_80": (
        "targets[..., None], ) - 1.0", "NumPy >= 2.3: take_along_axis's axis defaults to -1, the axis given"),
    "rnnlib.optim.x_clip_grad_norm__mutmut_17": (
        "g.astype(None)", "astype(None) converts to float64, the type given"),
    "rnnlib.jacobian.x_state_jacobian_norms__mutmut_84": (
        "grads = [np.zeros((H, H), dtype=None)]", "the backward's seed in float64 for float32 x only computes the norms more precisely (float64 either way)"),
    "rnnlib.jacobian.x_state_jacobian_norms__mutmut_86": (
        "grads = [np.zeros((H, H), )]", "the backward's seed in float64 for float32 x only computes the norms more precisely (float64 either way)"),
    "rnnlib.jacobian.x_state_jacobian_norms__mutmut_89": (
        "np.eye(H, dtype=None)", "the backward's seed in float64 for float32 x only computes the norms more precisely (float64 either way)"),
    "rnnlib.jacobian.x_state_jacobian_norms__mutmut_91": (
        "np.eye(H, )", "the backward's seed in float64 for float32 x only computes the norms more precisely (float64 either way)"),
    "rnnlib.stacked.x_stacked_forward__mutmut_37": (
        'initial_states("h0", h0, shape, None)', "NumPy compares a dtype with None as with float64, and the layer's own check "
        "(sequence.initial_state) raises the same message for any other dtype"),
    "rnnlib.stacked.x_stacked_forward__mutmut_48": (
        'initial_states("c0", c0, shape, None)', "NumPy compares a dtype with None as with float64, and the layer's own check "
        "(sequence.initial_state) raises the same message for any other dtype"),
    'rnnlib.data.x__years__mutmut_2': (
        '.astype("datetime64[Y]").astype(None)',
        'years as float64 instead of int: np.isin compares them the same'),
    'rnnlib.data.x_chronological_split__mutmut_37': (
        'np.timedelta64(X.shape[1], )',
        'a timedelta64 without a unit takes the unit of the dates it is subtracted from: days'),
    'rnnlib.data.xǁStandardScalerǁ__init____mutmut_2': (
        'self.std = ""',
        'std is read only after fit has set it; whether fit was called is checked on mean'),
    'rnnlib.data.x_temporal_xor__mutmut_24': (
        '.reshape(-2)',
        "NumPy's reshape takes any negative size as the unknown one: -2 acts as -1"),
    'rnnlib.data.x_temporal_xor__mutmut_37': (
        'reshape(1, -2, 1)',
        "NumPy's reshape takes any negative size as the unknown one: -2 acts as -1"),
    'rnnlib.data.x_temporal_xor__mutmut_50': (
        'reshape(1, -2, 1)',
        "NumPy's reshape takes any negative size as the unknown one: -2 acts as -1"),
    'rnnlib.data.x_reber_one_hot__mutmut_12': (
        'REBER_SYMBOLS.rindex(c)',
        'each symbol appears once in REBER_SYMBOLS: rindex == index'),
    'rnnlib.data.x_next_symbols_multi_hot__mutmut_9': (
        'REBER_SYMBOLS.rindex(c)',
        'each symbol appears once in REBER_SYMBOLS: rindex == index'),
    'rnnlib.data.x_char_corpus__mutmut_9': (
        'open(path, encoding=None)',
        'not testable here: the locale encoding is UTF-8 on this machine and the sources read are ASCII; the explicit encoding matters on Windows'),
    'rnnlib.data.x_char_corpus__mutmut_11': (
        'open(path, )',
        'not testable here: the locale encoding is UTF-8 on this machine and the sources read are ASCII; the explicit encoding matters on Windows'),
    'rnnlib.data.x_char_corpus__mutmut_13': (
        'encoding="UTF-8"',
        "codec names are case-insensitive: 'UTF-8' is 'utf-8'"),
    'rnnlib.data.xǁVocabǁencode__mutmut_2': (
        'dtype=None)',
        'NumPy 2 makes an array of Python ints int64 on every platform'),
    'rnnlib.data.xǁVocabǁencode__mutmut_4': (
        'for c in text], )',
        'NumPy 2 makes an array of Python ints int64 on every platform'),
    'rnnlib.data.x_adding_problem__mutmut_126': (
        'i2 = r + ((i1 <= m) & (r >= i1))',
        'i1 <= m differs from i1 < m only at i1 == m, where r < m = i1 makes the second factor false'),
    'rnnlib.data.x_adding_problem__mutmut_29': (
        'rng.integers(0, T / 2, n)',
        'Generator.integers truncates a float bound to an int: the same bound as with //'),
    'rnnlib.data.x_adding_problem__mutmut_38': (
        'rng.integers(T / 2, T, n)',
        'Generator.integers truncates a float bound to an int: the same bound as with //'),
    'rnnlib.data.x_adding_problem__mutmut_72': (
        'T + T / 10 + 1',
        'Generator.integers truncates a float bound to an int: the same bound as with //'),
    'rnnlib.data.x_seattle_weather__mutmut_26': (
        'np.timedelta64(1, )',
        'a timedelta64 without a unit takes the unit of the dates it is compared with: days'),
    'rnnlib.fast.x_gru_backward__mutmut_115': ('dh += np.matmul(da_h[t], W_hh, out=None)', FAST_BUFFER),
    'rnnlib.fast.x_gru_backward__mutmut_118': ('dh += np.matmul(da_h[t], W_hh, )', FAST_BUFFER),
    'rnnlib.fast.x_gru_backward__mutmut_35': ('tmp = np.empty((B, H), dtype=None)', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_gru_backward__mutmut_37': ('tmp = np.empty((B, H), )', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_gru_forward__mutmut_110': ('n[t] += np.multiply(r[t], a_hns[t], out=None)', FAST_BUFFER),
    'rnnlib.fast.x_gru_forward__mutmut_113': ('n[t] += np.multiply(r[t], a_hns[t], )', FAST_BUFFER),
    'rnnlib.fast.x_gru_forward__mutmut_75': ('a_h = np.empty((B, 3 * H), dtype=None)', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_gru_forward__mutmut_77': ('a_h = np.empty((B, 3 * H), )', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_backward__mutmut_128': ('dc += np.multiply(dh, dh_to_dc[t % STEPS_PER_BLOCK], out=None)', FAST_BUFFER),
    'rnnlib.fast.x_lstm_backward__mutmut_131': ('dc += np.multiply(dh, dh_to_dc[t % STEPS_PER_BLOCK], )', FAST_BUFFER),
    'rnnlib.fast.x_lstm_backward__mutmut_48': ('dh_to_dc = np.empty((STEPS_PER_BLOCK, B, H), dtype=None)', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_backward__mutmut_50': ('dh_to_dc = np.empty((STEPS_PER_BLOCK, B, H), )', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_backward__mutmut_55': ('dgates = np.empty((B, 4 * H), dtype=None)', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_backward__mutmut_57': ('dgates = np.empty((B, 4 * H), )', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_backward__mutmut_66': ('tmp = None', FAST_BUFFER),
    'rnnlib.fast.x_lstm_backward__mutmut_68': ('tmp = np.empty((B, H), dtype=None)', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_backward__mutmut_70': ('tmp = np.empty((B, H), )', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_forward__mutmut_131': ('a_h = None', FAST_BUFFER),
    'rnnlib.fast.x_lstm_forward__mutmut_133': ('a_h = np.empty((B, 4 * H), dtype=None)', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_forward__mutmut_135': ('a_h = np.empty((B, 4 * H), )', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_forward__mutmut_138': ('ig = None', FAST_BUFFER),
    'rnnlib.fast.x_lstm_forward__mutmut_140': ('ig = np.empty((B, H), dtype=None)', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_forward__mutmut_142': ('ig = np.empty((B, H), )', FAST_SCRATCH_DTYPE),
    'rnnlib.fast.x_lstm_forward__mutmut_149': ('rows = slice(t * B, None)', FAST_BLOCK_ROWS),
    'rnnlib.fast.x_lstm_forward__mutmut_17': ('scale = lstm_gate_scale(H, None)[:, None]', FAST_SCALE_DTYPE),
    'rnnlib.fast.x_lstm_forward__mutmut_172': ('u_t += np.matmul(hs[t], W_hh_T, out=None)', FAST_BUFFER),
    'rnnlib.fast.x_lstm_forward__mutmut_175': ('u_t += np.matmul(hs[t], W_hh_T, )', FAST_BUFFER),
    'rnnlib.fast.x_lstm_forward__mutmut_200': ('c += np.multiply(i[t], g[t], out=None)', FAST_BUFFER),
    'rnnlib.fast.x_lstm_forward__mutmut_203': ('c += np.multiply(i[t], g[t], )', FAST_BUFFER),
    'rnnlib.fast.x_rnn_backward__mutmut_46': ('da2 = da.reshape(-2, da.shape[-1])', NEGATIVE_RESHAPE),
    'rnnlib.fast.x_rnn_backward__mutmut_57': ('dW_ih = da2.T @ x.reshape(-2, x.shape[-1])', NEGATIVE_RESHAPE),
    'rnnlib.fast.x_rnn_backward__mutmut_66': ('dW_hh = da2.T @ h_prev.reshape(-2, h_prev.shape[-1])', NEGATIVE_RESHAPE),
    'rnnlib.attention.x_additive_attention_forward__mutmut_5': (
        'same_width=None',
        'None is falsy like False'),
    'rnnlib.attention.x_additive_attention_backward__mutmut_46': (
        '"BIJ,BIJA->A"',
        'einsum subscripts are labels: upper-case letters name the same contraction'),
    'rnnlib.attention.x_additive_attention_backward__mutmut_69': (
        '"BIA,BID->AD"',
        'einsum subscripts are labels: upper-case letters name the same contraction'),
    'rnnlib.attention.x_additive_attention_backward__mutmut_78': (
        '"BJA,BJD->AD"',
        'einsum subscripts are labels: upper-case letters name the same contraction'),
    'rnnlib.attention.x_masked_softmax__mutmut_26': (
        'm, 1.0)',
        'only fully masked rows (all -inf) take this value: exp(-inf - 1) is 0 like exp(-inf - 0)'),
    'rnnlib.attention.x_masked_softmax__mutmut_46': (
        'total > 1, total, 1.0',
        'total >= 1 for any row with an unmasked entry (its max contributes exp(0) = 1): dividing by 1.0 instead of total = 1 is the same'),
    'rnnlib.attention.x_masked_softmax__mutmut_47': (
        'total, 2.0)',
        'only fully masked rows (e = 0) are divided by it: 0 / 2 = 0 / 1'),
    'rnnlib.data.x_adding_problem__mutmut_116': (
        'm - (i1 < m), None)',
        'with an array as the bound, Generator.integers draws one number per entry: the size n is implied'),
    'rnnlib.data.x_adding_problem__mutmut_119': (
        'm - (i1 < m), )',
        'with an array as the bound, Generator.integers draws one number per entry: the size n is implied'),
    "rnnlib.sequence.x_rnn_backward__mutmut_27": (
        "np.zeros(W_hh.shape[1]", "the RNN's W_hh is square (H, H): shape[0] == shape[1]"),
    "rnnlib.sequence.x_linear_backward__mutmut_21": (
        "h.reshape(-2,", "NumPy's reshape takes any negative size as the unknown one: -2 acts as -1"),
    "rnnlib.sequence.x_linear_backward__mutmut_30": (
        "dy.reshape(-2,", "NumPy's reshape takes any negative size as the unknown one: -2 acts as -1"),
}


RANDOM_HALF = "differs from < only when random() returns exactly 0.5 (probability 2**-53)"
EINSUM_LABELS = "einsum subscripts are labels: upper-case letters name the same contraction"
FALSY = "None is falsy like False"
NOT_RIGHT = 'any order other than "right" multiplies each new factor on the left, as "left" does'
CLIP_KEYS = "the names of the gradient dict's keys: clip_grad_norm treats every entry alike and no message shows them"
ZERO_STATE = "None means a zero state, and 0 / h0 is 0 for the nonzero normal draws: all three are zeros"
SAME_SHAPES = ("both directions of a layer, and every layer of the stack, have the same hidden size and layer 0's "
               "directions the same input size")
DEFAULT_TOLERANCE = "rtol=1e-6 and atol=1e-8 are check_function's defaults: leaving one out changes nothing"
RANDOM_KIND = 'random_mask draws a random mask for any kind that is not "causal" or "padding"'
GOT_FLOAT64 = ("got is made float64 first, so the difference and the tolerance are float64 whatever the "
               "type of expected (a count is an int)")
WRAPPED = ("the student's function is wrapped by a watch of its own over a superset of the references "
           "(checks.grading.forbid_calls), which replaces check_function's watch while it runs: with or "
           "without allow_reference the same copier fails with the same message")
TINY_ENTRIES = ("atol matters against rtol * |x| only for entries below 1e-3, which few draws hold, and then only "
                "for an answer off by 1e-12 to 1e-8 there: torch's + 1e-6 is off by 1e-6 * |x| / norm, below both")
DEFAULT_TRIALS = "trials=3 is check_function's default"
SEED_BITS = "a seed of 33 random bits instead of 32: np.random.default_rng draws as randomly from either"
MARKER_ONCE = ('"raised GradingError: " occurs once in the message: check_function wraps the student\'s error '
               'once, so split, rsplit and any maxsplit >= 1 give the same part')
HAND_FLOATS = "HAND's X is a list of Python floats: np.array makes it float64 without being told"
# The same for the hidden-test checks.
EQUIVALENT.update({
    "checks.ps01.x_hand_reference__mutmut_31": ('np.array(p["X"], dtype=None)', HAND_FLOATS),
    "checks.ps01.x_hand_reference__mutmut_33": ('np.array(p["X"], )', HAND_FLOATS),
    "checks.ps01.x_hand_reference__mutmut_38": (".reshape(1, -2, 1)", NEGATIVE_RESHAPE),
    "checks.ps02.x__forward_slip__mutmut_8": ("np.zeros((B, W_hh.shape[1]))", "the RNN's W_hh is square (H, H): shape[0] == shape[1]"),
    "checks.ps02.x__loss_shape__mutmut_13": ("rng.random() <= 0.5", RANDOM_HALF),
    "checks.ps04.x__rmse__mutmut_7": ("np.asarray(a, dtype=None)", "the forecasts are float64 already (run() converts them)"),
    "checks.ps04.x__rmse__mutmut_9": ("np.asarray(a, )", "the forecasts are float64 already (run() converts them)"),
    "checks.ps04.x_linear_step_fn__mutmut_8": ("X.reshape(len(X), -2)", NEGATIVE_RESHAPE),
    "checks.ps04.x_tiny_problem__mutmut_17": ("X.reshape(11, -2)", NEGATIVE_RESHAPE),
    "checks.ps04.x_beats_persistence__mutmut_24": ("secrets.randbits(33)", SEED_BITS),
    "checks.ps04.x_reraise_reference_calls__mutmut_16": ("text.split(marker, )[1]", MARKER_ONCE),
    "checks.ps04.x_reraise_reference_calls__mutmut_17": ("text.rsplit(marker, 1)[1]", MARKER_ONCE),
    "checks.ps04.x_reraise_reference_calls__mutmut_18": ("text.split(marker, 2)[1]", MARKER_ONCE),
    "checks.ps05.x__clip_each_array__mutmut_8": ("if n >= max_norm:", "a random norm equals the random max_norm with probability 0"),
    "checks.ps05.x__clip_each_array__mutmut_12": ("max_norm / (n - 1e-6)",
        "the slip's guard: its outputs move by 2e-6 of max_norm / n, inside the 1e-5 to which a slip is matched"),
    "checks.ps05.x__jacobian_inputs__mutmut_52": ("rng.standard_normal((2, T, D))",
        "the first sequence of a batch of 2 is the batch of 1 (the generator fills row by row), only hs[0] is "
        "used and nothing is drawn after it"),
    "checks.ps05.x__square_inputs__mutmut_11": ("rng.random() <= 0.5", RANDOM_HALF),
    "checks.ps05.x__truncated_slip__mutmut_48": ('"BTH,BTD->HD"', EINSUM_LABELS),
    "checks.ps05.x__truncated_slip__mutmut_56": ('"BTH,BTK->HK"', EINSUM_LABELS),
    "checks.ps05.x_jacobian_slips__mutmut_14": ("_jacobian_norms(order=None)", NOT_RIGHT),
    "checks.ps05.x_jacobian_slips__mutmut_15": ('_jacobian_norms(order="XXleftXX")', NOT_RIGHT),
    "checks.ps05.x_jacobian_slips__mutmut_16": ('_jacobian_norms(order="LEFT")', NOT_RIGHT),
    "checks.ps05.x_truncated_slips__mutmut_5": ("lambda t, k: None", FALSY),
    **{f"checks.ps05.x_run_clip__mutmut_{n}": (key, CLIP_KEYS) for n, key in [
        (2, '"XXW_ihXX"'), (3, '"w_ih"'), (4, '"W_IH"'), (5, '"XXW_hhXX"'), (6, '"w_hh"'), (7, '"W_HH"'),
        (8, '"XXbXX"'), (9, '"B"')]},
    "checks.ps06.x_forward_slips__mutmut_18": ("with_b_hh=None", FALSY),
    "checks.ps06.x_forward_slips__mutmut_25": ("tanh_on_c=None", FALSY),
    "checks.ps06.x_forward_slips__mutmut_29": ("input_gate=None", FALSY),
    "checks.ps07.x__forward_slip__mutmut_44": ("W_hh[order[2] * H:(order[2] + 2) * H]",
        "W_hn is used only with reset_before, whose slip keeps the order (n last): W_hh has 3H rows, so the rows "
        "2H:4H are the rows 2H:3H"),
    "checks.ps07.x_forward_slips__mutmut_22": ("with_b_hh=None", FALSY),
    "checks.ps08.x__one_direction_inputs__mutmut_13": ("torch_lstm(D, H, 2, ",
        "torch draws layer 0's weights first: with the same seed a 2-layer module's first layer is the 1-layer "
        "module, and only that layer is read"),
    "checks.ps08.x_bidirectional_slips__mutmut_3": ("reverse_back=None", FALSY),
    "checks.ps08.x_bidirectional_slips__mutmut_7": ("reverse_input=None", FALSY),
    "checks.ps08.x_bidirectional_slips__mutmut_8": ("reverse_back=None", FALSY),
    "checks.ps08.x_lstm_layer__mutmut_28": ("lstm_layer_reference(x, p, None, 0 * c0)", ZERO_STATE),
    "checks.ps08.x_lstm_layer__mutmut_29": ("lstm_layer_reference(x, p, 0 * h0, None)", ZERO_STATE),
    "checks.ps08.x_lstm_layer__mutmut_34": ("lstm_layer_reference(x, p, 0 / h0, 0 * c0)", ZERO_STATE),
    "checks.ps08.x_lstm_layer__mutmut_36": ("lstm_layer_reference(x, p, 0 * h0, 0 / c0)", ZERO_STATE),
    "checks.ps08.x_stack_torch_reference__mutmut_27": ("torch_lstm(D, H, len(layers), 1)",
        "the module's own initial weights are all replaced by the layers given (stack_to_torch)"),
    "checks.ps08.x_stack_torch_reference__mutmut_3": ('layers[0][1]["W_ih"].shape[1]', SAME_SHAPES),
    "checks.ps08.x_stack_torch_reference__mutmut_8": ('layers[1][0]["W_hh"].shape[1]', SAME_SHAPES),
    "checks.ps08.x_stack_torch_reference__mutmut_9": ('layers[0][1]["W_hh"].shape[1]', SAME_SHAPES),
    "checks.ps08.x_stacked_bilstm__mutmut_16": ("trials=2, atol=1e-8, slips=STACK_SLIPS", DEFAULT_TOLERANCE),
    "checks.ps08.x_stacked_bilstm__mutmut_17": ("trials=2, rtol=1e-6, slips=STACK_SLIPS", DEFAULT_TOLERANCE),
    "checks.ps08.xǁLayersǁ__repr____mutmut_3": ("l0 = self[0][1]", SAME_SHAPES),
    "checks.ps10.x__slip_forward__mutmut_39": ("return (_weights(s, ) * m) @ v",
        "the one slip that takes this branch (after=True) keeps axis=-1, _weights' default"),
    "checks.ps10.x__slip_forward__mutmut_53": ("-1e+30", "-1e+30 is the number -1e30"),
    "checks.ps10.x_forward_slips__mutmut_3": ("scale=None", FALSY),
    "checks.ps10.x_random_beam_args__mutmut_2": ("for _ in range(101):",
        "the loop ends at the first draw whose beam and greedy decodings differ, long before the 100th"),
    "checks.ps10.x_random_mask__mutmut_30": ("<= 0.6", "a random float equals 0.6 with probability 2**-53"),
    "checks.ps10.x_random_mask__mutmut_32": ("] = None", "None assigned into a bool array is False"),
    "checks.ps10.x_random_qkv__mutmut_34": ('"XXrandomXX")', RANDOM_KIND),
    "checks.ps10.x_random_qkv__mutmut_35": ('"RANDOM")', RANDOM_KIND),
    "checks.ps10.x_reference_beam__mutmut_27": ("max_len, sos, )", "eos is always 2 here, beam_search's default EOS"),
    "checks.grading.x_check_function__mutmut_15": ("secrets.randbits(33)", SEED_BITS),
    "checks.grading.x_compare_arrays__mutmut_15": ("np.asarray(expected, dtype=None)", GOT_FLOAT64),
    "checks.grading.x_compare_arrays__mutmut_17": ("np.asarray(expected, )", GOT_FLOAT64),
    "checks.grading.x_compare_arrays__mutmut_53": ("np.where(bad, err, -2)",
        "argmax looks for the largest error among the bad entries, which are >= 0: -1 or -2 elsewhere is the same"),
    "checks.grading.x_matching_slip__mutmut_58": ("if len(names) > 2 else names",
        'with two names both branches give "a and b"'),
    "checks.grading.x_reference_code__mutmut_10": ("            break",
        "every module of REFERENCE imports here (rnnlib is installed whole on the grading side)"),
    "checks.grading.x_reference_code__mutmut_15": ("getattr(module, name, )",
        "every name of REFERENCE exists (tests/test_allowlist.py::test_every_reference_name_exists)"),
    "checks.grading.x_reference_code__mutmut_7": ("break  # not imported",
        "rnnlib.torch.seq2seq is the last module of REFERENCE: nothing after it is skipped"),
    **{f"checks.ps05.x_clip_grad_norm__mutmut_{n}": (frag, WRAPPED) for n, frag in [
        (37, "allow_reference=None"), (47, "atol=1e-12, slips=CLIP_SLIPS"), (53, "allow_reference=False")]},
    **{f"checks.ps05.x_rnn_backward_truncated__mutmut_{n}": (frag, WRAPPED) for n, frag in [
        (22, "allow_reference=None"), (32, "        slips=truncated_slips()))"), (53, "allow_reference=False")]},
    **{f"checks.ps10.x_beam__mutmut_{n}": (frag, WRAPPED) for n, frag in [
        (64, "allow_reference=None"), (74, 'atol=1e-9, slips={"greedy'), (85, "allow_reference=False")]},
    "checks.ps05.x_clip_grad_norm__mutmut_44": ("name=label, output_names=CLIP_OUTPUTS, rtol=1e-5", DEFAULT_TRIALS),
    "checks.ps05.x_clip_grad_norm__mutmut_45": ("            atol=1e-12, allow_reference=True",
        "the global norms drawn are 1 to 100, so torch's max_norm / (norm + 1e-6) is off by at most 1e-6 relative: "
        "the default rtol 1e-6 accepts it as 1e-5 does, and no answer known falls between"),
    "checks.ps05.x_clip_grad_norm__mutmut_46": ("rtol=1e-5, allow_reference=True", TINY_ENTRIES),
    "checks.ps05.x_spectral_radius__mutmut_17": ("trials=6, rtol=1e-7, slips=",
        "the radii drawn are at least 0.137 (3000 draws), so the default atol 1e-8 adds at most 0.7e-8 to "
        "rtol * radius >= 1.4e-8: no answer known is off by so little (a wrong radius is off by more than 1e-3)"),
    "checks.ps08.x_lstm_param_count__mutmut_78": ("trials=6, rtol=0, slips=",
        "counts are whole numbers: an error is 0 or at least 1, so atol 0 or the default 1e-8 decide alike"),
    **{f"checks.ps04.x_{fn}__mutmut_{n}": (frag, WRAPPED) for fn, n, frag in [
        ("adam", 27, "allow_reference=None"), ("adam", 36, "atol=1e-10, ))"), ("adam", 52, "allow_reference=False"),
        ("scale_splits", 22, "allow_reference=None"), ("scale_splits", 31, "atol=1e-9, ))"),
        ("scale_splits", 50, "allow_reference=False"), ("train_epoch", 30, "allow_reference=None"),
        ("train_epoch", 39, "atol=1e-12, ))"), ("train_epoch", 59, "allow_reference=False"),
        ("weather_step", 21, "allow_reference=None"), ("weather_step", 29, "trials=3, slips="),
        ("weather_step", 39, "allow_reference=False")]},
    "checks.ps04.x_train_epoch__mutmut_36": ("        rtol=1e-9, atol=1e-12, allow_reference=True))", DEFAULT_TRIALS),
    "checks.ps04.x_weather_step__mutmut_28": ("WEATHER_PARAMS), allow_reference=True,", DEFAULT_TRIALS),
    "checks.ps04.x__as_outputs__mutmut_7": ("arrays[:7]", "zip stops at the 6 names: a seventh array is never paired"),
    "checks.ps04.x__weather_step_slip__mutmut_48": ("WEATHER_PARAMS[:5]",
        "zip stops at the 4 recurrent gradients: the fifth name is never paired"),
    "checks.ps04.x__epoch_inputs__mutmut_15": ("int(rng.integers(2 ** 31))", "integers(n) is integers(0, n)"),
    "checks.ps04.x_linear_step_fn__mutmut_30": ('diff.sum(axis=None)',
        "diff is (B, 1): the sum over everything is the sum over axis 0 with the trailing 1 dropped, and "
        "b -= lr * g broadcasts either into b's one entry"),
    "checks.ps03.x_numerical_gradient__mutmut_59": ("'XX, XX'.join(used)",
        "only rnnlib.gradcheck.numerical_gradient calls a function it is given (f()), so used holds one name at "
        "most and the separator is never shown"),
})
# ps09 and the builder of the restricted packages (allowlist)
SAME_FEATURES = "every sequence of a batch has the same number of features and the same dtype: seqs[1] reads as seqs[0]"
RANDOM_MOVE = ("the parameters are moved at random to see that the logits depend on them: a move of another size, "
               "sign or seed moves them as well (a model that ignores its parameters ignores any move)")
INT64_LIST = "torch.tensor makes a list of Python ints int64 without being told"
SHORT_WINDOWS = "the windows that start after len(symbols) - k are shorter than the pattern and never equal it"
UNPARSE_LEVEL = "ast.unparse writes an ImportFrom whose level is None, or not given, with no dots, as for level 0"
EQUIVALENT.update({
    "checks.allowlist.x__import_line__mutmut_4": ("names=aliases, level=None)", UNPARSE_LEVEL),
    "checks.allowlist.x__import_line__mutmut_7": ("names=aliases, )", UNPARSE_LEVEL),
    "checks.ps09.x__shapes__mutmut_1": ("seqs[1].shape[1]", SAME_FEATURES),
    "checks.ps09.x_pack_sequences__mutmut_11": ("D = seqs[1].shape[1]", SAME_FEATURES),
    "checks.ps09.x_pad_reference__mutmut_16": ("seqs[1].shape[1], dtype=seqs[0].dtype", SAME_FEATURES),
    "checks.ps09.x_pad_reference__mutmut_18": ("dtype=seqs[1].dtype", SAME_FEATURES),
    "checks.ps09.x_pad_reference__mutmut_3": ("dtype=None)", INT64_LIST),
    "checks.ps09.x_pad_reference__mutmut_5": ("for s in seqs], )", INT64_LIST),
    "checks.ps09.x_pad_sequences__mutmut_5": ("secrets.randbits(33)", SEED_BITS),
    "checks.ps09.x_pack_sequences__mutmut_5": ("secrets.randbits(33)", SEED_BITS),
    "checks.ps09.x_classifier_batch_independent__mutmut_5": ("secrets.randbits(33)", SEED_BITS),
    "checks.ps09.x_train_and_predict__mutmut_5": ("secrets.randbits(32)",
        "a data seed of 32 random bits instead of 31: make_task's default_rng draws as randomly from either"),
    "checks.ps09.x_train_and_predict__mutmut_95": ("np.random.default_rng(None)", RANDOM_MOVE),
    "checks.ps09.x_check_uses_its_parameters__mutmut_31": (".astype(None)",
        "a float64 move is cast to the parameter's dtype by load_state_dict, which copies into the parameters"),
    "checks.ps09.x_check_uses_its_parameters__mutmut_32": ("v - 0.1 * rng", RANDOM_MOVE),
    "checks.ps09.x_check_uses_its_parameters__mutmut_33": ("v + 0.1 / rng", RANDOM_MOVE),
    "checks.ps09.x_check_uses_its_parameters__mutmut_34": ("v + 1.1 * rng", RANDOM_MOVE),
    "checks.ps09.x_check_uses_its_parameters__mutmut_35": ("rng.standard_normal(None)", RANDOM_MOVE),
    "checks.ps09.x_check_uses_its_parameters__mutmut_37": ("strict=None", FALSY),
    "checks.ps09.x_check_uses_its_parameters__mutmut_53": (") >= 1e-6:",
        "differs from > only when the largest change of a logit is exactly 1e-6 (probability zero)"),
    "checks.ps09.x_classifier_batch_independent__mutmut_75": (") >= 1e-6:",
        "differs from > only when the largest difference of two logits is exactly 1e-6 (probability zero)"),
    "checks.ps09.x_classifier_batch_independent__mutmut_74": ("batch - batch[1]",
        "the batches hold at least 3 sequences: all rows equal row 0 exactly when all equal row 1"),
    "checks.ps09.x_classifier_batch_independent__mutmut_79": ("batch[1].round(4)",
        "shown only when every row equals row 0 to 1e-6, so row 1 rounded to 4 digits is row 0 rounded"),
    "checks.ps09.x_contains_pattern__mutmut_10": ("range(len(symbols) + k + 1)", SHORT_WINDOWS),
    "checks.ps09.x_contains_pattern__mutmut_11": ("range(len(symbols) - k + 2)", SHORT_WINDOWS),
    "checks.ps09.x_make_task__mutmut_39": ("rng.integers(length - len(PATTERN) + 1)", "integers(n) is integers(0, n)"),
    "checks.ps09.x_random_sequences__mutmut_19": ("replace=None", FALSY),
    "checks.ps09.x_random_sequences__mutmut_32": ("np.diff(lengths) <= 0",
        "the lengths are drawn without replacement: no two are equal and no difference is 0"),
    "checks.ps09.x_random_sequences__mutmut_33": ("np.diff(lengths) < 1",
        "integer differences: < 1 is <= 0, and the lengths, drawn without replacement, never differ by 0"),
    "checks.ps09.x__call__mutmut_12": ("'XX, XX'.join(",
        "under mutation testing every function of checks.ps09 runs through mutmut's trampoline, so the references "
        "called show as one name and no separator is written; outside mutmut "
        "test_an_answer_that_calls_the_graders_reference_scores_0 sees both names and the separator"),
})


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def mutmut(workdir, *args, check=True, timeout=None):
    """Run the mutmut of this Python in ``workdir`` with one thread for BLAS; return the finished process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"mutmut {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return proc


def prepare(workdir, module, tests, package="rnnlib"):
    """Copy the package, what its tests need and the tests into ``workdir``; write mutmut's configuration
    for ``module``."""
    _, _, beside, deselect, _ = PACKAGES[package]
    for name in [package] + beside:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, workdir / name)
    (workdir / "tests").mkdir()
    helpers = sorted(p.name for p in (ROOT / "tests").glob("*.py") if not p.name.startswith("test_"))
    for name in helpers + tests:
        shutil.copy(ROOT / "tests" / name, workdir / "tests" / name)
    if (ROOT / "tests" / "golden").is_dir():  # the reviewed grading messages (tests/grading_messages.py)
        shutil.copytree(ROOT / "tests" / "golden", workdir / "tests" / "golden")
    listed = "\n".join(f"    tests/{t}" for t in tests)
    select = f"    -k\n    {deselect}\n" if deselect else ""
    (workdir / "setup.cfg").write_text(
        f"[mutmut]\nsource_paths = {package}\n"
        + ("also_copy =\n" + "".join(f"    {name}\n" for name in beside) if beside else "")
        + f"only_mutate = {package}/{module}.py\n"
        f"pytest_add_cli_args_test_selection =\n{listed}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -q\n" + select)


def label_equivalent(entry):
    """Mark a surviving mutant listed in EQUIVALENT (if its diff shows the listed change) with the reason."""
    entry.pop("equivalent", None)
    added = [line for line in entry["diff"].splitlines() if line.startswith("+") and not line.startswith("+++")]
    known = EQUIVALENT.get(entry["name"])
    if entry["status"] == "survived" and known and any(known[0] in line for line in added):
        entry["equivalent"] = known[1]
    return entry


def source_sha256(module, package="rnnlib"):
    return hashlib.sha256((ROOT / package / f"{module}.py").read_bytes()).hexdigest()


def run_module(module, tests, max_children, mutants=(), previous=None, package="rnnlib"):
    """Mutation-test one module; return its entry for the record.

    ``mutants``: globs of mutant names to run (default: all). ``previous``: the module's entry of an
    earlier run on the same source: then only its mutants that were not killed are run again (after
    new tests), and the entry is updated."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{package}-mutation-{module}-"))
    if previous is not None:
        mutants = [e["name"] for e in previous["not_killed"]]
    try:
        prepare(workdir, module, tests, package)
        start = time.perf_counter()
        run = mutmut(workdir, "run", "--max-children", str(max_children), *mutants)
        seconds = time.perf_counter() - start
        meta = json.loads((workdir / "mutants" / package / f"{module}.py.meta").read_text())
        from mutmut.stats import status_by_exit_code
        statuses = {name: status_by_exit_code[code] for name, code in meta["exit_code_by_key"].items()}
        not_checked = [name for name, status in statuses.items() if status == "not checked"]
        if not mutants and not_checked:
            raise RuntimeError(f"mutmut left {len(not_checked)} mutants of {module} unchecked: {not_checked[:5]}")
        statuses = {name: status for name, status in statuses.items() if status != "not checked"}
        not_killed = []
        for name, status in sorted(statuses.items()):
            if status == "killed":
                continue
            diff = mutmut(workdir, "show", name).stdout
            diff = "\n".join(line for line in diff.splitlines() if not line.startswith("# "))
            entry = {"name": name, "status": status, "diff": diff}
            not_killed.append(label_equivalent(entry))
        counts = {s: sum(1 for v in statuses.values() if v == s) for s in sorted(set(statuses.values()))}
        n_mutants, killed = len(statuses), counts.get("killed", 0)
        if previous is not None:  # the mutants killed before are still killed: the tests only grew
            n_mutants, killed = previous["mutants"], previous["killed"] + killed
            seconds += previous["seconds"]
        equivalent = sum(1 for e in not_killed if "equivalent" in e)
        return {"mutants": n_mutants, "killed": killed, "survived": counts.get("survived", 0),
                "timeout": counts.get("timeout", 0), "equivalent": equivalent, "other": {
                    s: n for s, n in counts.items() if s not in ("killed", "survived", "timeout")},
                "killed_of_non_equivalent": round(killed / max(1, n_mutants - equivalent), 4),
                "seconds": round(seconds, 1), "tests": tests,
                "commit": git("rev-parse", "HEAD"), "source_sha256": source_sha256(module, package),
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "rechecked": previous is not None, "not_killed": not_killed,
                "mutmut_output_tail": re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", run.stdout)[-400:]}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="rnnlib", choices=sorted(PACKAGES),
                        help="rnnlib (the NumPy reference) or checks (the hidden-test checks)")
    parser.add_argument("--modules", default=None,
                        help="comma-separated modules of the package (default: MODULES or CHECK_MODULES)")
    parser.add_argument("--tests", default=None,
                        help="comma-separated test files (default: TESTS or CHECK_TESTS, those that exist)")
    parser.add_argument("--max-children", type=int, default=1, help="mutants tested at once (default 1: one CPU)")
    parser.add_argument("--mutants", default="", help="comma-separated globs of mutant names (default: all)")
    parser.add_argument("--recheck", action="store_true",
                        help="run again only the mutants the record lists as not killed (after new tests), "
                             "for modules whose source has not changed since")
    parser.add_argument("--relabel", action="store_true",
                        help="run nothing: apply EQUIVALENT to the record's survivors again and recount")
    parser.add_argument("--out", default=None,
                        help="the record (default: benchmarks/results/mutation.json or mutation_checks.json)")
    args = parser.parse_args()
    package = args.package
    all_modules, all_tests, _, _, record_name = PACKAGES[package]
    modules = [m for m in (args.modules.split(",") if args.modules else all_modules)
               if (ROOT / package / f"{m}.py").exists()]
    tests = [t for t in (args.tests.split(",") if args.tests else all_tests) if (ROOT / "tests" / t).exists()]
    out = Path(args.out or ROOT / "benchmarks" / "results" / record_name)
    record = json.loads(out.read_text()) if out.exists() else {"modules": {}}
    import mutmut as mutmut_package
    if args.relabel:
        for entry in record["modules"].values():
            entry["not_killed"] = [label_equivalent(e) for e in entry["not_killed"]]
            entry["equivalent"] = sum(1 for e in entry["not_killed"] if "equivalent" in e)
            entry["killed_of_non_equivalent"] = round(entry["killed"] / max(1, entry["mutants"] - entry["equivalent"]), 4)
        modules = []
        write_totals(record, out, package=package)
    for module in modules:
        print(f"mutation testing {package}/{module}.py ...", flush=True)
        previous = record["modules"].get(module) if args.recheck else None
        if previous is not None and previous.get("source_sha256") != source_sha256(module, package):
            print(f"  {package}/{module}.py changed since its entry: all its mutants are run", flush=True)
            previous = None
        if previous is not None and previous.get("partial"):  # it counts only the mutants run before it stopped
            print(f"  the entry of {package}/{module}.py is partial: all its mutants are run", flush=True)
            previous = None
        record["modules"][module] = run_module(module, tests, args.max_children,
                                               [m for m in args.mutants.split(",") if m], previous, package)
        entry = record["modules"][module]
        print(f"  {entry['mutants']} mutants, {entry['killed']} killed, {entry['survived']} survived "
              f"({entry['equivalent']} equivalent), {entry['timeout']} timed out, {entry['seconds']} s", flush=True)
        write_totals(record, out, args.max_children, package)  # after every module: a long run can be stopped
    print(json.dumps({"total": record.get("total"), "written": str(out)}))


def write_totals(record, out, max_children=1, package="rnnlib"):
    """Add the totals over the modules and the provenance to ``record``; write it to ``out``."""
    import mutmut as mutmut_package
    entries = record["modules"].values()
    total = {k: sum(e[k] for e in entries) for k in ("mutants", "killed", "survived", "timeout", "equivalent")}
    total["killed_of_non_equivalent"] = round(total["killed"] / max(1, total["mutants"] - total["equivalent"]), 4)
    record.update({
        "tool": f"mutmut {mutmut_package.__version__}",
        "what": WHAT[package],
        "command": " ".join(["python"] + sys.argv), "commit": git("rev-parse", "HEAD"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "max_children": max_children},
        "total": total})
    record["modules"] = dict(sorted(record["modules"].items()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
