"""One module per dashboard, each with `UID` and `build() -> grafanalib Dashboard`."""
