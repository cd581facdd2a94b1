# syntax=docker/dockerfile:1
# One image for every hookstream service: `docker run IMAGE ingest|worker|sink|sandbox|...`.
#
# The base is pinned by digest (python:3.11-slim-bookworm; refresh the digest with
# `docker buildx imagetools inspect python:3.11-slim-bookworm` and let Renovate or Dependabot
# propose updates). Override it with --build-arg PYTHON_IMAGE=... to build on a mirror or on
# the Debian stand-in that scripts/build-base-image makes: any Debian-based image with
# `python3` (3.11) and its venv module on PATH, wherever it lives.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# --- build: a virtualenv with hookstream and the locked dependencies (all wheels) ----------
FROM ${PYTHON_IMAGE} AS build
# Where the wheels come from: `index` (the default) downloads them; `wheelhouse` installs
# from wheelhouse/ in the build context alone (scripts/build-wheelhouse fills it), with no
# index. Either way every wheel must match its hash in the lock files.
ARG PIP_SOURCE=index
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.txt requirements-build.txt ./
COPY wheelhouse/ wheelhouse/
# /opt/build holds the tools (pip, setuptools) and stays here; /opt/hookstream, the runtime
# virtualenv, gets no pip at all.
RUN case "$PIP_SOURCE" in \
        index) set -- --find-links wheelhouse ;; \
        wheelhouse) set -- --no-index --find-links wheelhouse ;; \
        *) echo "PIP_SOURCE must be index or wheelhouse, not $PIP_SOURCE" >&2; exit 2 ;; \
    esac \
    && python3 -m venv /opt/build \
    && /opt/build/bin/python -m pip install --quiet --require-hashes --only-binary=:all: "$@" \
        -r requirements-build.txt \
    && python3 -m venv --without-pip /opt/hookstream \
    && /opt/build/bin/pip --python /opt/hookstream/bin/python install --quiet --no-deps \
        --require-hashes --only-binary=:all: "$@" -r requirements.txt
COPY pyproject.toml README.md LICENSE ./
COPY hookstream/ hookstream/
COPY ingest/ ingest/
COPY streams/ streams/
COPY sinks/ sinks/
COPY sandbox/ sandbox/
# The version the build was told (the label below) must be the one hookstream reports.
ARG HOOKSTREAM_VERSION
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
    && /opt/build/bin/pip --python /opt/hookstream/bin/python install --quiet --no-deps \
        --no-index /tmp/dist/hookstream-*.whl \
    && /opt/hookstream/bin/hookstream --help >/dev/null \
    && reported="$(/opt/hookstream/bin/hookstream --version)" \
    && if [ "$reported" != "hookstream, version ${HOOKSTREAM_VERSION}" ]; then \
        echo "--build-arg HOOKSTREAM_VERSION=${HOOKSTREAM_VERSION} but: $reported" >&2; exit 1; \
    fi

# --- runtime: the virtualenv on a clean base, as an unprivileged user -----------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG HOOKSTREAM_VERSION
LABEL org.opencontainers.image.title="hookstream" \
      org.opencontainers.image.description="Intercom webhooks into Kafka, deduplicated and routed; data events back to Intercom." \
      org.opencontainers.image.version="${HOOKSTREAM_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# UID/GID 10001: above any range a host or base image hands out, and what k8s/ runs as.
# The state directories are created here, owned by that user, so that a fresh named volume
# (Docker copies the image's directory into it) or a read-only root keeps them writable.
RUN groupadd --system --gid 10001 hookstream \
    && useradd --system --uid 10001 --gid hookstream --no-create-home \
       --home-dir /var/lib/hookstream --shell /usr/sbin/nologin hookstream \
    && mkdir -p /var/lib/hookstream/spool /var/lib/hookstream/faust \
    && chown -R 10001:10001 /var/lib/hookstream
COPY --from=build /opt/hookstream /opt/hookstream
# Container defaults of the settings (hookstream/core/settings.py); everything else stays at its
# default or comes from the environment at run time. Listen on all interfaces, keep state
# under /var/lib/hookstream (mount volumes there), log JSON lines.
ENV PATH="/opt/hookstream/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOOKSTREAM_INGEST_HOST=0.0.0.0 \
    HOOKSTREAM_SPOOL_PATH=/var/lib/hookstream/spool/spool.sqlite3 \
    HOOKSTREAM_DATA_DIR=/var/lib/hookstream/faust \
    HOOKSTREAM_LOG_FORMAT=json
WORKDIR /var/lib/hookstream
USER 10001:10001
# ingest, worker metrics/health, sink metrics/health, sandbox
EXPOSE 8080 6066 6067 8090
# One image, several services: healthy when the port of the service this container runs (the
# ingest's, the worker's, the sink's or the sandbox's, from the same variables the services
# read) answers GET /healthz with a status below 500.
# Kubernetes ignores this and uses the probes in k8s/; docker-compose.yml sets its own.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.error, urllib.request\nports = {os.environ.get(name, default) for name, default in (('HOOKSTREAM_INGEST_PORT', '8080'), ('HOOKSTREAM_WORKER_WEB_PORT', '6066'), ('HOOKSTREAM_SINK_WEB_PORT', '6067'), ('HOOKSTREAM_SANDBOX_PORT', '8090'))}\ndef answers(port):\n    try:\n        urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).close()\n    except urllib.error.HTTPError as exc:\n        return exc.code < 500\n    except OSError:\n        return False\n    return True\nraise SystemExit(0 if any(answers(port) for port in ports) else 1)"]
ENTRYPOINT ["hookstream"]
CMD ["--help"]
