"""What each filter of a conv net detects: how far it moved from its start, the dataset patches that excite it most,
the input an optimiser makes for it, and where the net looks in one image.

Kind-agnostic: every function takes an ``nn.Module`` and finds its conv layers, their activations and their
receptive fields by tracing one dummy forward pass (:mod:`filterlab.insight.probe`, on top of
:mod:`filterlab.core.geometry`). Compute modules return plain data and the captions that describe it;
:mod:`filterlab.insight.figures` only draws; :mod:`filterlab.insight.entry` is what the commands call.
"""
