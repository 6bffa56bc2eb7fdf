import gc
import sys

from platformctl.cli import WITHOUT_GC, main

if sys.argv[1:2] and sys.argv[1] in WITHOUT_GC:
    gc.disable()  # this process ends with the command (see WITHOUT_GC)
sys.exit(main())
