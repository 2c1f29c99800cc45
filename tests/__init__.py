"""The test suite is a package so that its stage folders (tokenizer/, model/, decoder/) can hold test modules
and import the shared helpers here as ``tests.<helper>`` (tiny checkpoints, fake engine, audio clips)."""
