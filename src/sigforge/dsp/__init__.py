"""The translator: Python/NumPy/SciPy source in, typed IR, target code out.

Invariant: everything under ``sigforge.dsp`` is pure. It never executes user code, never spawns a process and
imports nothing from the db, web, worker, services or toolchains layers. Building and running generated code is
the job of ``sigforge.toolchains`` (the runner) driven by ``sigforge.services``.
"""
