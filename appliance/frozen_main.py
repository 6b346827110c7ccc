"""Entry point of the frozen ``sigforge`` binary (PyInstaller; see ``appliance/sigforge.spec``).

The sandbox's PID-namespace init (``sigforge __sandbox_init__ <fd> argv...``, see
``sigforge.toolchains.sandbox_init``) is dispatched first, before anything heavy is imported: it runs once per
sandboxed process, so its start-up is on every compile and every harness run. Everything else is the ``sigforge``
command, after ``multiprocessing.freeze_support()``.
"""

import sys


def _entry() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "__sandbox_init__":
        from sigforge.toolchains import sandbox_init

        sandbox_init.run(sys.argv[2:])
    import multiprocessing

    multiprocessing.freeze_support()
    from sigforge.cli.main import main

    return main()


if __name__ == "__main__":
    sys.exit(_entry())
