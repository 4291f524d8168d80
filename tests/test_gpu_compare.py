"""Tests of rnnlib.torch.models and of the benchmark harness benchmarks/gpu_compare.py (CPU, fast)."""
import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_compare  # noqa: E402
from rnnlib.torch.models import (RecurrentLM, TransformerLM, count_params, flops_per_token,  # noqa: E402
                           heads_for, matched_models)

SCHEMA = ROOT / "benchmarks" / "results" / "schema.json"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: more threads only add contention."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    result = gpu_compare.main(["--quick", "--out", str(out), "--no-progress"])
    return result, json.loads(out.read_text())


def test_quick_run_writes_json_matching_schema(quick_result):
    jsonschema = pytest.importorskip("jsonschema")
    _, data = quick_result
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))


def test_schema_rejects_a_broken_result(quick_result):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    _, data = quick_result
    broken = json.loads(json.dumps(data))
    del broken["throughput"]["results"][0]["tokens_per_s"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(data))
    broken["streaming"]["results"][0]["median_ms"] = -1.0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_quick_run_contents(quick_result):
    result, data = quick_result
    assert data["meta"]["device"]["type"] == "cpu"
    assert data["meta"]["command"].startswith("python benchmarks/gpu_compare.py --quick")
    assert set(data["models"]) == {"rnn", "lstm", "gru", "transformer"}
    cfg = data["config"]
    # (a) one result per (model, T, mode), positive throughput, one raw timing per repeat
    thr = data["throughput"]["results"]
    assert len(thr) == 4 * len(cfg["seq_lens"]) * len(cfg["modes"])
    for r in thr:
        assert "error" not in r, r
        assert r["batch"] * r["T"] == cfg["tokens_per_batch"]
        assert len(r["repeat_ms_per_step"]) == cfg["repeats"]
        assert r["tokens_per_s"] == pytest.approx(r["tokens_per_batch"] / r["median_ms_per_step"] * 1e3)
        assert r["core_dtype"] == "float32"
    # (b) every (model, T) summarised over every seed, accuracies are fractions
    acc = data["accuracy"]
    assert len(acc["summary"]) == 4 * len(cfg["acc_seq_lens"])
    assert all(s["n_seeds"] == len(cfg["acc_seeds"]) for s in acc["summary"])
    assert all(0.0 <= r["accuracy"] <= r["accuracy_tol_x2"] <= 1.0 for r in acc["runs"])
    assert acc["gate_bias"] == cfg["acc_gate_bias"] == 5.0 and acc["variant"].startswith("le2015")
    # (c) the recurrent state has one size at every context; the KV cache grows linearly
    st = data["streaming"]["results"]
    ctx = cfg["stream_contexts"]
    for name in ("rnn", "lstm", "gru"):
        sizes = {r["state_bytes"] for r in st if r["model"] == name}
        assert len(sizes) == 1
    kv = {r["context"]: r["state_bytes"] for r in st if r["model"] == "transformer"}
    tf = data["models"]["transformer"]
    for S in ctx:
        assert kv[S] == 2 * tf["n_layers"] * tf["d_model"] * 4 * S     # float32 keys + values
    assert all(len(r["ms_per_token"]) == cfg["stream_tokens"] for r in st)
    # the returned dict is what was written
    assert result["throughput"]["results"][0]["tokens_per_s"] == thr[0]["tokens_per_s"]


def test_quick_run_is_fast(quick_result):
    """Under 40 s of CPU time (wall time on a shared machine says more about the neighbours)."""
    _, data = quick_result
    assert data["seconds"]["total_process_cpu"] < 40


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_kv_cache_streaming_equals_full_recomputation(positions):
    torch.manual_seed(0)
    model = TransformerLM(vocab=11, d_model=24, n_heads=3, n_layers=2, max_len=32,
                          positions=positions).double().eval()
    tokens = torch.randint(0, 11, (3, 20))
    with torch.no_grad():
        full = model(tokens)
        cache = model.init_cache(3)
        streamed = torch.stack([model.step(tokens[:, t], cache)[0] for t in range(20)], dim=1)
        # prefill 7 tokens, then a block of 5 (lower-right causal mask), then single steps
        cache2 = model.init_cache(3)
        a = model.prefill(tokens[:, :7], cache2)
        b = model.prefill(tokens[:, 7:12], cache2)
        c = torch.stack([model.step(tokens[:, t], cache2)[0] for t in range(12, 20)], dim=1)
    assert cache.pos == 20 and cache2.pos == 20
    torch.testing.assert_close(streamed, full, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.cat([a, b, c], dim=1), full, rtol=0, atol=1e-10)
    assert cache.nbytes_used() == 2 * 2 * 3 * 20 * 24 * 8


