// Package ui is devenv's browser view of a running environment: a
// read-only page on 127.0.0.1 that `devenv up` serves while it watches,
// for a developer's second screen or a workshop's projector.
//
// The conductor (internal/devenv) feeds a Hub as things happen: status
// snapshots of the cluster, the external containers and the services, the
// steps of each save with their durations, how each service was last
// updated (live, swap, rollout), the pods' log lines and the declared
// tests' results. The Server sends the page a Snapshot when it connects and
// every change after it as Server-Sent Events; each client has a bounded
// buffer, and a client that falls behind is dropped (its browser
// reconnects and starts from a new Snapshot), so the loop never waits for
// a browser. Kafka's topics and the live tail of a topic are read on
// demand, through the Kafka interface, only while a page asks.
//
// Nothing here changes the environment: every endpoint answers GET (and
// HEAD) only. Secrets appear by name, never by value. Every asset is
// embedded in the binary and the page asks for nothing outside its own
// origin (its Content-Security-Policy says so too): workshop rooms are
// offline.
package ui
