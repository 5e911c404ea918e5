"""``python -m qwqbot`` is the ``qwqbot`` command."""

import sys

from qwqbot.cli import main

sys.exit(main())
