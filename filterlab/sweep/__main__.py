"""``python -m filterlab.sweep``: one worker process of the local pool (see :mod:`filterlab.sweep.pool`)."""

from .pool import worker_main

worker_main()
