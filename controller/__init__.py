"""poolwatch controller: isolates faulty nodes, swaps in HA spares and restarts their jobs within
the pool's limits, and serves the pool API with rolling driver upgrades.

`service.PoolController` is the one entry point (the rule engine's actions, the server, the pool
API); it delegates to parts that each receive a `context.Context`: `isolation`, `replacer`,
`restarts` (jobs), `pool_events`, `pool_ops` and `node_ops`."""
