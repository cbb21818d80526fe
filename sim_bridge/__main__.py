import sys

from sim_bridge.cli import main

sys.exit(main())
