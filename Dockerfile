# mq image: mq-api (the default command), mq-worker and mqctl on Debian 12.
#
#   docker build -t mq .
#   docker run --rm -p 3010:3010 -e REDIS_URL=... -e DATABASE_URL=... mq
#   docker run --rm -e DATABASE_URL=... mq mqctl db migrate
#   docker run --rm -v $PWD/worker.yaml:/etc/mq/worker.yaml:ro -e ... mq mq-worker --config /etc/mq/worker.yaml
#
# Two stages: `build` compiles and packs the .deb (`make deb`, dependencies from
# dpkg-shlibdeps); the runtime stage installs that .deb on debian:12-slim, so it gets the
# runtime libraries and nothing of the toolchain or the -dev packages. docs/deploy.md.
ARG DEBIAN_RELEASE=12

FROM debian:${DEBIAN_RELEASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake ninja-build pkg-config ca-certificates file dpkg-dev help2man \
        libhiredis-dev libpqxx-dev libpq-dev nlohmann-json3-dev libspdlog-dev libfmt-dev \
        libyaml-cpp-dev libcli11-dev libboost-dev libboost-system-dev \
        libcurl4-openssl-dev libssl-dev libvalijson-dev libsimdjson-dev libcctz-dev \
        prometheus-cpp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMQ_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" \
    && cpack -G DEB -B /out --config /build/CPackConfig.cmake \
    && mv /out/mq_*.deb /out/mq.deb

FROM debian:${DEBIAN_RELEASE}-slim
ENV DEBIAN_FRONTEND=noninteractive
# A fixed non-root uid/gid (10001) so volumes and Kubernetes runAsNonRoot agree with it.
RUN groupadd --system --gid 10001 mq \
    && useradd --system --uid 10001 --gid mq --home-dir /var/lib/mq --no-create-home \
        --shell /usr/sbin/nologin mq \
    && install -d -o mq -g mq -m 0750 /var/lib/mq \
    && install -d -m 0755 /etc/mq
COPY --from=build /out/mq.deb /tmp/mq.deb
# tini reaps what exec handlers leave behind and forwards SIGTERM; curl serves HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends /tmp/mq.deb tini curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* /tmp/mq.deb
USER 10001:10001
WORKDIR /var/lib/mq
ENV PORT=3010
# 3010: mq-api; 9464: mq-worker's /metrics, /livez and /readyz.
EXPOSE 3010 9464
# mq-api's readiness probe: 200 while it can serve publishes (Redis answers; PostgreSQL down
# only degrades, see /api/v1/mq/health), a cached PING so probes never load Redis. Worker
# containers override it with their own /readyz (compose.yaml); a one-shot mqctl container
# never becomes healthy and needs none (`--no-healthcheck` or `healthcheck: disable`).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/readyz" >/dev/null || exit 1
# SIGTERM reaches the mq process through tini: mq-api drains requests, mq-worker deliveries.
# tini forwards SIGHUP as well (`docker kill -s HUP`): a reload, not a stop.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["mq-api"]
