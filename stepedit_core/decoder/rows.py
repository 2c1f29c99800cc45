"""token2wav for the rows of one batch (the candidates / tries of one request): the flow's Euler solver runs once
for all rows; each row's audio is the audio it gets decoded alone.

The candidates of a batch share the prompt (tokens, mel, x-vector) and differ in their generated tokens, which
stop at different steps, so their mels have different lengths. Per row, as ``CosyVoiceDecoder.token2wav``:

1. the token encoder (a conformer with relative positions over the whole utterance, ~3 % of the flow's work)
   runs alone on the row's prompt + generated tokens: mu, cond (prompt mel), z (the row's ``flow_seed``);
2. the rows are padded with zeros to the longest and the solver integrates all of them at once (10 Euler steps,
   classifier-free guidance: 2 x rows through the DiT per step). Padding is harmless by construction: the DiT's
   convolutions are causal (frames after a row's end never reach it), its norms and linears work per frame,
   and attention runs per length (``flow.rows_attention``: the rows of one length attend among their own
   frames, unmasked). The adaLN modulation is computed once per timestep and repeated over the rows
   (``flow.per_row``), since a 2-row and an 8-row matrix product differ in the last bits;
3. each row's mel is trimmed to its own frames and HiFT runs per row with its ``hift_seed`` (its convolutions
   see both sides, so padding would change a row's last samples).

Where it pays: on a GPU (one kernel sequence for all rows). On the 2-core CPU a batch of 4 through the solver
took longer than the 4 rows one by one (compute-bound linears, activations out of the caches:
bench/RESULTS_decoder_batch.md), so the engine uses it on cuda / mps only (batching.BATCHED_DECODER_DEVICES).

Numerics: in fp32 every row is bit-identical to the row decoded alone (the linears' results do not depend on
the number of rows; tests/decoder/test_rows.py, tests/test_engine_batch.py). With the int8 DiT
(``quantize_estimator_int8``) each activation is quantized with one scale per call, which sees every row of
the batch, so a row's mel moves by about as much as int8 moves it from fp32; the same rows decoded as the
same batch (``metadata["batch_seeds"]``) reproduce it bit for bit, like the LLM's batched int8 rows.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F



def solver_rows(flow, rows: Sequence[tuple], n_timesteps: int) -> list[torch.Tensor]:
    """``rows`` = [(z, mu, spk, cond, n_prompt)] of ``flow.solver_inputs`` -> each row's generated mel
    (1, 80, frames - n_prompt), all rows through one run of the solver."""
    if len(rows) == 1:
        z, mu, spk, cond, n_prompt = rows[0]
        return [flow.decoder(z, mu, None, spk, cond, n_timesteps)[:, :, n_prompt:]]
    frames = [r[1].shape[2] for r in rows]
    longest = max(frames)

    def stack(k: int) -> torch.Tensor:       # (rows, 80, longest), zeros after each row's frames
        return torch.cat([F.pad(r[k], (0, longest - r[k].shape[2])) for r in rows])
    mask = (torch.arange(longest, device=rows[0][1].device)[None] < torch.tensor(frames)[:, None])
    mask = mask.unsqueeze(1).to(rows[0][1].dtype)                              # (rows, 1, longest), 1 = valid
    mel = flow.decoder(stack(0), stack(1), mask, torch.cat([r[2] for r in rows]), stack(3), n_timesteps)
    return [mel[i:i + 1, :, r[4]:n] for i, (r, n) in enumerate(zip(rows, frames))]


@torch.inference_mode()
def token2wav_rows(decoder, tokens: Sequence, prompt_token, prompt_feat: torch.Tensor, embedding: torch.Tensor, *,
                   flow_seeds: Sequence[int], hift_seeds: Sequence[int | None], n_timesteps: int | None = None
                   ) -> list[torch.Tensor]:
    """``decoder.token2wav`` for several generated token streams sharing one prompt: ``tokens`` [(1, N_i)
    or (N_i,)] mixed prompt-space ids, ``flow_seeds`` / ``hift_seeds`` one per row. Returns [(1, 480·2T_i)]
    float32 on the CPU, row i equal to ``token2wav(tokens[i], ..., flow_seed=flow_seeds[i],
    hift_seed=hift_seeds[i])`` (see the module docstring on bits)."""
    if not (len(tokens) == len(flow_seeds) == len(hift_seeds)) or not tokens:
        raise ValueError("token2wav_rows needs one flow seed and one HiFT seed per row, and at least one row")
    inputs = []
    for tok, seed in zip(tokens, flow_seeds):
        token, prompt, feat, emb = decoder.prepare(tok, prompt_token, prompt_feat, embedding)
        inputs.append(decoder.flow.solver_inputs(token, prompt, feat, emb, seed=seed))
    mels = solver_rows(decoder.flow, inputs, n_timesteps or decoder.n_timesteps)
    out = []
    for mel, seed in zip(mels, hift_seeds):
        gen = torch.Generator(device=decoder.device)
        gen.seed() if seed is None else gen.manual_seed(seed)
        wav, _ = decoder.hift.inference(mel, generator=gen)
        out.append(wav.float().cpu())
    return out
