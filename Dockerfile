# The session server, the bot and the built client in one image: `python -m server`
# spawns one bot per room (or dispatches rooms to worker hosts) and serves the page at /,
# so production is one origin. `python -m bot worker` runs a worker host from the same image.
FROM node:20-slim AS client
WORKDIR /client
COPY client/package.json client/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY client/ ./
RUN npm run build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 agent

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY processors ./processors
COPY services ./services
COPY engines ./engines
COPY server ./server
RUN pip install ".[scale]"
COPY --from=client /client/dist ./client/dist

USER agent
ENV SERVER_HOST=0.0.0.0 \
    TOKEN_SERVER_PORT=8081
EXPOSE 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TOKEN_SERVER_PORT', '8081') + '/health', timeout=2)"]
CMD ["python", "-m", "server"]
