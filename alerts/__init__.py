"""poolwatch alerts: the notification receiver (Alertmanager webhook), its SQLite outbox and its
delivery through apprise to mail, chat and webhooks."""
