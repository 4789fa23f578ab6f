#!/bin/sh
# generate.sh regenerates the Go code for Rampart's protos. It needs protoc
# (Debian: apt-get install -y protobuf-compiler) and the two Go plugins at the
# versions the committed code was made with:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
set -eu
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH"
protoc -I . -I /usr/include \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	rampart/v1/reputation.proto
