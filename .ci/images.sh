#!/usr/bin/env bash
# `make images`: build the QA and export task images for Fargate (linux/arm64) with buildx,
# scan each with trivy (or grype), and push them when a registry is given. The CI job that
# builds, scans and pushes them runs exactly this, on an x86 or an arm64 machine:
#   make images IMAGES_ARGS="--registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com/prtrace"
# An x86 machine builds arm64 under QEMU: `apt-get install qemu-user-static binfmt-support`
# registers it, and buildx's builder then lists linux/arm64.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat >&2 <<'EOF'
usage: .ci/images.sh [--platform linux/arm64] [--registry URI] [--tag TAG] [--no-scan] [--dry-run]
  --platform  what to build for (default linux/arm64, what the Fargate tasks run)
  --registry  push NAME:TAG there after the scan passes (e.g. an ECR repository URI prefix)
  --tag       the images' tag (default: the commit, git rev-parse --short=12 HEAD)
  --no-scan   build (and push) without a vulnerability scan
  --dry-run   print the commands instead of running them
EOF
}

platform=linux/arm64
registry=""
tag=""
scan=1
dry_run=0
while (($#)); do
  case $1 in
    --platform) platform=${2:?--platform needs a value}; shift 2 ;;
    --registry) registry=${2:?--registry needs a value}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --no-scan) scan=0; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "images: unknown argument $1" >&2; usage; exit 2 ;;
  esac
done
[[ $platform =~ ^linux/(arm64|amd64)$ ]] || { echo "images: --platform must be linux/arm64 or linux/amd64, not $platform" >&2; exit 2; }
[[ -z $registry || $registry =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$ ]] || { echo "images: --registry $registry is not a registry URI (host[/path])" >&2; exit 2; }
tag=${tag:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)}
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || { echo "images: --tag $tag is not a valid image tag" >&2; exit 2; }

fail() { echo "images: $1" >&2; echo "  fix: $2" >&2; exit 1; }

# ---- what this machine can build -------------------------------------------------------
docker buildx version >/dev/null 2>&1 ||
  fail "no docker buildx" "install it: docker-buildx (Debian 13) or docker-buildx-plugin (Docker's apt repository)"
machine=${PRTRACE_BUILD_MACHINE:-$(uname -m)}
case $machine in aarch64|arm64) native=linux/arm64 ;; *) native=linux/amd64 ;; esac
if [[ $platform != "$native" ]]; then
  platforms=$(docker buildx inspect 2>/dev/null | sed -n 's/^ *Platforms: *//p')
  [[ ,${platforms// /}, == *,$platform,* || ,${platforms// /}, == *,$platform\*,* ]] ||
    fail "buildx's builder cannot build $platform on this $machine machine (it lists: ${platforms:-nothing})" \
      "register QEMU (sudo apt-get install qemu-user-static binfmt-support), then: docker buildx create --use"
fi
scanner=""
if ((scan)); then
  if command -v trivy >/dev/null; then scanner=trivy
  elif command -v grype >/dev/null; then scanner=grype
  else fail "no image scanner" "install trivy or grype (neither is in Debian's or PyPI's archives), or pass --no-scan"
  fi
fi

run() { if ((dry_run)); then printf '%s\n' "$*"; else "$@"; fi; }

# ---- build, scan, push -----------------------------------------------------------------
# name, Dockerfile: each Dockerfile copies from the repository root (the build context).
for image in qa-runner:functions/qa_runner/Dockerfile export-job:functions/export_job/Dockerfile; do
  name=prtrace-${image%%:*}
  dockerfile=${image#*:}
  local_ref=$name:$tag
  run docker buildx build --platform "$platform" --file "$dockerfile" --tag "$local_ref" --load .
  case $scanner in
    trivy) run trivy image --exit-code 1 --severity HIGH,CRITICAL --ignore-unfixed "$local_ref" ;;
    grype) run grype "$local_ref" --fail-on high --only-fixed ;;
  esac
  if [[ -n $registry ]]; then
    run docker tag "$local_ref" "$registry/$local_ref"
    run docker push "$registry/$local_ref"
  fi
done
