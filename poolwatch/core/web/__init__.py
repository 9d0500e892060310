"""One web layer for every server poolwatch runs.

- `server`: the threaded HTTP server and handler base (listen backlog, idle and read timeouts,
  write timeout, strict request framing, connection cap, TLS handshake per connection, the
  /metrics answer with gzip when asked, and `Handler.authorized()`);
- `auth`: who may call: basic auth against bcrypt hashes and bearer tokens, constant-time, with
  the verified-credential cache and the dummy hash against user enumeration;
- `config`: TLS and basic-auth settings in the Prometheus web-config file format, and
  `tls_context` for the servers whose TLS is set in their own configuration;
- `asgi`: the same auth, TLS and connection guards for the pool API (FastAPI under uvicorn).
"""
