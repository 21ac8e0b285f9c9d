import sys

from functions.qa_runner.main import main

sys.exit(main())
