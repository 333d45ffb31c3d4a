"""Video data: decoding, pure clip sampling, datasets, splits and procedural soccer clips.

Import the submodules directly (``soccerkd.data.datasets``, ``soccerkd.data.synth``, ...); this
package does not import torch or OpenCV on its own.
"""
