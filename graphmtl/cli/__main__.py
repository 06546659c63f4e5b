import sys

from graphmtl.cli import main

sys.exit(main())
