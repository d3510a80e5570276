# syntax=docker/dockerfile:1.7
# One image for every role; the command picks it: `api`, `worker`, `beat`, `flower`, `migrate`, `sim`.
#   docker build -t reelmill .
#   docker run --rm reelmill --help

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: resolve the locked dependencies into /app/.venv with uv (installed from PyPI) ----------------
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project
# Then the project. It stays an editable install of /app: migrations/ is found beside the packages.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY shared ./shared
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev \
 && python -m compileall -q shared services

# --- runtime: no uv, no compiler, no root -----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
RUN groupadd --system --gid "${UID}" reelmill \
 && useradd --system --uid "${UID}" --gid reelmill --home-dir /app --no-create-home --shell /usr/sbin/nologin reelmill \
 && install -d -o reelmill -g reelmill -m 0750 /data /data/uploads && install -d -o reelmill -g reelmill -m 0700 /data/artifacts
COPY --from=build --chown=root:root /app /app
WORKDIR /app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REELMILL_DATA_DIR=/data \
    REELMILL_LOG_JSON=true
USER ${UID}:${UID}
EXPOSE 8000 5555
ENTRYPOINT ["reelmill"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
