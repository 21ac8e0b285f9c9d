import sys

from functions.export_job.main import main

sys.exit(main())
