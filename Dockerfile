# Builds the wheel, then installs it (with the worker's TensorFlow extra) into a clean image:
# the container runs exactly what `pip install prunelab[worker]` gives a user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11-slim
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/prunelab-*.whl)[worker]" && rm /tmp/*.whl
ENV PRUNELAB_HOME=/data
