// Package watch tells devenv's inner loop which services' sources changed.
//
// A Watcher puts an inotify watch (through fsnotify) on every directory under
// each service's build context, recursively, and picks up directories created
// later (scanning them once added, so files written before the watch existed
// are not lost). Directories and files excluded by the context's .dockerignore
// and .gitignore, by the spec's Ignore patterns, editor temporary files and
// .git are ignored; ignored directories are not even watched.
//
// Events are coalesced the way Tilt's watcher does it: changes are collected
// until no new one arrives for a quiet period (200 ms by default), capped at a
// maximum (10 s), and then handed out as one Batch that maps each service to
// the paths that changed under its root. A batch of at most 4 paths (an
// editor's save) waits a short quiet period instead (50 ms by default), so
// that a save is served sooner; one that grows past that (a checkout, a
// generator) waits the full one from its last change.
//
// inotify's limits are turned into errors that say which sysctl to raise.
package watch
