"""The pool REST API: ModelArts' resource-pool operations over poolwatch's cluster interface.

`poolwatch api serve` serves it (`cli.py`); `app.create_app(...)` builds the FastAPI app, so the
demo and the tests run the same app in-process. The API decides nothing about nodes by itself:
every change goes through the controller facade (`ports.PoolControl`), so isolation rules and
pool limits hold for API callers exactly as they do for the rule engine. Monitoring answers come
from Prometheus (instant and range queries over poolwatch's own metrics, docs/metrics.md).
"""
