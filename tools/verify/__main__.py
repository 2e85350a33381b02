"""python -m tools.verify <stack> (bin/verify)."""

import sys

from tools.verify.run import main

sys.exit(main())
