// Package build turns a service's sources into an image: it runs the
// service's prebuild command on the host (skipped when its inputs did not
// change), packs a deterministic build context that honours .dockerignore,
// and builds it through the Docker API (the legacy builder, which is what a
// 20.10 engine without BuildKit offers).
//
// Images are tagged devenv.local/<project>-<service>:<first 12 hex digits of
// the image ID>, so an unchanged build yields the same tag (nothing to deploy)
// and a changed one a new tag.
package build
