# zoom-kafka-connector: one small, non-root image for every role.
#
#   docker build -t zoom-connector .
#   docker run zoom-connector source        # or: worker, run, topics create, validate -, ...
#
# Built and run in CI on a local stand-in for python:3.11-slim-bookworm (tests/images/build.sh,
# tests/containers/). Every dependency has a manylinux wheel for CPython 3.11 on x86-64, so the
# build needs no compiler. Needs BuildKit (the default builder of Docker 23+).
# Build with --build-arg EXTRAS=rocksdb for WORKER_STORE=rocksdb:// (tables on disk).
# Behind a TLS-intercepting proxy, give the build your CA bundle as a secret (it is used by pip
# only, and never stored in a layer):
#   docker build --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt .

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
RUN --mount=type=secret,id=ca-certificates,target=/run/secrets/ca-certificates.crt \
    if [ -s /run/secrets/ca-certificates.crt ]; then export PIP_CERT=/run/secrets/ca-certificates.crt; fi \
    && pip wheel --prefer-binary --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}"

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
