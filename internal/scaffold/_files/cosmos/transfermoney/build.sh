#!/bin/sh
# Builds the transfermoney service into bin/transfermoney: a static Linux
# binary for the FROM-scratch image. Works from any directory.
set -eu
cd "$(dirname "$0")"
if ! command -v go >/dev/null 2>&1; then
	echo "build.sh: go not found: install Go 1.26 or newer (https://go.dev/dl/)" >&2
	exit 1
fi
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags '-s -w' -o bin/transfermoney .
echo "built bin/transfermoney"
