"""vLLM 0.32.0 (CPU) with stepedit-vllm-plugin runs the Step1 LLM as the official code and this project do:
parity with the official fixture, the project's Step1 on batched prompts, prefix caching, the untied lm_head,
the official sampling processors, and the version guard."""
import pytest
import torch
from safetensors.torch import load_file

from conftest import FIXTURE, vllm_llm

PARITY_TOL = 1e-4         # log-probabilities (logits up to their per-row constant) vs the fixture's fp32 logits
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def fixture_llm(fixture_model):
    return vllm_llm(fixture_model, max_model_len=512, enable_prefix_caching=False)


@pytest.fixture(scope="module")
def tiny_llm(tiny_llm_dir):
    return vllm_llm(tiny_llm_dir, max_model_len=1024, enable_prefix_caching=True)


@pytest.fixture(scope="module")
def cold_tiny_llm(tiny_llm_dir):
    """The same model without prefix caching. Kept for the module: an in-process vLLM engine that is torn down
    takes vLLM's global parallel state with it, and the other engines of this process would stop working."""
    return vllm_llm(tiny_llm_dir, max_model_len=1024, enable_prefix_caching=False)


def _greedy(**extra):
    from vllm import SamplingParams
    return SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, ignore_eos=True,
                          extra_args={"step1_repetition_guard": 0, **extra})


def _max_logprob_error(logprobs, reference: torch.Tensor) -> float:
    worst = 0.0
    for row, entries in enumerate(logprobs):
        for token, lp in entries.items():
            worst = max(worst, abs(lp.logprob - reference[row, token].item()))
    return worst


def test_official_fixture_parity(fixture_llm):
    from vllm import SamplingParams
    io = load_file(str(FIXTURE / "io.safetensors"))
    prompt = io["input_ids"][0].tolist()
    params = SamplingParams(temperature=0.0, max_tokens=8, logprobs=20, prompt_logprobs=20,
                            extra_args={"step1_repetition_guard": 0})
    out = fixture_llm.generate({"prompt_token_ids": prompt}, params, use_tqdm=False)[0]
    assert list(out.outputs[0].token_ids) == io["greedy_ids"][0].tolist()
    steps = torch.log_softmax(io["greedy_step_logits"].double(), -1)
    assert _max_logprob_error(out.outputs[0].logprobs, steps) <= PARITY_TOL
    full = torch.log_softmax(io["logits_full"][0].double(), -1)          # row i predicts token i + 1
    assert _max_logprob_error(out.prompt_logprobs[1:], full[:-1]) <= PARITY_TOL


def test_lm_head_is_not_tied(fixture_llm, fixture_model):
    """Without the plugin's override vLLM ties lm_head to the embedding: this and the parity test fail."""
    weights = load_file(str(fixture_model / "model.safetensors"))

    def lm_head_error(model):
        head = model.lm_head.weight.detach().cpu()
        return (head.data_ptr() == model.model.embed_tokens.weight.data_ptr(),
                float((head - weights["lm_head.weight"]).abs().max()),
                model.config.tie_word_embeddings)

    tied, error, flag = fixture_llm.apply_model(lm_head_error)[0]
    assert not tied and error == 0.0 and flag is False
    from stepedit_vllm.config import Step1VllmConfig
    assert Step1VllmConfig(tie_word_embeddings=True).tie_word_embeddings is False


def test_attention_backend_has_sqrt_alibi(fixture_llm):
    """CPU: CPU_ATTN with the plugin's sqrt-ALiBi path; CUDA: TRITON_ATTN (the plugin's choice)."""
    def backend(model):
        impl = model.model.layers[0].self_attn.attn.impl
        return type(impl).__name__, impl.use_alibi_sqrt
    name, sqrt = fixture_llm.apply_model(backend)[0]
    assert sqrt is True
    assert name == ("TritonAttentionImpl" if torch.cuda.is_available() else "SqrtAlibiCPUImpl")


def _prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(3)
    text = lambda n: torch.randint(5, 60000, (n,), generator=g).tolist()                 # noqa: E731
    audio = lambda n: (65536 + torch.randint(0, 5120, (n,), generator=g)).tolist()       # noqa: E731
    return [[1, 4] + text(15) + audio(20), [1, 4] + text(40) + audio(78), [1, 4] + text(98) + audio(200)]


def _ours(tiny_root, prompts, guard: bool):
    from stepedit_core.model.generate import SamplingOptions, generate
    from stepedit_core.model.loading import load_step1
    from tests.tiny_checkpoint import EDITX
    model = load_step1(tiny_root / EDITX, device=torch.device("cpu"), dtype=torch.float32)
    opts = SamplingOptions(do_sample=False, repetition_guard=guard, max_new_tokens=NEW_TOKENS, eot_id=-1)
    return [list(generate(model, p, opts).ids) for p in prompts]


