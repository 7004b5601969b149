"""``python -m bcc`` is the same as the ``bcc`` command."""

import sys

from bcc.cli import main

sys.exit(main())
