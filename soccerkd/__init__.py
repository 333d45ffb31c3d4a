"""SoccerKDNet, done properly: clip models, knowledge distillation, evaluation, export.

This package is the learning library. It never imports :mod:`stream`.
"""

__version__ = "0.1.0"