@pytest.mark.parametrize("guard", [False, True])
def test_batched_prompts_match_the_projects_step1(tiny_llm, tiny_root, guard):
    """Prompts of 37 / 120 / 300 tokens in one batch; greedy ids identical in fp32 (with the official
    repetition guard as a vLLM logits processor, and without)."""
    prompts = _prompts()
    outs = tiny_llm.generate([{"prompt_token_ids": p} for p in prompts],
                             _greedy(step1_repetition_guard=int(guard)), use_tqdm=False)
    assert [len(p) for p in prompts] == [37, 120, 300]
    assert [list(o.outputs[0].token_ids) for o in outs] == _ours(tiny_root, prompts, guard)


def test_prefix_caching_changes_nothing(tiny_llm, cold_tiny_llm):
    """A shared voice prefix: the second request reads it from the cache; ids and log-probabilities equal a
    server without prefix caching."""
    from vllm import SamplingParams
    base = _prompts()[2]
    lines = [base + [70000 + i, 70001 + i] for i in range(2)]
    params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, logprobs=5, ignore_eos=True)
    warm = [tiny_llm.generate({"prompt_token_ids": p}, params, use_tqdm=False)[0] for p in lines]
    assert warm[1].num_cached_tokens >= len(base) // 2          # whole KV blocks of the shared prefix
    cold = [cold_tiny_llm.generate({"prompt_token_ids": p}, params, use_tqdm=False)[0] for p in lines]
    for w, c in zip(warm, cold):
        assert list(w.outputs[0].token_ids) == list(c.outputs[0].token_ids)
        wl = [{t: x.logprob for t, x in row.items()} for row in w.outputs[0].logprobs]
        cl = [{t: x.logprob for t, x in row.items()} for row in c.outputs[0].logprobs]
        assert all(abs(wl[i][t] - cl[i][t]) <= 1e-5 for i in range(len(wl)) for t in wl[i])


def test_audio_group_constraint_and_sampling(tiny_llm):
    """With ``step1_audio_groups`` every id is an audio id of its 2+3 slot (or EOT at a boundary); official
    temperature / top-k draws are reproducible per seed."""
    from vllm import SamplingParams
    from stepedit_vllm.sampling import OFFICIAL_SAMPLING, slot_range
    params = SamplingParams(**OFFICIAL_SAMPLING, max_tokens=25, seed=11, stop_token_ids=[3],
                            extra_args={"step1_audio_groups": 1})
    a, b = (tiny_llm.generate({"prompt_token_ids": _prompts()[0]}, params, use_tqdm=False)[0].outputs[0].token_ids
            for _ in range(2))
    assert list(a) == list(b) and len(a) > 0
    for position, token in enumerate(a):
        lo, hi = slot_range(position)
        assert lo <= token < hi or (token == 3 and position % 5 == 0)


def test_sampling_constants_match_the_project():
    from stepedit_core import tokens
    from stepedit_core.model import generate
    from stepedit_vllm import sampling
    assert (sampling.EOT_ID, sampling.AUDIO_TOKEN_OFFSET, sampling.VQ02_SIZE, sampling.PROMPT_TOKEN_SPACE,
            sampling.GROUP_SIZE, sampling.VQ02_PER_GROUP) == (tokens.EOT_ID, tokens.AUDIO_TOKEN_OFFSET,
                                                              tokens.VQ02_SIZE, tokens.PROMPT_TOKEN_SPACE,
                                                              tokens.GROUP_SIZE, tokens.VQ02_PER_GROUP)
    assert sampling.OFFICIAL_SAMPLING == {"temperature": generate.TEMPERATURE, "top_k": generate.TOP_K,
                                          "top_p": generate.TOP_P}
    assert (sampling.REPETITION_WINDOW, sampling.REPETITION_THRESHOLD) == (generate.REPETITION_WINDOW,
                                                                          generate.REPETITION_THRESHOLD)
    for history in ([5] * 12, [1, 2, 3, 4, 5, 6, 7, 8, 9, 5], [1, 2, 3], list(range(20)) + [19]):
        for split in range(len(history)):
            assert sampling.banned_id(history[:split], history[split:]) == generate.repetition_banned_id(history)


def test_other_vllm_versions_are_refused(monkeypatch):
    from stepedit_vllm import internals
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.31.0")
    with pytest.raises(RuntimeError, match=r"supports vLLM 0\.32\.0 only; found 0\.31\.0"):
        internals.register()
