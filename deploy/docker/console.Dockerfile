# syntax=docker/dockerfile:1.7
# permits-console: the image runs exactly the dependencies of uv.lock, the same ones local work and
# CI use. Build from the repository root (the uv workspace is the build context):
#   docker build -f deploy/docker/console.Dockerfile -t permits-console .
# console.Dockerfile.dockerignore beside this file keeps the context to what the build needs.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# The locked third-party dependencies first: this layer changes only with uv.lock.
COPY pyproject.toml uv.lock ./
COPY services/common/pyproject.toml services/common/pyproject.toml
COPY services/intake/pyproject.toml services/intake/pyproject.toml
COPY services/issuance/pyproject.toml services/issuance/pyproject.toml
COPY services/rights/pyproject.toml services/rights/pyproject.toml
COPY services/notify/pyproject.toml services/notify/pyproject.toml
COPY services/audit/pyproject.toml services/audit/pyproject.toml
COPY services/console/pyproject.toml services/console/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package permits-console
# Then the code, installed as wheels (not editable) so the final image needs no source tree.
COPY services/common/permits_common services/common/permits_common
COPY services/console/permits_console services/console/permits_console
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package permits-console

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 permits \
    && useradd --system --uid 10001 --gid permits --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin permits
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PERMITS_HOST=0.0.0.0 \
    PERMITS_CONSOLE_PORT=8000 \
    PERMITS_LOG_JSON=true
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "permits_console"]
