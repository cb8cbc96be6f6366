package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/devenv-tool/devenv/registry"
)

// A program pushes an image it holds as parts to a registry on this
// machine (plain HTTP, hence Insecure): only the blobs the registry lacks
// are sent.
func ExamplePush() {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"]}}`)
	layer := make([]byte, 1024) // an empty tar: two zero blocks
	img := registry.Image{
		Config: config,
		Layers: []registry.Layer{{
			Digest: "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
			Size:   int64(len(layer)),
			Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil },
		}},
	}
	opts := registry.PushOptions{Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Insecure: true}
	res, err := registry.Push(context.Background(), img, "localhost:5001/shop/account:0123456789ab", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s@%s: %d blobs uploaded, %d already there\n", res.Ref, res.Digest, res.Uploaded, res.Skipped)
}

// A program asks a registry on this machine which of its images it still
// has to push: one question for access, then one short request per tag.
func ExamplePresent() {
	refs := []string{"localhost:5001/shop/account:0123456789ab", "localhost:5001/shop/transfer:ba9876543210"}
	found, err := registry.Present(context.Background(), refs, registry.PushOptions{Insecure: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, ref := range refs {
		if !found[i] {
			fmt.Println("to push:", ref)
		}
	}
}

// A kind cluster created with these patches, and with the files written
// on its nodes, pulls localhost:5001/... images from the registry
// container devenv-registry on the kind network.
func ExampleKindContainerd() {
	cfg, err := registry.KindContainerd("localhost:5001", "devenv-registry:5000")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(cfg.ContainerdConfigPatches), "patches")
	fmt.Println(string(cfg.Files["/etc/containerd/certs.d/localhost:5001/hosts.toml"]))
	// Output:
	// 2 patches
	// # written by devenv: pull from the registry container
	// [host."http://devenv-registry:5000"]
	//   capabilities = ["pull", "resolve"]
}
