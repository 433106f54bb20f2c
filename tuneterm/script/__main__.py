import sys

from tuneterm.script.supervisor import main

sys.exit(main())
