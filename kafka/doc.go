// Package kafka runs the Kafka broker devenv's services talk to, as a Docker
// container outside the cluster on the kind network, owned by devenv and
// outliving the devenv process.
//
// Ensure is idempotent: it finds the project's broker container by label,
// reuses it when it was created from the same spec (starting it if stopped,
// so its data stays), and recreates it when the spec changed (the labelled
// data volume devenv-<project>-kafka-data is kept). It then waits until the
// broker answers the Kafka protocol on both listeners and creates the
// requested topics (EnsureTopics).
//
// Each broker has two client listeners:
//
//   - INTERNAL, port Spec.Port (9092) on the container's address on the
//     network, advertised as <IP>:<Port>, for pods (through a selector-less
//     Service) and for other containers on the network;
//   - HOST, container port 19092 published on 127.0.0.1:<HostPort> and
//     advertised as 127.0.0.1:<HostPort>, for clients on the host.
//
// Two images are understood. Devenv's offline stand-in
// (devenv.local/kafka:kfake, label devenv.dev/kafka-broker=kfake, or
// dev.devenv.kafka-broker=kfake on images built by older versions) is set up
// through DEVENV_KAFKA_* variables (see internal/fakebroker); any other image is
// taken to be apache/kafka and set up as a single KRaft broker+controller,
// with a CONTROLLER listener on 9093.
//
// Ensure takes the desired state as a Spec and its dependencies (the Docker
// client, a *slog.Logger) as Options, as cluster and h2 do.
//
// Containers are created with testcontainers-go's GenericContainer; finding,
// starting and removing them use the Docker API directly, because devenv,
// not a test session, owns them. testcontainers-go's reaper (Ryuk) must
// therefore be off, a process-wide setting the program makes by calling
// ConfigureTestcontainers before using Ensure.
package kafka
