"""The convolution explainer: what a convolution computes, before any training, drawn so every number can be followed.

- ``arithmetic``: the sliding sum (cross-correlation and the flipped textbook convolution), pooling, one output pixel
  worked out by hand, and the one label scheme for padding (x[row, col] in input coordinates, "pad" outside);
- ``kernels``: the built-in kernels and the inputs (images, small matrices such as ``edge6x6``, files);
- ``walkthrough``: one case computed from the command's options, and its printed walk-through;
- ``figures`` (static figure), ``animation`` (sliding-window GIF and contact sheet), ``page`` (the interactive HTML
  page), ``gallery`` (every kernel on one digit), ``rgb`` (the colour example), ``match`` (learned filters against
  the kernels);
- ``shapes`` (layer shapes for any input, in C x H x W or H x W x C) and ``receptive`` (an output pixel's receptive
  field), both from :mod:`filterlab.core.geometry`.

Only the light, NumPy-only modules are imported here; the drawing modules import matplotlib and are imported where
they are used.
"""

from __future__ import annotations

from .arithmetic import ExplainError, Worked, convolve2d, correlate2d, pool2d, worked_pixel
from .kernels import KERNELS, SMALL_INPUTS, load_input, load_kernel, read_matrix

__all__ = ["KERNELS", "SMALL_INPUTS", "ExplainError", "Worked", "convolve2d", "correlate2d", "load_input",
           "load_kernel", "pool2d", "read_matrix", "worked_pixel"]
