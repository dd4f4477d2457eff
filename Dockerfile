# peerbot's production image: `docker compose up` (compose.yaml) runs PostgreSQL and two replicas of it.
# Slim Python 3.11, the package installed from this tree, run by an unprivileged user, probed on /healthz.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The HTTP server (health, metrics, Slack HTTP mode) must be reachable from outside the container.
    PEERBOT_HTTP_HOST=0.0.0.0 \
    PEERBOT_HTTP_PORT=3000

WORKDIR /app
# Every dependency installs from a wheel: no compiler, no system package.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
COPY scheduler ./scheduler
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin peerbot \
    && chown -R peerbot /app

USER peerbot
EXPOSE 3000

# Liveness: /healthz answers 200 while the process serves (no curl in a slim image: Python's own urllib).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PEERBOT_HTTP_PORT', '3000')}/healthz\", timeout=4)"]

# `run` applies the migrations (serialised between replicas on PostgreSQL) before it starts.
CMD ["peerbot", "run"]
