import os
import sys

if os.environ.get("ENTROBENCH_WARM"):  # a local run's job: hand it to the warm server (entrobench/warm.py)
    from entrobench.warm import run_job

    code = run_job(sys.argv[1:])
    if code is not None:
        sys.exit(code)

from entrobench.cli import main  # noqa: E402

sys.exit(main())
