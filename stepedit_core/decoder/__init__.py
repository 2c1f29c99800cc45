"""Stage 3, the decoder (token2wav, CosyVoice-300M-25Hz): audio tokens + prompt -> 24 kHz speech.

Prompt side: ``features`` (prompt mel at 24 kHz, CAM++ fbank) and ``speaker`` (CAM++ x-vector, 192-d).
Tokens -> mel: ``flow_encoder`` (dual-codebook embedding + upsampling Conformer, 25 -> 50 Hz) and ``flow``
(flow matching: DiT estimator, CFG Euler solver). Mel -> waveform: ``hift`` (HiFT vocoder, NSF + iSTFT) with
``hift_stream`` (its chunked form), or ``bigvgan`` (BigVGAN, when cosyvoice.yaml asks for it).
Token2wav: ``cosyvoice`` (the folder, non-streaming ``CosyVoiceDecoder``) and ``streaming``
(``Token2WavStream``, chunk by chunk while the LLM samples).

Nothing is imported here, so ``import stepedit_core`` stays cheap; import the modules themselves.
"""
