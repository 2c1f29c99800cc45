"""What both engines use to listen to a take: the offline Whisper ASR (asr.py), WER / CER and the signal
metrics (metrics.py), the speaker embedding of the take check (speaker_embedding.py over speaker.py's GE2E), the
pinned models they load from PyPI wheels (models.py), spoken numbers for the check's normalisation (g2p.py) and
the signal helpers they share (dsp.py). The lite engine imports from here; nothing here imports the lite engine."""
