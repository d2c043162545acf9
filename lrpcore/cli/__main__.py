import sys

from lrpcore.cli import main

sys.exit(main())
