#!/usr/bin/env bash
# Builds the Lambda layer that gives the worker pg_dump, pg_restore and psql for every PostgreSQL
# major it must dump (16, 17, 18), each with the shared libraries it needs:
#
#   dist/pg-layer/pgsql/<major>/bin/{pg_dump,pg_restore,psql,pg_basebackup,pg_receivewal,pg_verifybackup}
#   dist/pg-layer/pgsql/<major>/lib/{libpq.so.5,libssl.so.3,libcrypto.so.3,libzstd.so.1,...}
#   dist/pg-layer.json             {"arch": "arm64", "majors": [16,17,18], "versions": {...}}
#
# Lambda unpacks a layer under /opt, so the worker finds /opt/pgsql/<major>/bin/pg_dump through
# CAPYDB_PG_BIN_DIRS=/opt/pgsql, the same `<dir>/<major>/bin` layout it uses locally.
# `npx sst deploy` zips dist/pg-layer into a layer version (infra/worker.ts) and refuses to
# deploy when it is missing or was built for another architecture than the worker's.
#
# WHERE IT RUNS: it cannot run in an environment without Docker and the network (such as this
# repository's CI). It needs one of:
#   * Docker (the default): compiles inside public.ecr.aws/amazonlinux/amazonlinux:2023, the OS
#     of the nodejs24.x Lambda runtime, so the binaries link against the glibc Lambda has. For
#     ARCH=arm64 on an x86_64 machine Docker emulates arm64 with QEMU (Docker Desktop has it;
#     on Linux: `docker run --privileged --rm tonistiigi/binfmt --install arm64`): that works
#     but compiles ~5-10x slower (about 20-30 minutes for the three majors). An arm64 machine
#     (Apple silicon, a Graviton instance) builds natively in a few minutes.
#   * --native: an Amazon Linux 2023 host of the target architecture (e.g. a Graviton EC2
#     instance for arm64); it installs the build packages with dnf (needs root) and compiles
#     in place.
#
# Why compile from source rather than install packages: Amazon Linux 2023 does not carry every
# major we need at once, PGDG's RPMs target RHEL and drag in server packages, and a source
# build lets the binaries find their libraries in their own layer directory (rpath), with no
# LD_LIBRARY_PATH games. Only the client side is built (libpq, pg_dump, psql, pg_basebackup,
# pg_verifybackup): no server.
#
# Usage:
#   scripts/build-pg-layer.sh                 # ARCH=arm64 (the worker's architecture), Docker
#   scripts/build-pg-layer.sh --server-inside /out   # the task image's server build (its Dockerfile runs it)
#   ARCH=x86_64 scripts/build-pg-layer.sh     # only if infra/settings.ts `architecture` changes
#   scripts/build-pg-layer.sh --native        # on an Amazon Linux 2023 host of ARCH
#   PG18_VERSION=18.2 scripts/build-pg-layer.sh   # pin another minor release
#
# The source tarballs are checked against the SHA-256 files published beside them.
set -euo pipefail

ARCH="${ARCH:-arm64}"
# The client tools kept: the dump engine's three, and the WAL archive's (infra/archiver.ts runs in
# the task image, which copies this layer): pg_receivewal, pg_basebackup, pg_verifybackup.
TOOLS="pg_dump pg_restore psql pg_basebackup pg_receivewal pg_verifybackup"
PG16_VERSION="${PG16_VERSION:-16.11}"
PG17_VERSION="${PG17_VERSION:-17.7}"
PG18_VERSION="${PG18_VERSION:-18.1}"
PG_SOURCE_URL="${PG_SOURCE_URL:-https://ftp.postgresql.org/pub/source}"
IMAGE="${IMAGE:-public.ecr.aws/amazonlinux/amazonlinux:2023}"
# The runtime image the finished layer is smoke-tested in (the worker's own runtime).
RUNTIME_IMAGE="${RUNTIME_IMAGE:-public.ecr.aws/lambda/nodejs:24}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/dist/pg-layer"
MANIFEST="$ROOT/dist/pg-layer.json"

case "$ARCH" in
  arm64) PLATFORM=linux/arm64; UNAME_ARCH=aarch64 ;;
  x86_64) PLATFORM=linux/amd64; UNAME_ARCH=x86_64 ;;
  *) echo "ARCH must be arm64 or x86_64, not $ARCH" >&2; exit 2 ;;
esac

