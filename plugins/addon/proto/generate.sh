#!/usr/bin/env bash
# Regenerates the Go code for the add-on protocol from proto/addon/v1/addon.proto in the
# add-on SDK module (plugins/addon). Needs protoc (Debian: protobuf-compiler); the Go
# generators are built at pinned versions.
set -euo pipefail
cd "$(dirname "$0")"                 # plugins/addon/proto
PROTOC_GEN_GO_VERSION=v1.36.8        # matches google.golang.org/protobuf in plugins/addon/go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.3.0    # generates code for grpc >= 1.52 (plugins/addon/go.mod has 1.61)
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
GOBIN="$tools" GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$tools" GOFLAGS=-mod=mod go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
PATH="$tools:$PATH" protoc \
  --proto_path=. \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  addon/v1/addon.proto
echo "==> regenerated plugins/addon/proto/addon/v1"
