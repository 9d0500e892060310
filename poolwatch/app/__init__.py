"""The application: the `poolwatch` command and the demo, the only code that wires parts together.

`cli` builds the command line from each part's own commands; `demo*` run the whole stack on a
simulated cluster (the real Prometheus and Alertmanager when present, the rule engine, the
receiver, the controller and the pool API) and serve the pages a first-time user opens.
Nothing below imports this package (import-linter layers contract).
"""
