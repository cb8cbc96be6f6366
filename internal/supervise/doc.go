// Package supervise provides the supervisor that devenv puts into the
// images it updates in place (see program/main.go for what it does).
//
// The supervisor is a small static Linux program. It is built ahead of
// time for linux/amd64 and linux/arm64 by `go generate
// ./internal/supervise` (make generate; see gen.go) and the binaries are
// committed under bin/ and embedded in devenv, so live update needs no Go
// toolchain on the machine that runs devenv and nothing is compiled,
// cached or read from disk at run time. bin/supervise.sum records the hash
// of program/*.go the binaries were built from; a unit test fails when the
// sources changed and the binaries were not regenerated.
package supervise
