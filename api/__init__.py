"""poolwatch api: the pool REST API (ModelArts' resource-pool operations over poolwatch's cluster
interface) and the rolling driver upgrade it drives (`upgrade.py`, also `poolwatch api upgrade`).

A part of its own beside the controller: it never imports it. `poolwatch api serve` serves it
(`cli.py`), handed the controller it acts through by the application. `app.create_app(...)`
builds the FastAPI app, so the demo and the tests run the same app in-process. The API decides
nothing about nodes by itself: every change goes through the controller (`ports.PoolControl`),
so isolation rules and pool limits hold for API callers exactly as they do for the rule engine.
Monitoring answers come from Prometheus (instant and range queries over poolwatch's own metrics,
docs/metrics.md).
"""
