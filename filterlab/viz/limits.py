"""Figure limits that code without matplotlib needs too (the measuring side caps what it computes the same way).

``filterlab.viz.style`` re-exports them; importing this module costs nothing (no matplotlib, no NumPy).
"""

MAX_FILTERS = 64  # filters drawn in one figure at most (model.filters may be 4096); captions say when capped
