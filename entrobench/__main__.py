import sys

from entrobench.cli import main

sys.exit(main())
