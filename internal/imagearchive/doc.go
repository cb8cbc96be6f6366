// Package imagearchive reads the archives `docker save` writes, in both
// formats Docker has used: the legacy docker-archive (Docker before 25:
// manifest.json naming <id>/layer.tar files and a <hex>.json config, a
// repeated layer a symbolic link to its first copy) and the OCI image
// layout (Docker 25 and later, and the containerd image store:
// blobs/sha256/<hex>, index.json, possibly nested indexes, layers possibly
// gzip-compressed, and a manifest.json naming blobs as well).
//
// `docker save` is a stream, and which entry is a layer is known only at
// its end (manifest.json comes last), so Read makes one pass: it keeps the
// archive's JSON (manifests, indexes, configs) in memory, checks every
// blob against its digest, and hands every other regular file to the
// caller's function as it passes, to keep what it needs of it (headers
// only, an uncompressed copy on disk, the bytes as stored). Images and One
// then say which images the archive holds: their names, config and layers
// in order, each layer the path of the entry the caller was handed.
//
// Three parts of devenv read these archives: internal/build (the folders
// of a base image, from tar headers only), internal/registryx (the layers,
// uncompressed, to push to a registry) and cluster (the layers a kind node
// lacks, to load only those).
package imagearchive
