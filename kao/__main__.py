"""`python -m kao`: the same as the `kao` command."""

import sys

from kao.cli import main

sys.exit(main())
