"""Toolchains: finding compilers and running every external process in a sandbox.

``runner.ProcessRunner`` is the only place in sigforge that starts processes. ``host.find_host_cc`` is the
narrow seam that a signed toolchain registry will replace.
"""
