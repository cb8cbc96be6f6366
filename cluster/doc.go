// Package cluster runs devenv's local Kubernetes: a single-node kind cluster
// created through sigs.k8s.io/kind as a library, its kubeconfig, the shared
// "kind" Docker network that external containers (Kafka, H2) join, server-side
// apply with ownership-label pruning, rollout waits that explain failures in
// plain words, and loading locally built images into the node.
//
// On Docker engines where `docker run --privileged` is refused (moby#42906,
// Docker 20.10 on a kernel whose capability bounding set lacks
// CAP_SYS_RESOURCE) the package installs a small docker shim and puts it first
// in the process's PATH, because kind executes the docker CLI from PATH even
// when used as a library. See PrivilegedWorkaround.
package cluster
