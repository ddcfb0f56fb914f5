"""``python -m filterlab.sweeps``: one worker process of the local pool (see :mod:`filterlab.sweeps.pool`)."""

from .pool import worker_main

worker_main()
