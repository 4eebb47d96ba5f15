# The bot's image: CPU torch, `buhurt run` with the config and the data folder on volumes.
#   docker compose up -d            (docker-compose.yml: the bot, its volume, the health check)
#   docker build -t buhurt-bot .
#   docker run -d --name buhurt --stop-timeout 30 -v "$PWD/config.toml:/config/config.toml:ro" \
#       -v buhurt-data:/data -e BUHURT_TELEGRAM_TOKEN=... buhurt-bot
# For the GPU training box build with a CUDA torch instead:
#   docker build --build-arg TORCH_INDEX=<a CUDA wheel index> --build-arg TORCH_VERSION=2.13.0 -t buhurt-train .
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
# PyTorch's CPU wheel index by default: the CPU build (about 200 MB), not the default index's build
# with GB of CUDA packages the bot's host never uses. A CUDA wheel index for the training box; empty:
# torch from pip's default index.
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 BUHURT_CONFIG=/config/config.toml

WORKDIR /app
RUN if [ -n "$TORCH_INDEX" ]; then pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX"; \
    else pip install "torch==${TORCH_VERSION}"; fi
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY model ./model
COPY corpus ./corpus
COPY jobs ./jobs
COPY common ./common
RUN pip install . && useradd --create-home --uid 1000 buhurt && mkdir -p /data /config \
    && chown buhurt /data
USER buhurt
WORKDIR /data
VOLUME ["/data"]
# paths.data_dir in the mounted config should be "/data" (or left as "data" relative to /data).
# Healthy while the database answers and the running service's heartbeat (written every minute by
# its scheduler, on the event loop) is fresh: no network, no torch, well under a second. The first
# model trains in the background while the heartbeat goes on; the start period still covers a start
# that waits for the Bot API (telegram.startup_wait_seconds, 5 min) and then trains a first model in
# the foreground (no bundled model: 10 min, jobs/retrain.py FIRST_MODEL_MINUTES) with its export.
HEALTHCHECK --interval=60s --timeout=20s --start-period=20m --retries=3 CMD ["buhurt", "doctor", "--quick"]
# SIGTERM (docker stop) lets running jobs finish, then exits 0: give it more than docker's 10 s
# (`docker run --stop-timeout 30`, compose's stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["buhurt"]
CMD ["run"]
