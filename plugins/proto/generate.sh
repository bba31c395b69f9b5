#!/usr/bin/env bash
# Regenerates the Go code for the add-on protocol from plugins/proto/addon/v1/addon.proto.
# Needs protoc (Debian: protobuf-compiler); the Go generators are built at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/../.."          # repository root
PROTOC_GEN_GO_VERSION=v1.36.8        # matches google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.3.0    # generates code for grpc >= 1.52 (go.mod has 1.61)
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
GOBIN="$tools" GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$tools" GOFLAGS=-mod=mod go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
PATH="$tools:$PATH" protoc \
  --proto_path=plugins/proto \
  --go_out=plugins/proto --go_opt=paths=source_relative \
  --go-grpc_out=plugins/proto --go-grpc_opt=paths=source_relative \
  addon/v1/addon.proto
echo "==> regenerated plugins/proto/addon/v1"
