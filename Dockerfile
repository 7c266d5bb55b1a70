# sveta in a container: the API and the web page on :8000, the catalog, index and models in the /data volume.
# Not built on the development machines (no container runtime there): kept short and conventional.
#   docker compose up --build        then open http://127.0.0.1:8000
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    SVETA_DATA_DIR=/data

# torch is only for exporting the photo model to ONNX and for `sveta train`; the CPU wheel keeps the image
# gigabytes smaller than PyPI's default CUDA build.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# deploy/compose.yaml adds postgres and milvus for the catalog and index servers
ARG EXTRAS=export,train,text,people

RUN useradd --create-home --uid 10001 sveta && mkdir /data && chown sveta /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install torch==2.13.0 --index-url "$TORCH_INDEX" \
 && pip install ".[$EXTRAS]" \
 && pip install --no-deps mediapipe==0.10.21

USER sveta
# Export the photo model once, at build time: a new named volume on /data starts with it (Docker copies the
# image's /data into an empty named volume), so the first request does not wait for the export.
RUN python -c "from sveta.embed.base import get_embedder; from sveta.settings import Settings; get_embedder('effnet-lite0', Settings())"

VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sveta", "serve", "--host", "0.0.0.0", "--port", "8000"]
