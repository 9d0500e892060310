# The poolwatch image: every part of the stack behind one entry point (`poolwatch <part> ...`),
# as the Helm chart (helm/poolwatch) runs it.
#
#   docker build -t ghcr.io/poolwatch/poolwatch:0.1.0 .
#
# Two stages: the wheel is built in the first, so the runtime image holds no build tools and no
# source tree. The runtime runs as nobody (65534, the uid the chart's securityContext names) on
# a read-only root filesystem; the parts write only to the volumes the chart mounts (/data, /tmp).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY poolwatch/ poolwatch/
COPY exporters/ exporters/
COPY rules/ rules/
COPY alerts/ alerts/
COPY dashboards/ dashboards/
COPY controller/ controller/
COPY api/ api/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="poolwatch" \
      org.opencontainers.image.description="Monitoring, alerting and fault handling for GPU/NPU training pools" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && poolwatch --version
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# node exporter, cluster exporter, rule engine, alerts receiver, controller, pool API
EXPOSE 9476 9477 9480 9481 9482 9483
USER 65534:65534
ENTRYPOINT ["poolwatch"]
CMD ["--help"]
