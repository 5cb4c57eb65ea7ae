"""Proving on a cluster: whole chunks run on remote workers, folded on the driver.

The driver splits the input into pieces of whole chunks, has each piece run
by a worker holding its own pinned session, and folds the rows in input
order with the same code as a local run (:func:`cyberian.prover.fold_chunks`),
so every commitment, root and receipt is the local run's, bit for bit.
"""
