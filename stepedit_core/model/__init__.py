"""Stage 2, the model: the Step1 audio LLM and everything that feeds it or samples from it.

- ``llm``: Step1 (sqrt-ALiBi attention, grouped KV heads, preallocated KV cache), registered with the
  transformers Auto classes as model_type ``step1`` (``import stepedit_core`` imports it);
- ``loading``: the official checkpoint folder (config.json + safetensors) -> Step1, strict key/shape checks,
  optional bitsandbytes int8 / nf4;
- ``generate``: sampling with the official semantics, seeded, with whole 2+3 groups for streaming;
- ``text_tokenizer``: the SentencePiece text tokenizer of Step1;
- ``prompts``: system prompts, instructions and the prompt-id layout (the prompt builder).
"""
