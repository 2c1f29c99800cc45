"""Stage 1, the audio tokenizer: prompt audio -> the dual-codebook token stream the Step1 LLM reads.

- ``vq02``: the linguistic tokenizer (Paraformer encoder + 1024 k-means centroids, 16.67 codes/s);
- ``vq06``: the semantic tokenizer (S3 tokenizer v1 ONNX, 25 codes/s, 4096 codes);
- ``audio_tokenizer``: :class:`StepAudioTokenizer`, both codebooks from one clip, interleaved 2:3 into
  41.67 tokens/s, and the readers of the ``Step-Audio-Tokenizer`` folder.

Nothing is imported here, so ``import stepedit_core`` stays cheap; import the modules themselves.
"""
