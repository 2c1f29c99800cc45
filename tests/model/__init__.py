"""Tests of stepedit_core.model: the Step1 LLM, its loading, sampling, text tokenizer and prompt builder."""
