"""poolwatch dashboards: Grafana dashboards built from Python definitions (grafanalib), after the
ModelArts, Apulis and ACK monitoring views, and drawn to static HTML where there is no Grafana."""
