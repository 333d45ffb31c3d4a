"""``python -m stream.cli``: the ``soccerkd`` command."""

import sys

from stream.cli import main

sys.exit(main())
