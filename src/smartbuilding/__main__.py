import sys

from smartbuilding.cli import main

sys.exit(main())
