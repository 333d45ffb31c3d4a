"""Torch implementations of the core's ports: predictors, frame decoding and preprocessing, the
frame store, checkpoints by name, and the teacher in shadow."""
