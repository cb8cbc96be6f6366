// Package cluster runs devenv's local Kubernetes: a single-node kind cluster
// created through sigs.k8s.io/kind as a library, its kubeconfig, the shared
// "kind" Docker network that external containers (Kafka, H2) join, server-side
// apply with ownership-label pruning, rollout waits that explain failures in
// plain words, and loading locally built images into the node.
//
// Calls that make something exist take the desired state as a Spec (Spec,
// PreloadSpec, LiveChange) and their dependencies, the Docker client and a
// *slog.Logger, as Options; kafka and h2 follow the same convention.
//
// On Docker engines where `docker run --privileged` is refused (moby#42906,
// Docker 20.10 on a kernel whose capability bounding set lacks
// CAP_SYS_RESOURCE) kind needs a small docker shim first in the process's
// PATH, because kind executes the docker CLI from PATH even when used as a
// library. That is a process-wide change, so the package never makes it on
// its own: the program calls InstallPrivilegedShim once (devenv's CLI does),
// and without it the calls that run kind fail with ErrShimNeeded on such an
// engine. See PrivilegedWorkaround.
package cluster
