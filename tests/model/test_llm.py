"""Step1 LLM: parity with the official modeling code (fixtures/step1_llm), loading, registration."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import stepedit_core.model.llm as llm
from stepedit_core.errors import CheckpointError, InvalidInputError, ModelUnavailableError
from stepedit_core.model.llm import Step1Config, Step1ForCausalLM, alibi_bias, alibi_slopes
from stepedit_core.model.loading import check_state_dict_layout, load_step1, manifest_layout

ATOL = 1e-4          # fixture README: LLM logits atol 1e-4 (fp32)
MANIFEST = Path(__file__).parents[1] / "fixtures" / "manifests" / "step1_llm_3b.json"


@pytest.fixture(scope="module")
def llm_dir(fixtures_root) -> Path:
    return fixtures_root / "step1_llm"


@pytest.fixture(scope="module")
def io(llm_dir):
    return load_file(str(llm_dir / "io.safetensors"))


@pytest.fixture(scope="module")
def official_folder(llm_dir, tmp_path_factory) -> Path:
    """An official-format folder: config.json (architectures + auto_map) and model.safetensors."""
    d = tmp_path_factory.mktemp("step1")
    shutil.copy(llm_dir / "config.json", d / "config.json")
    shutil.copy(llm_dir / "weights.safetensors", d / "model.safetensors")
    return d


@pytest.fixture(scope="module")
def model(official_folder):
    return load_step1(official_folder, dtype=torch.float32)


def test_config_reads_official_keys(llm_dir):
    raw = json.loads((llm_dir / "config.json").read_text())
    cfg = Step1Config(**raw)
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_attention_groups, cfg.head_dim) == (256, 4, 2, 64)
    assert (cfg.max_seq_len, cfg.vocab_size, cfg.eos_token_id, cfg.tie_word_embeddings) == (512, 1024, 3, False)
    assert "auto_map" not in cfg.to_dict()          # never points at remote code once parsed


@torch.no_grad()
def test_full_sequence_logits_and_hidden_states(model, io):
    out = model(io["input_ids"], output_hidden_states=True)
    torch.testing.assert_close(out.logits, io["logits_full"], atol=ATOL, rtol=0)
    assert len(out.hidden_states) == 3
    for i in range(3):
        torch.testing.assert_close(out.hidden_states[i], io[f"hidden_states.{i}"], atol=ATOL, rtol=0)
    out42 = model(torch.cat([io["input_ids"], io["extra_ids"]], 1))
    torch.testing.assert_close(out42.logits, io["logits_full_42"], atol=ATOL, rtol=0)


@torch.no_grad()
def test_kv_cache_steps_and_cache_content(model, io):
    cache = model.new_cache(64)
    prefill = model.step(io["input_ids"], cache, logits_to_keep=0)
    torch.testing.assert_close(prefill, io["prefill_logits"], atol=ATOL, rtol=0)
    for i in range(io["extra_ids"].shape[1]):
        logits = model.step(io["extra_ids"][:, i:i + 1], cache)
        torch.testing.assert_close(logits[0, -1], io["step_logits"][i], atol=ATOL, rtol=0)
    assert cache.length == 42
    for layer in range(2):
        k, v = cache.official_layout(layer)      # (1, 42, groups*64), before the head split
        torch.testing.assert_close(k, io[f"kv_cache.layer{layer}.k"], atol=ATOL, rtol=0)
        torch.testing.assert_close(v, io[f"kv_cache.layer{layer}.v"], atol=ATOL, rtol=0)


@torch.no_grad()
def test_greedy_continuation_exact(model, io):
    cache = model.new_cache(64)
    logits = model.step(io["input_ids"], cache)[0, -1]
    ids = []
    for i in range(io["greedy_ids"].shape[1]):
        torch.testing.assert_close(logits, io["greedy_step_logits"][i], atol=ATOL, rtol=0)
        ids.append(int(logits.argmax()))
        logits = model.step(torch.tensor([[ids[-1]]]), cache)[0, -1]
    assert ids == io["greedy_ids"][0].tolist()


@torch.no_grad()
def test_query_chunking_matches_one_block(model, io, monkeypatch):
    """Long prompts run attention in query chunks with per-chunk bias rows; the result must not change."""
    ids = torch.cat([io["input_ids"], io["extra_ids"]], 1)
    monkeypatch.setattr(llm, "BIAS_BLOCK_ELEMENTS", 4 * 7 * 42)      # 7-row chunks over 42 keys
    torch.testing.assert_close(model(ids).logits, io["logits_full_42"], atol=ATOL, rtol=0)
    cache = model.new_cache(64)
    model.step(io["input_ids"][:, :20], cache)
    rest = model.step(torch.cat([io["input_ids"][:, 20:], io["extra_ids"]], 1), cache, logits_to_keep=0)
    torch.testing.assert_close(rest, io["logits_full_42"][:, 20:], atol=ATOL, rtol=0)


@pytest.mark.parametrize("heads", [4, 6, 48])
def test_alibi_slopes_and_bias(io, heads):
    slopes = alibi_slopes(heads)
    torch.testing.assert_close(slopes, io[f"alibi.slopes_h{heads}"], atol=1e-7, rtol=1e-6)
    bias = alibi_bias(slopes, 0, 8, 8)[None]
    ref = io[f"alibi.bias_L8_h{heads}"]
    assert torch.equal(torch.isinf(bias), torch.isinf(ref))
    finite = ~torch.isinf(ref)
    torch.testing.assert_close(bias[finite], ref[finite], atol=1e-6, rtol=0)
    # Rows of new queries only: the last 3 rows of the square, as the official slice [-q_len:].
    torch.testing.assert_close(alibi_bias(slopes, 5, 3, 8)[None], bias[:, :, 5:])


def test_alibi_bias_bf16_matches_official_rounding(io):
    bias = alibi_bias(alibi_slopes(48), 0, 8, 8)[None].to(torch.bfloat16).float()
    ref = io["alibi.bias_L8_h48_bf16_as_f32"]
    finite = ~torch.isinf(ref)
    assert torch.equal(bias[finite], ref[finite])


@torch.no_grad()
def test_bf16_runs_with_both_bias_modes(official_folder, io):
    model = load_step1(official_folder, dtype=torch.bfloat16)
    assert model.lm_head.weight.dtype == torch.bfloat16
    for official in (False, True):
        model.official_bias = official
        logits = model(io["input_ids"]).logits
        assert logits.dtype == torch.bfloat16
        # bf16 weights and activations: only a coarse agreement with the fp32 reference is expected.
        assert (logits.float() - io["logits_full"]).abs().max() < 0.25
        assert (logits.float().argmax(-1) == io["logits_full"].argmax(-1)).float().mean() > 0.9


def test_registration_loads_official_folder_without_remote_code(official_folder, io, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM
    folder = tmp_path / "with_code"
    shutil.copytree(official_folder, folder)
    # A remote-code file that must never run: auto_map points at it.
    (folder / "modeling_step1.py").write_text("raise RuntimeError('remote code executed')\n")
    (folder / "configuration_step1.py").write_text("raise RuntimeError('remote code executed')\n")
    llm.register()                                               # idempotent
    assert isinstance(AutoConfig.from_pretrained(folder), Step1Config)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model) is Step1ForCausalLM
    with torch.no_grad():
        torch.testing.assert_close(model(io["input_ids"]).logits, io["logits_full"], atol=ATOL, rtol=0)


def test_save_pretrained_round_trip_sharded(tmp_path):
    from transformers import AutoModelForCausalLM
    cfg = Step1Config(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_attention_groups=2,
                      num_hidden_layers=2, vocab_size=300, max_seq_len=128)
    torch.manual_seed(0)
    model = Step1ForCausalLM(cfg).eval()
    model.save_pretrained(tmp_path, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    # Rewrite config.json in the official style (auto_map to remote code, torch_dtype).
    raw = json.loads((tmp_path / "config.json").read_text())
    raw["auto_map"] = {"AutoConfig": "configuration_step1.Step1Config",
                       "AutoModelForCausalLM": "modeling_step1.Step1ForCausalLM"}
    raw["torch_dtype"] = raw.pop("dtype", "float32")
    (tmp_path / "config.json").write_text(json.dumps(raw))
    ids = torch.randint(0, 300, (1, 17))
    with torch.no_grad():
        ref = model(ids).logits
        for loaded in (AutoModelForCausalLM.from_pretrained(tmp_path), load_step1(tmp_path)):
            assert not torch.equal(loaded.lm_head.weight, loaded.model.embed_tokens.weight[:300])
            torch.testing.assert_close(loaded(ids).logits, ref, atol=1e-5, rtol=0)


def test_real_config_matches_manifest():
    cfg = Step1Config()          # the EditX 3B defaults
    with torch.device("meta"):
        model = Step1ForCausalLM(cfg)
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = manifest_layout(MANIFEST)
    assert len(expected) == 291
    assert layout == expected
    check_state_dict_layout(layout, expected, "3B")          # no raise


def test_strict_loading_lists_every_problem(official_folder, tmp_path):
    shutil.copy(official_folder / "config.json", tmp_path / "config.json")
    w = load_file(str(official_folder / "model.safetensors"))
    del w["lm_head.weight"]
    w["model.extra.weight"] = torch.zeros(2)
    w["model.norm.weight"] = torch.zeros(3)
    save_file(w, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_step1(tmp_path)
    assert err.value.missing == ["lm_head.weight"]
    assert err.value.unexpected == ["model.extra.weight"]
    assert len(err.value.mismatched) == 1 and err.value.mismatched[0].startswith("model.norm.weight")
    with pytest.raises(CheckpointError):
        load_step1(official_folder, manifest=MANIFEST)     # tiny config against the 3B manifest


def test_missing_shard_and_folder_errors(official_folder, tmp_path):
    with pytest.raises(CheckpointError):
        load_step1(tmp_path)                                   # no config.json
    shutil.copy(official_folder / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(CheckpointError) as err:
        load_step1(tmp_path)
    assert err.value.missing == ["model-00002-of-00002.safetensors"]


def test_cache_overflow_is_refused(model, io):
    cache = model.new_cache(40)
    with torch.no_grad():
        model.step(io["input_ids"], cache)
        with pytest.raises(InvalidInputError):
            model.step(io["extra_ids"], cache)


def test_quantization_guard(official_folder):
    """nf4 (bitsandbytes) needs CUDA; on CPU a clear error before any loading (int8: test_quantization.py)."""
    with pytest.raises(ModelUnavailableError):
        load_step1(official_folder, device="cpu", quantization="nf4")
    with pytest.raises(InvalidInputError):
        load_step1(official_folder, quantization="int3")


def _cache_of(out):
    """The cache an output carries, under the field name of the installed transformers."""
    return getattr(out, llm.CACHE_FIELD)


@torch.no_grad()
@pytest.mark.parametrize("keyword", ["past_key_values", "cache"])
def test_use_cache_returns_a_cache_the_next_call_continues(model, io, keyword):
    """transformers' causal-LM contract: ``use_cache=True`` without a cache creates one and returns it; the cache
    comes back under either keyword (<= 5.23 ``past_key_values``, 5.24+ ``cache``) and the next call continues."""
    out = model(io["input_ids"], use_cache=True)
    torch.testing.assert_close(out.logits, io["prefill_logits"], atol=ATOL, rtol=0)
    cache = _cache_of(out)
    assert cache is not None and cache.get_seq_length() == 37
    for i in range(io["extra_ids"].shape[1]):
        out = model(io["extra_ids"][:, i:i + 1], **{keyword: cache})
        torch.testing.assert_close(out.logits[0, -1], io["step_logits"][i], atol=ATOL, rtol=0)
        assert _cache_of(out) is cache
    assert cache.get_seq_length() == 42
    for layer in range(2):              # the DynamicCache holds (B, G, S, D) per layer, as the official layout
        k = cache.layers[layer].keys
        torch.testing.assert_close(k.transpose(1, 2).reshape(1, 42, -1), io[f"kv_cache.layer{layer}.k"],
                                   atol=ATOL, rtol=0)


@torch.no_grad()
def test_use_cache_false_returns_none_and_both_keywords_are_refused(model, io):
    out = model(io["input_ids"], use_cache=False)
    assert _cache_of(out) is None
    torch.testing.assert_close(out.logits, io["logits_full"], atol=ATOL, rtol=0)
    assert _cache_of(model(io["input_ids"])) is not None          # config.use_cache defaults to True
    logits, cache = model(io["input_ids"], return_dict=False)
    torch.testing.assert_close(logits, io["logits_full"], atol=ATOL, rtol=0)
    with pytest.raises(InvalidInputError, match="not both"):
        model(io["extra_ids"], past_key_values=cache, cache=model(io["input_ids"]).logits)


def test_transformers_generate_greedy_matches_fixture(official_folder, io):
    """HF ``generate`` hands its own DynamicCache to forward (under the installed version's keyword)."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(official_folder)
    with torch.no_grad():
        out = model.generate(io["input_ids"], max_new_tokens=8, do_sample=False)
    assert out[0, 37:].tolist() == io["greedy_ids"][0].tolist()


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_transformers_generate_sampled_matches_own_sampler(model, io, seed):
    """Seeded sampling through HF ``generate`` (official processors) draws exactly the ids of our own loop."""
    from stepedit_core.model.generate import SamplingOptions, generate, transformers_generate_kwargs
    # temperature 2 flattens the random tiny model's logits, so the draws really depend on the seed
    options = SamplingOptions(seed=seed, max_new_tokens=24, temperature=2.0, top_k=50)
    own = generate(model, io["input_ids"], options).ids
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(io["input_ids"], **transformers_generate_kwargs(options))
    assert out[0, 37:].tolist() == list(own)
    assert len(own) == 24 and len(set(own)) > 12


def test_transformers_generate_kwargs_refuses_the_constrained_mask():
    from stepedit_core.model.generate import SamplingOptions, transformers_generate_kwargs
    with pytest.raises(InvalidInputError, match="constrained"):
        transformers_generate_kwargs(SamplingOptions(constrained=True))


def test_importing_the_package_registers_step1():
    import subprocess
    import sys
    code = ("import stepedit_core\nfrom transformers import AutoConfig, AutoModelForCausalLM\n"
            "cfg = AutoConfig.for_model('step1', hidden_size=64, intermediate_size=128, num_attention_heads=4,"
            " num_attention_groups=2, num_hidden_layers=1, vocab_size=32)\n"
            "print(type(AutoModelForCausalLM.from_config(cfg)).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], check=True)
    assert out.stdout.strip() == "Step1ForCausalLM"
