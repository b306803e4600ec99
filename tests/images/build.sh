#!/usr/bin/env bash
# Builds every image the container, compose and testcontainers tests use, on a machine that
# cannot pull from any image registry (only Debian's, Maven's, PyPI's and Go's package
# registries are reachable). Run as root; idempotent; each step is skipped when its inputs are
# unchanged (images carry a label with the hash of their inputs; downloads are cached in
# ${XDG_CACHE_HOME:-~/.cache}/zoom-connector/images).
#
#   bash tests/images/build.sh            # everything below, then prints the image names
#
# 1. Debian's docker.io and debootstrap (apt-get) when missing; dockerd started in the
#    background when no daemon answers.
# 2. Docker Compose v2 (the `docker compose` plug-in), built from the Go module proxy.
# 3. zoom-connector-test/debian:bookworm-minbase   debootstrap --variant=minbase, docker import
#    zoom-connector-test/python:3.11-slim-bookworm  stands in for python:3.11-slim-bookworm
#    zoom-connector-test/kafka:4.4.0                stands in for apache/kafka
#    zoom-connector-test/cp-kafka:7.6.0             stands in for confluentinc/cp-kafka
#                                                   (testcontainers' KafkaContainer)
#    zoom-connector-test/apicurio-registry:3.3.3    stands in for apicurio/apicurio-registry
# 4. zoom-connector:local, the project's own Dockerfile on the Python stand-in.
#
# HTTPS from inside a build may pass a TLS-intercepting proxy: the project image's build gets
# the host's CA bundle as a BuildKit secret (never written into a layer).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGES="$ROOT/tests/images"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/zoom-connector/images"
LABEL=org.zoom-connector.inputs
COMPOSE_VERSION=v5.6.0
APICURIO_VERSION=3.3.3
KAFKA_TOOLS_VERSION=4.4.0
ARGPARSE4J_VERSION=0.9.0
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

BASE_IMAGE=zoom-connector-test/debian:bookworm-minbase
PYTHON_IMAGE=zoom-connector-test/python:3.11-slim-bookworm
KAFKA_IMAGE=zoom-connector-test/kafka:4.4.0
CP_KAFKA_IMAGE=zoom-connector-test/cp-kafka:7.6.0
REGISTRY_IMAGE=zoom-connector-test/apicurio-registry:$APICURIO_VERSION
CONNECTOR_IMAGE=${ZOOM_CONNECTOR_IMAGE:-zoom-connector:local}

# Debian's docker CLI (20.10) has BuildKit built in; a newer CLI elsewhere on PATH may need the
# buildx plug-in for it.
DOCKER=/usr/bin/docker