def test_single_query_step_is_not_top_left_causal():
    """The pitfall: with is_causal=True a single query would only see key 0."""
    torch.manual_seed(1)
    model = TransformerLM(vocab=7, d_model=16, n_heads=2, n_layers=1, max_len=16).double().eval()
    tokens = torch.randint(0, 7, (1, 9))
    with torch.no_grad():
        cache = model.init_cache(1)
        model.prefill(tokens[:, :8], cache)
        step, _ = model.step(tokens[:, 8], cache)
        first_only = model(tokens[:, [0, 8]])[:, -1]      # what a top-left mask would compute
    assert (step - first_only).abs().max() > 1e-3
    torch.testing.assert_close(step, model(tokens)[:, -1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "mingru", "mingru_loop"])
@pytest.mark.parametrize("continuous", [False, True])
def test_recurrent_step_equals_full_sequence(kind, continuous):
    torch.manual_seed(0)
    kw = dict(input_dim=2, out_dim=1) if continuous else {}
    model = RecurrentLM(kind, vocab=13, d_model=10, n_layers=2, **kw).double().eval()
    x = torch.rand(4, 15, 2, dtype=torch.float64) if continuous else torch.randint(0, 13, (4, 15))
    with torch.no_grad():
        full, final = model(x, return_state=True)
        state = model.init_state(4)
        steps = []
        for t in range(15):
            logits, state = model.step(x[:, t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, dim=1), full, rtol=0, atol=1e-10)
    for a, b in zip(state if kind == "lstm" else (state,), final if kind == "lstm" else (final,)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert RecurrentLM.state_nbytes(state) == (2 if kind == "lstm" else 1) * 2 * 4 * 10 * 8


@pytest.mark.parametrize("extra", [dict(vocab=256), dict(vocab=1, input_dim=2, out_dim=1)])
def test_full_config_budgets_match_within_10_percent(extra):
    cfg = gpu_compare.FULL
    models = matched_models(cfg["budget"], max_len=4096, multiple=cfg["multiple"],
                            rnn_layers=cfg["rnn_layers"], tf_layers=cfg["tf_layers"],
                            head_dim=cfg["head_dim"], head_multiple=cfg["head_multiple"], **extra)
    for name, m in models.items():
        assert abs(count_params(m) / cfg["budget"] - 1) <= 0.10, (name, count_params(m))
    tf = models["transformer"]
    assert (tf.d_model // tf.n_heads) % 8 == 0           # flash attention needs head_dim % 8 == 0


def test_quick_config_budgets_match_within_10_percent(quick_result):
    _, data = quick_result
    budget = data["config"]["budget"]
    for name, m in data["models"].items():
        assert abs(m["params"] / budget - 1) <= 0.10, (name, m["params"])
    for r in data["accuracy"]["runs"]:
        assert abs(r["params"] / budget - 1) <= 0.10, r


def test_heads_and_flops():
    assert heads_for(192, 64) == 3
    assert heads_for(200, 64) == 5            # head size 40: a multiple of 8, near 64
    assert heads_for(36, 64) is None
    model = TransformerLM(vocab=10, d_model=16, n_heads=2, n_layers=1, max_len=8)
    # matmul params: qkv 16*48, proj 16*16, mlp 16*64*2, head 16*10
    n = 16 * 48 + 16 * 16 + 2 * 16 * 64 + 16 * 10
    assert flops_per_token(model, 8, training=False) == 2 * n + 4 * 1 * 16 * 8
    assert flops_per_token(model, 8) == 3 * flops_per_token(model, 8, training=False)


def test_adding_batch():
    gen = torch.Generator().manual_seed(0)
    x, y = gpu_compare.adding_batch(64, 20, gen, torch.device("cpu"))
    assert x.shape == (64, 20, 2) and y.shape == (64,)
    markers = x[..., 1]
    assert torch.all(markers[:, :10].sum(1) == 1) and torch.all(markers[:, 10:].sum(1) == 1)
    torch.testing.assert_close(y, (x[..., 0] * markers).sum(1))


class _Bar:
    def update(self, n):
        pass


@pytest.mark.parametrize("gate_bias", [5.0, 0.0])
def test_adding_runs_start_the_gated_models_with_chapter_7s_gate_biases(monkeypatch, gate_bias):
    calls = []
    original = gpu_compare.set_long_memory

    def spy(rnn, b):
        original(rnn, b)
        H = rnn.hidden_size
        for layer in range(rnn.num_layers):
            bias = (getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")).detach()
            assert torch.allclose(bias[H:2 * H], torch.full((H,), b))
        calls.append((type(rnn).__name__, b))

    monkeypatch.setattr(gpu_compare, "set_long_memory", spy)
    cfg = dict(gpu_compare.QUICK, models=["rnn", "lstm", "gru", "transformer"], acc_seq_lens=[8], acc_steps=1,
               acc_seeds=[0], acc_batch=2, acc_eval=4, acc_gate_bias=gate_bias)
    result = gpu_compare.run_accuracy(cfg, torch.device("cpu"), _Bar())
    assert calls == ([("LSTM", 5.0), ("GRU", 5.0)] if gate_bias else [])
    assert result["gate_bias"] == gate_bias and len(result["runs"]) == 4


def test_percentiles():
    assert gpu_compare.quartiles([1, 2, 3, 4, 5]) == (2, 3, 4)
    assert gpu_compare.percentile(list(range(101)), 99) == pytest.approx(99)


# --------------------------------------------------------------------------------------------
# minGRU through the same harness (opt-in with --models)
# --------------------------------------------------------------------------------------------
MINGRU_MODELS = ["gru", "mingru", "mingru_loop"]


@pytest.fixture(scope="module")
def mingru_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "mingru.json"
    gpu_compare.main(["--quick", "--models", ",".join(MINGRU_MODELS), "--out", str(out),
                      "--no-progress"])
    return json.loads(out.read_text())


def test_mingru_run_matches_schema_and_has_every_part(mingru_result):
    jsonschema = pytest.importorskip("jsonschema")
    data = mingru_result
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["schema_version"] == gpu_compare.SCHEMA_VERSION
    assert data["config"]["models"] == MINGRU_MODELS
    assert list(data["models"]) == MINGRU_MODELS
    cfg = data["config"]
    thr = data["throughput"]["results"]
    assert [r["model"] for r in thr] == [m for m in MINGRU_MODELS for _ in cfg["seq_lens"]]
    assert all("error" not in r and r["tokens_per_s"] > 0 and r["core_dtype"] == "float32" for r in thr)
    acc = data["accuracy"]
    assert {s["model"] for s in acc["summary"]} == {"gru", "mingru"}   # the loop: same model, skipped
    assert {r["model"] for r in acc["skipped"]} == {"mingru_loop"}
    assert len(acc["skipped"]) == len(cfg["acc_seq_lens"]) * len(cfg["acc_seeds"])
    for r in data["accuracy"]["runs"]:
        assert abs(r["params"] / cfg["budget"] - 1) <= 0.10, r
    st = data["streaming"]["results"]
    assert data["streaming"]["kv_vs_weights"] == {}            # no Transformer in this run
    for name in MINGRU_MODELS:                                  # fixed-size state: L x d floats
        m = data["models"][name]
        assert {r["state_bytes"] for r in st if r["model"] == name} == {m["n_layers"] * m["d_model"] * 4}
    # scan and loop are one model: same width, same parameters, same FLOPs
    assert data["models"]["mingru"]["params"] == data["models"]["mingru_loop"]["params"]
    assert data["models"]["mingru"]["kind"] == "mingru"


def test_schema_requires_the_four_models_in_a_version_1_file(mingru_result):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    old = json.loads(json.dumps(mingru_result))
    del old["config"]["models"]                                  # what a version-1 file looks like
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(old, schema)
    committed = json.loads((SCHEMA.parent / "gpu_nvidia-h100-80gb-hbm3.json").read_text())
    jsonschema.validate(committed, schema)                       # still valid


def test_unknown_model_is_refused():
    with pytest.raises(SystemExit):
        gpu_compare.config_from_args(gpu_compare.parse_args(["--quick", "--models", "gru,mamba"]))
