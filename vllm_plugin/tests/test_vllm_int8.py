"""vLLM int8 on CPU: ``python -m stepedit_vllm.quantize`` turns the tiny Step1 into a compressed-tensors W8A8
folder; vLLM loads it with int8 oneDNN linears (the plugin's sqrt-ALiBi attention and an fp32 KV cache
unchanged) and follows this project's fp32 Step1 within int8's error."""
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import vllm_llm

NEW_TOKENS = 24
TOP_LOGPROBS = 5
# Per step, |log p_int8 - log p_fp32| over the top-5 ids vLLM returns, teacher-forced (the fp32 reference reads
# the int8 run's own ids). Error budget: symmetric int8 rounds each weight and each activation to within half a
# step of (row max / 127), ~0.4 % per operand, and the rounding errors of a 128- or 256-wide dot product add up
# like a random walk to ~1 % of a GEMM output; through 2 layers (7 int8 GEMMs each) into the fp32 lm_head, logits
# of std ~1 move by a few hundredths. Measured on this checkpoint: mean 0.025, max 0.042, greedy agreement 71/72.
# The bounds are 2x (mean) and 3.5x (max) that; fp32 vLLM matches the same Step1 within 5e-6 (test_vllm_step1).
MEAN_LOGPROB_DRIFT = 0.05
MAX_LOGPROB_DRIFT = 0.15
INT8_MIN_DRIFT = 1e-3           # far above fp32's 5e-6: the int8 kernels really ran
MIN_GREEDY_AGREEMENT = 0.9      # teacher-forced steps whose int8 greedy id is also the fp32 argmax


@pytest.fixture(scope="module")
def int8_dir(tiny_llm_dir, tmp_path_factory):
    from stepedit_vllm.quantize import convert
    return convert(tiny_llm_dir, tmp_path_factory.mktemp("tiny_int8") / "Step-Audio-EditX")


@pytest.fixture(scope="module")
def int8_llm(int8_dir):
    return vllm_llm(int8_dir, max_model_len=1024, enable_prefix_caching=False)


def test_the_folder_is_compressed_tensors_w8a8(int8_dir, tiny_llm_dir):
    config = json.loads((int8_dir / "config.json").read_text())["quantization_config"]
    group = config["config_groups"]["group_0"]
    assert (config["quant_method"], config["format"], config["ignore"]) == ("compressed-tensors", "int-quantized",
                                                                            ["lm_head"])
    assert (group["weights"]["strategy"], group["weights"]["dynamic"], group["weights"]["symmetric"]) == \
        ("channel", False, True)
    assert (group["input_activations"]["strategy"], group["input_activations"]["dynamic"]) == ("token", True)
    source, out = load_file(str(tiny_llm_dir / "model-00001.safetensors")), load_file(
        str(int8_dir / "model-00001.safetensors"))
    name = "model.layers.1.mlp.down_proj.weight"
    q, scale = out[name], out[name + "_scale"]
    assert q.dtype == torch.int8 and scale.shape == (q.shape[0], 1) and int(q.abs().max()) == 127
    assert float((q.float() * scale - source[name].float()).abs().max()) <= float(scale.max()) / 2 + 1e-6
    assert out["lm_head.weight"].dtype == source["lm_head.weight"].dtype            # ignored: not quantized
    assert "model.embed_tokens.weight_scale" not in out


def test_vllm_loads_int8_linears_with_the_plugins_attention(int8_llm, int8_dir):
    """Every decoder linear runs vLLM's W8A8 int8 scheme (oneDNN on CPU), with the folder's scales fused as vLLM
    fuses q/k/v; lm_head and the KV cache stay fp32, attention is the plugin's sqrt-ALiBi."""
    def inspect(model):
        attn = model.model.layers[0].self_attn
        linears = [attn.qkv_proj, attn.o_proj, model.model.layers[0].mlp.gate_up_proj,
                   model.model.layers[0].mlp.down_proj]
        return ({type(lin.scheme).__name__ for lin in linears}, attn.qkv_proj.weight_scale.detach().clone(),
                model.lm_head.weight.dtype, attn.attn.kv_cache.dtype, type(attn.attn.impl).__name__,
                attn.attn.impl.use_alibi_sqrt)
    schemes, qkv_scale, head_dtype, kv_dtype, impl, sqrt = int8_llm.apply_model(inspect)[0]
    assert schemes == {"CompressedTensorsW8A8Int8"}
    out = load_file(str(int8_dir / "model-00001.safetensors"))
    p = "model.layers.0.self_attn."
    expected = torch.cat([out[p + f"{n}_proj.weight_scale"] for n in "qkv"])
    assert torch.equal(qkv_scale.view(-1), expected.view(-1))
    assert (head_dtype, kv_dtype, sqrt) == (torch.float32, torch.float32, True)
    assert impl == ("TritonAttentionImpl" if torch.cuda.is_available() else "SqrtAlibiCPUImpl")


def _prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(5)
    text = lambda n: torch.randint(5, 60000, (n,), generator=g).tolist()                 # noqa: E731
    audio = lambda n: (65536 + torch.randint(0, 5120, (n,), generator=g)).tolist()       # noqa: E731
    return [[1, 4] + text(15) + audio(20), [1, 4] + text(40) + audio(78), [1, 4] + text(98) + audio(200)]


def drift(int8_llm, tiny_root) -> tuple[list[float], list[bool]]:
    """Per generated step: max |logprob difference| over the returned top ids, and whether the int8 greedy id is
    the fp32 argmax (the fp32 reference is this project's Step1 over prompt + the int8 run's ids)."""
    from vllm import SamplingParams
    from stepedit_core.model.loading import load_step1
    from tests.tiny_checkpoint import EDITX
    model = load_step1(tiny_root / EDITX, device=torch.device("cpu"), dtype=torch.float32).eval()
    params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, logprobs=TOP_LOGPROBS, ignore_eos=True,
                            extra_args={"step1_repetition_guard": 0})
    prompts = _prompts()
    outs = int8_llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    errors, agree = [], []
    for prompt, out in zip(prompts, outs):
        ids = list(out.outputs[0].token_ids)
        with torch.no_grad():
            logits = model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1:-1].double()
        ref = torch.log_softmax(logits, -1)                                     # row i predicts ids[i]
        for i, entries in enumerate(out.outputs[0].logprobs):
            errors.append(max(abs(lp.logprob - ref[i, t].item()) for t, lp in entries.items()))
            agree.append(int(ref[i].argmax()) == ids[i])
    return errors, agree


def test_int8_follows_the_fp32_step1(int8_llm, tiny_root):
    """Greedy decoding of 3 prompts (37 / 120 / 300 tokens, batched): int8 log-probabilities within the stated
    drift of fp32, and the int8 greedy id is the fp32 argmax at most steps (ties of random weights may flip)."""
    errors, agree = drift(int8_llm, tiny_root)
    assert len(errors) == 3 * NEW_TOKENS
    assert sum(errors) / len(errors) <= MEAN_LOGPROB_DRIFT and max(errors) <= MAX_LOGPROB_DRIFT
    assert sum(agree) / len(agree) >= MIN_GREEDY_AGREEMENT
    assert sum(errors) / len(errors) >= INT8_MIN_DRIFT