# --- inside the build environment (container or AL2023 host) -----------------------------------
# Compiles each major into /opt/pgsql/<major> (so the default rpath, <prefix>/lib, is the path
# the layer will have on Lambda) and copies the result to $1.
build_inside() {
  local dest="$1"
  if [ "$(uname -m)" != "$UNAME_ARCH" ]; then
    echo "this machine is $(uname -m), the layer must be $UNAME_ARCH" >&2
    exit 1
  fi
  # bison, flex, perl: PostgreSQL 17 and later tarballs ship no pre-generated parsers and headers
  # (distprep was removed in 17), so building libpq and pg_dump from them needs the generators.
  dnf install -y --setopt=install_weak_deps=False \
    gcc make tar gzip bzip2 findutils binutils gawk bison flex perl \
    openssl-devel zlib-devel libzstd-devel lz4-devel >/dev/null

  local work
  work="$(mktemp -d)"
  for version in "$PG16_VERSION" "$PG17_VERSION" "$PG18_VERSION"; do
    local major="${version%%.*}"
    local prefix="/opt/pgsql/$major"
    local tarball="postgresql-$version.tar.bz2"
    echo "==> PostgreSQL $version -> $prefix"
    (
      cd "$work"
      curl -fsSLO "$PG_SOURCE_URL/v$version/$tarball"
      curl -fsSLO "$PG_SOURCE_URL/v$version/$tarball.sha256"
      sha256sum -c "$tarball.sha256"
      tar xjf "$tarball"
      cd "postgresql-$version"
      # Client tools only: no readline (psql runs scripts, never interactively, on Lambda), no
      # ICU (a server-side collation library); zstd/lz4 for pg_dump's compression options.
      ./configure --prefix="$prefix" --without-readline --without-icu \
        --with-openssl --with-zstd --with-lz4 >/dev/null
      make -s -j"$(nproc)" -C src/interfaces/libpq install
      make -s -j"$(nproc)" -C src/bin/pg_dump install
      make -s -j"$(nproc)" -C src/bin/psql install
      # The WAL archive (infra/archiver.ts, same image): pg_receivewal and pg_basebackup, pg_verifybackup.
      make -s -j"$(nproc)" -C src/bin/pg_basebackup install
      make -s -j"$(nproc)" -C src/bin/pg_verifybackup install
    )

    # Keep the tools and the shared libraries; drop headers, static libs, the rest.
    local stage="$dest/pgsql/$major"
    mkdir -p "$stage/bin" "$stage/lib"
    for tool in $TOOLS; do
      cp "$prefix/bin/$tool" "$stage/bin/"
    done
    # Only the soname the tools ask for, as a plain file: a layer zip should hold no symlinks.
    cp -L "$prefix/lib/libpq.so.5" "$stage/lib/"
    # Libraries outside glibc that the tools load (OpenSSL, zlib, zstd, lz4), copied beside
    # libpq: the rpath <prefix>/lib finds them on Lambda whatever the runtime image carries.
    for bin in "$stage"/bin/*; do
      ldd "$bin" | awk '/=> \// { print $3 }'
    done | sort -u | while read -r lib; do
      case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|ld-linux*) ;;
        libpq.so*) ;;
        *) cp -L "$lib" "$stage/lib/" ;;
      esac
    done
    find "$stage" -type f -exec strip --strip-unneeded {} +
    "$stage/bin/pg_dump" --version
  done
  rm -rf "$work"
}

# --- the task image's PostgreSQL server (infra/task/Dockerfile's `server` stage) ----------------
# Point-in-time restores and drills run a recovery instance (core/pg/recovery.ts): the `postgres`
# server of the base backup's major, found at /opt/pgsql/<major>/bin/postgres through
# CAPYDB_PG_BIN_DIRS=/opt/pgsql. The Lambda layer stays client-only (its size limit); the task
# image gets the whole installation of each major: the server, its modules and share files
# (timezone data, timezone_abbreviations), contrib (so pg_dump can read columns of extension
# types such as hstore or citext out of the instance), and the WAL tools (pg_basebackup,
# pg_receivewal, pg_verifybackup, pg_waldump). ICU too: a database created with the ICU locale
# provider cannot even be connected to on a server built without it. Same majors and minor
# versions as the layer; the libraries outside glibc are copied beside each major's (rpath).
build_server_inside() {
  local dest="$1"
  dnf install -y --setopt=install_weak_deps=False \
    gcc make tar gzip bzip2 findutils binutils gawk bison flex perl \
    openssl-devel zlib-devel libzstd-devel lz4-devel libicu-devel >/dev/null
  local work
  work="$(mktemp -d)"
  for version in "$PG16_VERSION" "$PG17_VERSION" "$PG18_VERSION"; do
    local major="${version%%.*}"
    local prefix="/opt/pgsql/$major"
    local tarball="postgresql-$version.tar.bz2"
    echo "==> PostgreSQL $version server -> $prefix"
    (
      cd "$work"
      curl -fsSLO "$PG_SOURCE_URL/v$version/$tarball"
      curl -fsSLO "$PG_SOURCE_URL/v$version/$tarball.sha256"
      sha256sum -c "$tarball.sha256"
      tar xjf "$tarball"
      cd "postgresql-$version"
      ./configure --prefix="$prefix" --without-readline --with-icu \
        --with-openssl --with-zstd --with-lz4 >/dev/null
      make -s -j"$(nproc)" install
      make -s -j"$(nproc)" -C contrib install
    )
    for bin in "$prefix"/bin/* "$prefix"/lib/postgresql/*.so; do
      ldd "$bin" 2>/dev/null | awk '/=> \// { print $3 }'
    done | sort -u | while read -r lib; do
      case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|ld-linux*|libpq.so*) ;;
        *) cp -Ln "$lib" "$prefix/lib/" ;;
      esac
    done
    rm -rf "$prefix/include" "$prefix/lib/pgxs" "$prefix"/lib/*.a
    find "$prefix" -type f \( -perm -u+x -o -name '*.so*' \) -exec strip --strip-unneeded {} + 2>/dev/null || true
    for tool in postgres pg_verifybackup pg_basebackup pg_receivewal pg_dump pg_restore; do
      "$prefix/bin/$tool" --version | grep -q " $major\."
    done
    mkdir -p "$dest/$major"
    cp -a "$prefix/." "$dest/$major/"
  done
  rm -rf "$work"
}

if [ "${1:-}" = "--inside" ]; then
  build_inside "$2"
  exit 0
fi
if [ "${1:-}" = "--server-inside" ]; then
  build_server_inside "$2"
  exit 0
fi

# --- on the developer's machine ----------------------------------------------------------------
rm -rf "$OUT" "$MANIFEST"
mkdir -p "$OUT"

if [ "${1:-}" = "--native" ]; then
  if ! grep -q 'Amazon Linux' /etc/os-release 2>/dev/null; then
    echo "--native needs an Amazon Linux 2023 host (glibc must match Lambda's)" >&2
    exit 1
  fi
  build_inside "$OUT"
else
  if ! command -v docker >/dev/null; then
    echo "Docker is required (or run with --native on an Amazon Linux 2023 $ARCH host)" >&2
    exit 1
  fi
  docker run --rm --platform "$PLATFORM" \
    -e ARCH -e PG16_VERSION="$PG16_VERSION" -e PG17_VERSION="$PG17_VERSION" \
    -e PG18_VERSION="$PG18_VERSION" -e PG_SOURCE_URL="$PG_SOURCE_URL" \
    -v "$ROOT/scripts/build-pg-layer.sh:/build.sh:ro" -v "$OUT:/out" \
    "$IMAGE" bash /build.sh --inside /out
  # Files written by root in the container belong to the caller.
  docker run --rm -v "$OUT:/out" "$IMAGE" chown -R "$(id -u):$(id -g)" /out

  # Smoke test in the worker's actual runtime image, with the layer where Lambda puts it and no
  # LD_LIBRARY_PATH help: every tool must start and report its major.
  for major in 16 17 18; do
    docker run --rm --platform "$PLATFORM" --entrypoint /bin/sh \
      -v "$OUT:/opt:ro" "$RUNTIME_IMAGE" -c "
        set -e
        for tool in $TOOLS; do
          env -u LD_LIBRARY_PATH /opt/pgsql/$major/bin/\$tool --version | grep -q ' $major\.'
        done"
    echo "layer: PostgreSQL $major tools start in $RUNTIME_IMAGE"
  done
fi

cat >"$MANIFEST" <<JSON
{
  "arch": "$ARCH",
  "majors": [16, 17, 18],
  "versions": { "16": "$PG16_VERSION", "17": "$PG17_VERSION", "18": "$PG18_VERSION" }
}
JSON
echo "built $OUT for $ARCH ($(du -sh "$OUT" | cut -f1)); manifest $MANIFEST"
