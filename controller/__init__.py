"""poolwatch controller: isolates faulty nodes, swaps in HA spares and restarts their jobs within
the pool's limits, and serves the pool API with rolling driver upgrades."""
