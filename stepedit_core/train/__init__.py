"""Training recipes for the Step1 LLM of Step-Audio-EditX: supervised fine-tuning on edit triplets, a
Bradley-Terry reward model and GRPO, on TRL (the ``train`` extra: trl, peft, accelerate, datasets).

The pure part (no TRL needed) is importable on its own:

- :mod:`.data`: edit triplets, the manifest (CSV / JSONL) + audio-folder builder, and the token layout of one
  training example, which is exactly the inference prompt of the engine + the target audio tokens + ``<|EOT|>``,
  with the loss on the assistant's tokens only;
- :mod:`.pairs`: large-margin pair mining over engine candidates scored by a pluggable judge.

The trainers import TRL / PEFT lazily: :mod:`.sft` (``SFTTrainer``, full or LoRA), :mod:`.reward`
(``RewardTrainer`` on a Step1 sequence-scoring head), :mod:`.grpo` (``GRPOTrainer`` with the reward model and
rule rewards, KL to the SFT model), :mod:`.rules` (rule rewards and the pair-miner judge from decoded audio:
WER / CER, speaker similarity, duration), :mod:`.export` (an HF tokenizer for the trainers, and saving a tuned
LLM as a checkpoint folder ``load_engine("stepaudio", model_path=...)`` loads). ``configs/`` holds the
accelerate / DeepSpeed ZeRO configurations; ``python -m stepedit_core.train --help`` is the command line
(:mod:`.cli`).
"""
