"""Tests of stepedit_core.decoder: prompt features, CAM++, flow, HiFT / BigVGAN, token2wav and streaming."""
