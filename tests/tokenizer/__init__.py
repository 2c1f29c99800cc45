"""Tests of stepedit_core.tokenizer: vq02, vq06 and the dual-codebook audio tokenizer."""
