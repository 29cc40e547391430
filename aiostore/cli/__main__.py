"""``python -m aiostore.cli``: the same as the ``aiostore`` command."""

import sys

from . import main

sys.exit(main())
