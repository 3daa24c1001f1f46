# Two images from one wheel: `api` (the API, the dashboard and the migrations, no TensorFlow: pip's [server] extra)
# and `worker` (adds TensorFlow, tf-keras and tfmot, and Keras 3 with JAX for keras-engine runs: the
# [worker,keras3] extras). Each runs what `pip install` gives a user,
# as an unprivileged user, with a HEALTHCHECK:
#   docker build --target api -t prunelab-api .      docker build --target worker -t prunelab-worker .
FROM python:3.11.14-slim AS build
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11.14-slim AS base
RUN useradd --create-home --uid 10001 --user-group prunelab
ENV PRUNELAB_HOME=/home/prunelab/data PYTHONUNBUFFERED=1

FROM base AS api
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/prunelab-*.whl)[server]" && rm /tmp/*.whl
USER prunelab
WORKDIR /home/prunelab
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PRUNELAB_PORT', '8000'), timeout=5)"]
CMD ["prunelab", "api"]

FROM base AS worker
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/prunelab-*.whl)[worker,keras3]" && rm /tmp/*.whl
USER prunelab
WORKDIR /home/prunelab
# The worker's own Celery node answers a ping through the broker (its name is worker@ + the host name).
HEALTHCHECK --interval=30s --timeout=30s --start-period=60s --retries=3 CMD ["sh", "-c", "celery --app prunelab.worker.celery_app inspect ping --destination worker@$(hostname) --timeout 10"]
CMD ["prunelab", "worker", "--name", "worker@%h"]

# The worker for NVIDIA GPUs (deploy/kubernetes/worker-gpu.yaml): TensorFlow with its CUDA libraries from pip.
FROM worker AS worker-gpu
USER root
RUN pip install --no-cache-dir "tensorflow[and-cuda]==2.21.*"
USER prunelab
