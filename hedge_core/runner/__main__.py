import sys

from hedge_core.runner.process import main

sys.exit(main())
