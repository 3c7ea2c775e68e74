"""`python -m steep`, which is also how torchrun and `accelerate launch` start it (`-m steep`)."""

import sys

from .cli import main

sys.exit(main())