log() { printf '[images %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- the engine ----------------------------------------------------------------------------

ensure_packages() {
    if [ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ] && command -v debootstrap >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "docker.io and debootstrap are missing; run as root to install them"
    log "installing docker.io and debootstrap (apt-get)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
        docker.io debootstrap
}

ensure_daemon() {
    if "$DOCKER" version >/dev/null 2>&1; then
        return
    fi
    log "starting dockerd (log: $CACHE/dockerd.log)"
    nohup /usr/sbin/dockerd >"$CACHE/dockerd.log" 2>&1 &
    local deadline=$((SECONDS + 60))
    until "$DOCKER" version >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "dockerd did not answer within 60 s; see $CACHE/dockerd.log"
        sleep 0.5
    done
}

ensure_compose() {
    local plugin="$HOME/.docker/cli-plugins/docker-compose"
    local cached="$CACHE/docker-compose-$COMPOSE_VERSION"
    if [ -x "$plugin" ] && [ "$("$plugin" version --short 2>/dev/null)" = "${COMPOSE_VERSION#v}" ]; then
        return
    fi
    if [ ! -x "$cached" ]; then
        command -v go >/dev/null || die "Go is needed to build Docker Compose"
        log "building Docker Compose $COMPOSE_VERSION from the Go module proxy"
        local module="github.com/docker/compose/v5@$COMPOSE_VERSION" dir src
        # `go install` refuses a module with exclude directives: build in a copy instead.
        dir=$(cd /tmp && go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
        [ -d "$dir" ] || die "go mod download $module gave no directory"
        src=$(mktemp -d)
        cp -r "$dir/." "$src"
        chmod -R u+w "$src"
        (cd "$src" && GOFLAGS=-buildvcs=false go build -trimpath \
            -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
            -o "$cached.tmp" ./cmd)
        rm -rf "$src"
        mv "$cached.tmp" "$cached"
    fi
    mkdir -p "$(dirname "$plugin")"
    install -m 0755 "$cached" "$plugin"
}

# --- images --------------------------------------------------------------------------------

# inputs_hash DIR [EXTRA...]: a hash of every file under DIR (path, mode, content) and EXTRA.
inputs_hash() {
    local dir=$1
    shift
    {
        (cd "$dir" && find . -type f -printf '%p %m\n' | LC_ALL=C sort && \
            find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
        printf '%s\n' "$@"
    } | sha256sum | cut -c1-32
}

image_is_current() {
    local tag=$1 hash=$2
    [ "$("$DOCKER" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$tag" 2>/dev/null)" = "$hash" ]
}

image_id() { "$DOCKER" image inspect --format '{{.Id}}' "$1"; }

# build_image TAG CONTEXT [docker build options...]: builds unless the inputs are unchanged.
build_image() {
    local tag=$1 context=$2
    shift 2
    local hash
    hash=$(inputs_hash "$context" "$@")
    if image_is_current "$tag" "$hash"; then
        log "$tag: up to date"
        return
    fi
    log "$tag: building"
    local start=$SECONDS previous
    previous=$("$DOCKER" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
    DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --label "$LABEL=$hash" -t "$tag" "$@" "$context" >/dev/null
    log "$tag: built in $((SECONDS - start)) s"
    remove_replaced "$tag" "$previous"
}

# remove_replaced TAG PREVIOUS_ID: the image a rebuild replaced, unless something still uses it.
remove_replaced() {
    if [ -n "$2" ] && [ "$2" != "$(image_id "$1")" ]; then
        "$DOCKER" image rm "$2" >/dev/null 2>&1 || true
    fi
}

build_base() {
    local params="bookworm minbase $DEBIAN_MIRROR"
    local hash
    hash=$(printf '%s\n' "$params" | sha256sum | cut -c1-32)
    if image_is_current "$BASE_IMAGE" "$hash"; then
        log "$BASE_IMAGE: up to date"
        return
    fi
    local tarball="$CACHE/rootfs-$hash.tar"
    if [ ! -f "$tarball" ]; then
        log "$BASE_IMAGE: debootstrap --variant=minbase bookworm"
        local start=$SECONDS rootfs
        rootfs=$(mktemp -d)
        debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
            || die "debootstrap failed; see $CACHE/debootstrap.log"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
        rm -rf "$rootfs"
        mv "$tarball.tmp" "$tarball"
        log "$BASE_IMAGE: debootstrap took $((SECONDS - start)) s"
    fi
    "$DOCKER" import --change "LABEL $LABEL=$hash" --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tarball" "$BASE_IMAGE" >/dev/null
}

# A fresh build context in the cache: the files of tests/images/NAME plus what the caller adds.
stage() {
    local dir="$CACHE/context/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -r "$IMAGES/$1/." "$dir"
    printf '%s' "$dir"
}

# maven_copy GROUP:ARTIFACT:VERSION DEST: the jar into DEST, fetched once into the cache.
maven_copy() {
    local artifact=$1 dest=$2 jars="$CACHE/jars"
    local name
    name=$(printf '%s' "$artifact" | cut -d: -f2,3 | tr : -).jar
    if [ ! -f "$jars/$name" ]; then
        mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$artifact" \
            -DoutputDirectory="$jars" >"$CACHE/mvn.log" 2>&1 \
            || die "mvn could not fetch $artifact; see $CACHE/mvn.log"
    fi
    cp "$jars/$name" "$dest/"
}

build_kafka() {
    [ -x "$ROOT/.venv/bin/python" ] || make -C "$ROOT" install >/dev/null
    local libs context
    libs=$("$ROOT/.venv/bin/python" -c \
        'from connector.kafka.local_broker.distribution import resolve_distribution as r; print(r().libs_dir)')
    context=$(stage kafka)
    cp -r "$libs" "$context/libs"
    # kafka-broker-api-versions.sh (the compose file's health check) lives in kafka-tools.
    maven_copy "org.apache.kafka:kafka-tools:$KAFKA_TOOLS_VERSION" "$context/libs"
    maven_copy "net.sourceforge.argparse4j:argparse4j:$ARGPARSE4J_VERSION" "$context/libs"
    build_image "$KAFKA_IMAGE" "$context" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --label "org.zoom-connector.parent=$(image_id "$BASE_IMAGE")"
    build_image "$CP_KAFKA_IMAGE" "$IMAGES/cp-kafka" --build-arg "KAFKA_IMAGE=$KAFKA_IMAGE" \
        --label "org.zoom-connector.parent=$(image_id "$KAFKA_IMAGE")"
}

# A JDK 21+ on the host to jlink the registry's Java runtime from.
host_jdk() {
    local jdk major
    for jdk in ${REGISTRY_JDK:-} /usr/lib/jvm/*; do
        [ -x "$jdk/bin/jlink" ] && [ -f "$jdk/release" ] || continue
        major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$jdk/release")
        if [ "${major:-0}" -ge 21 ]; then
            printf '%s' "$jdk"
            return
        fi
    done
    die "the registry image needs a JDK 21+ with jlink under /usr/lib/jvm (or REGISTRY_JDK)"
}

build_registry() {
    local jdk jre tarball app context
    jdk=$(host_jdk)
    jre="$CACHE/jre-$(basename "$jdk")"
    if [ ! -x "$jre/bin/java" ]; then
        log "jlink: a Java runtime from $jdk"
        rm -rf "$jre"
        local modules
        modules=$("$jdk/bin/java" --list-modules | sed 's/@.*//' | grep -v '^jdk\.\(jcmd\|jconsole\|jdeps\|jlink\|jpackage\|javadoc\|compiler\|jshell\|jstatd\|hotspot\.agent\|incubator\.vector\)$' | paste -sd, -)
        "$jdk/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages \
            --no-header-files --output "$jre"
    fi
    tarball="$HOME/.m2/repository/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
    if [ ! -f "$tarball" ]; then
        log "fetching Apicurio Registry $APICURIO_VERSION (Maven)"
        mvn -q -B -Dstyle.color=never dependency:get -Dtransitive=false \
            -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
            >"$CACHE/mvn.log" 2>&1 \
            || die "mvn could not fetch Apicurio Registry $APICURIO_VERSION; see $CACHE/mvn.log"
    fi
    app="$CACHE/apicurio-registry-$APICURIO_VERSION"
    if [ ! -f "$app/quarkus-run.jar" ]; then
        rm -rf "$app" && mkdir -p "$app.tmp"
        tar -xzf "$tarball" -C "$app.tmp"
        mv "$app.tmp" "$app"
    fi
    context=$(stage apicurio)
    cp -al "$jre" "$context/jre" 2>/dev/null || cp -r "$jre" "$context/jre"
    cp -al "$app" "$context/app" 2>/dev/null || cp -r "$app" "$context/app"
    build_image "$REGISTRY_IMAGE" "$context" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --label "org.zoom-connector.parent=$(image_id "$BASE_IMAGE")"
}

build_connector() {
    # BuildKit's own cache makes an unchanged project a matter of seconds.
    log "$CONNECTOR_IMAGE: building the project's Dockerfile"
    local start=$SECONDS secret=() previous
    previous=$("$DOCKER" image inspect --format '{{.Id}}' "$CONNECTOR_IMAGE" 2>/dev/null || true)
    if [ -s "$HOST_CA_BUNDLE" ]; then
        secret=(--secret "id=ca-certificates,src=$HOST_CA_BUNDLE")
    fi
    DOCKER_BUILDKIT=1 "$DOCKER" build --quiet "${secret[@]}" \
        --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -t "$CONNECTOR_IMAGE" "$ROOT" >/dev/null
    log "$CONNECTOR_IMAGE: $((SECONDS - start)) s, $("$DOCKER" image inspect --format '{{.Size}}' "$CONNECTOR_IMAGE") bytes"
    remove_replaced "$CONNECTOR_IMAGE" "$previous"
}

main() {
    mkdir -p "$CACHE"
    local start=$SECONDS
    ensure_packages
    ensure_daemon
    ensure_compose
    build_base
    build_image "$PYTHON_IMAGE" "$IMAGES/python" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --label "org.zoom-connector.parent=$(image_id "$BASE_IMAGE")"
    build_kafka
    build_registry
    build_connector
    log "all images ready in $((SECONDS - start)) s"
    cat <<EOF
ZOOM_CONNECTOR_IMAGE=$CONNECTOR_IMAGE
KAFKA_IMAGE=$KAFKA_IMAGE
KAFKA_TEST_IMAGE=$CP_KAFKA_IMAGE
SCHEMA_REGISTRY_IMAGE=$REGISTRY_IMAGE
EOF
}

main "$@"
