# zoom-kafka-connector: one small, non-root image for every role.
#
#   docker build -t zoom-connector .
#   docker run zoom-connector source        # or: worker, run, topics create, validate -, ...
#
# Not built on the development machines (they have no Docker engine);
# tests/unit/test_compose_image.py checks this file statically. Every dependency has a manylinux
# wheel for CPython 3.11 on x86-64, so the build needs no compiler.
# Build with --build-arg EXTRAS=rocksdb for WORKER_STORE=rocksdb:// (tables on disk).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# pyproject.toml names README.md as the package's readme; specs/ and schemas/avro/ are packaged
# into the wheel (connector/_data/), so the image needs no checkout.
COPY pyproject.toml README.md ./
COPY connector ./connector
COPY specs ./specs
COPY schemas ./schemas
RUN pip wheel --prefer-binary --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}"

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WORKER_DATA_DIR=/var/lib/zoom-connector
RUN groupadd --gid 10001 connector \
    && useradd --uid 10001 --gid 10001 --create-home connector \
    && mkdir -p /var/lib/zoom-connector \
    && chown connector:connector /var/lib/zoom-connector
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels /wheels/*.whl && rm -rf /wheels
USER 10001:10001
WORKDIR /home/connector
# SOURCE_PORT and WORKER_WEB_PORT (their defaults). The worker keeps local table files in
# WORKER_DATA_DIR (with WORKER_STORE=rocksdb://, mount a volume there to keep them across restarts).
EXPOSE 8080 6066
# Liveness of whichever role this container runs (source: /healthz; worker: /metrics; run: both),
# on the configured ports. Readiness (Kafka reachable) is the source's /readyz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["zoom-connector", "healthcheck"]
ENTRYPOINT ["zoom-connector"]
CMD ["source"]
