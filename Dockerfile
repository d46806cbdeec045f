# syntax=docker/dockerfile:1
# A small image that runs `gateway serve` as a non-root user; state lives in the /data volume.
#
#   docker build -t gateway .
#   docker run --rm -p 8000:8000 -v gateway-data:/data gateway
#
# The bundled config is config.example.toml with its store and sink files moved into /data: the demo with
# the embedded sandbox and the development secrets of [dev_secrets]. For a real deployment mount your own
# config (without [dev_secrets]) and pass the secrets as environment variables:
#
#   docker run -v ./gateway.toml:/etc/gateway/config.toml:ro -e GATEWAY_SOHAR_CLIENT_SECRET=... gateway

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip wheel --wheel-dir /wheels .
COPY config.example.toml ./
# Point the store and the JSONL sink into the volume; fail the build if the example stops matching.
RUN sed -e 's#"sqlite:///var/gateway.db"#"sqlite:////data/gateway.db"#' \
        -e 's#"var/out/results.jsonl"#"/data/out/results.jsonl"#' \
        config.example.toml > config.toml \
 && grep -q '"sqlite:////data/gateway.db"' config.toml \
 && grep -q '"/data/out/results.jsonl"' config.toml

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    GATEWAY_CONFIG=/etc/gateway/config.toml
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels gateway \
 && groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /data --shell /usr/sbin/nologin gateway \
 && mkdir -p /data /etc/gateway \
 && chown gateway:gateway /data \
 && chmod 0700 /data
COPY --from=build /src/config.toml /etc/gateway/config.toml
USER gateway:gateway
WORKDIR /data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
# Listen on every interface inside the container; {self} URLs in the config still call 127.0.0.1. The bundled
# config is the demo (public demo tokens), which `serve` refuses off loopback unless --allow-demo says it is meant:
# a real deployment mounts a mode = "production" config and drops --allow-demo.
CMD ["gateway", "serve", "--config", "/etc/gateway/config.toml", "--host", "0.0.0.0", "--port", "8000", "--allow-demo"]
