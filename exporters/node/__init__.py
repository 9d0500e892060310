"""The node exporter: background collectors, pre-rendered exposition, a scrape that never waits."""
