FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY backend backend
COPY worker worker
COPY migrations migrations
COPY frontend frontend
# Editable: migrations/ and frontend/ are read from /app, beside the packages.
RUN pip install --no-cache-dir -e .
ENV PRUNELAB_HOME=/data
