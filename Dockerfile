# One image for every role (api, model workers, webhooks worker); compose.yaml picks the command.
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt README.md ./
COPY api api
COPY jobcontract jobcontract
COPY workers workers
COPY speechmodels speechmodels
COPY speechfleet speechfleet
COPY celeryconfig.py config.yml ./
# torch first, pinned (the package index serves the CUDA build; GPU workers also want onnxruntime-gpu)
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir -c constraints.txt '.[tts]' \
 && pip install --no-cache-dir --no-deps -c constraints.txt resemblyzer
ENV SPEECHFLEET_CONFIG=/app/config.yml
EXPOSE 12080
CMD ["speechfleet", "api", "--host", "0.0.0.0", "--port", "12080"]
