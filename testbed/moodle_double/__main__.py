import sys

from testbed.moodle_double.cli import main

sys.exit(main(sys.argv[1:]))
