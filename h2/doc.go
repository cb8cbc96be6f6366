// Package h2 runs devenv's H2 database server: one container per project on
// the kind Docker network, reachable from pods through a selector-less Service
// (jdbc:h2:tcp://h2:9092/mem:account) and from the host through a published
// port. Ensure is idempotent: it reuses a container built from the same spec
// and recreates one that differs. JDBCURL and MemURL give the datasource URLs.
//
// Ensure takes the desired state as a Spec and its dependencies (the Docker
// client, a *slog.Logger) as Options, as cluster and kafka do.
package h2
