"""The shared core: what every part of poolwatch uses and none of them owns.

The metric catalog (`catalog`), configuration loading (`config`), the controller's action
interface (`actions`), the text exposition (`exposition`), the web layer every poolwatch server
runs on (`web`: the HTTP server, TLS, basic and bearer auth, and the same for the pool API's
uvicorn), webhook delivery (`webhook`), the platforms' fault codes (`fault_codes`), plain HTML
pages (`pages`), the CLI's small helpers (`cliutil`), the port table (`ports`), the domain words
every part says alike (`vocabulary`: node-status buckets, pool event texts, the `poolwatch.io/*`
markers, accelerator resources) and the one client of Prometheus' query API (`prometheus`).

The core imports no part and neither the cluster interface nor the application (the import-linter
layers contract in pyproject.toml holds it): a part may change without the core noticing.
"""
