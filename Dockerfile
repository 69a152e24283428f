FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpcap0.8 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml ./
COPY shared shared
COPY workers workers
COPY functions functions
COPY cli cli
RUN pip install --no-cache-dir . && useradd --system packetwatch && mkdir -p /var/captures /state && chown packetwatch /var/captures /state
USER packetwatch
