"""Loaded by Python children of the test suite: installs the outbound-connection guard there too."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _netguard

_netguard.install()
