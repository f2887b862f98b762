"""What every chanscale command line shares: a usage error is one line on stderr and exit status 2
(argparse's default prints the whole usage block first)."""
from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)
