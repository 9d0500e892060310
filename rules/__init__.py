"""poolwatch rules: the alert rules (thresholds from the ModelArts and Apulis alarm documentation),
their compiler to Prometheus rule files, and the rule engine that evaluates them and asks the
controller to act."""
