"""Training and evaluation: one loop for teacher fine-tuning, student baselines and KD; checkpoints.

Heavy imports (torch) live in the submodules; import :mod:`soccerkd.train.checkpoint` to load a
trained model (``load_model``) and :mod:`soccerkd.train.runner` to run a config end to end.
"""
