"""The worker processes: the pool that spawns them and the tasks that run inside them.

Inference never runs in the server process. :mod:`.pool` starts the executor
processes and the independent replayer, :mod:`.tasks` is what runs inside
them, and :mod:`.faults` is the TEST-ONLY fault injection the executors read.
This package imports nothing heavy: spawned workers import it first.
"""
