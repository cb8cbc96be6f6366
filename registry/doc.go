// Package registry sends devenv's images to an OCI registry, for clusters
// that pull their images instead of having them loaded into their nodes: a
// shared or remote cluster, or a kind cluster wired to a registry container
// (see KindContainerd and HostingConfigMap).
//
// Push takes an image as its parts (the config and each layer's blob with a
// way to open it), so that an image devenv assembled itself is sent straight
// from its layer files, without going through the Docker engine. It uses
// github.com/google/go-containerregistry, which asks the registry for each
// blob (HEAD) and uploads only the missing ones; a tag the registry already
// holds at the same manifest sends nothing at all. PushResult counts what
// was uploaded and what the registry had.
//
// Credentials come from the user's Docker configuration and its credential
// helpers (what `docker login` wrote); they are never logged nor put into an
// error. Plain HTTP is used only when the caller asks for it
// (PushOptions.Insecure); every other request goes over HTTPS.
//
// The package changes nothing in the process: it takes a *slog.Logger (nil:
// silent) and keeps no state between calls.
package registry
