// Package build turns a service's sources into an image: it runs the
// service's prebuild command on the host (skipped when its inputs did not
// change), packs a deterministic build context that honours .dockerignore,
// and builds it through the Docker API: with BuildKit when the engine offers
// it (Docker 18.09 and later on Linux, unless its configuration names the
// legacy builder), else, or when the engine refuses BuildKit, with the
// legacy builder. The engine's BuildKit takes the tar context from the
// request body (no gRPC session) and answers with its progress as aux
// messages ("moby.buildkit.trace", decoded in trace.go) and the image ID
// ("moby.image.id"). For the builders whose Dockerfile parser predates
// heredocs (the legacy builder, and Docker 20.10's BuildKit), RUN heredocs
// are rewritten as the shell commands BuildKit makes of them.
//
// Images are tagged devenv.local/<project>-<service>:<first 12 hex digits of
// the image ID>, so an unchanged build yields the same tag (nothing to deploy)
// and a changed one a new tag.
package build
