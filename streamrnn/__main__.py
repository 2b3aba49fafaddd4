"""``python -m streamrnn``: the ``streamrnn`` command (see :mod:`streamrnn.cli`)."""

import sys

from .cli import main

sys.exit(main())
