"""poolwatch dashboards: arrives with its own issue; kept so the layout and packaging are final."""
