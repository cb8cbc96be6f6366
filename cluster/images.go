package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// MissingImages returns the refs (Docker images) that some node of the
// cluster does not hold with the same image ID, in the order given: the
// images LoadImage would load. It asks each node's containerd once for its
// whole image list (through the Docker API, in parallel across nodes), so
// that checking many services costs one round trip per node, not one
// `docker exec` per image and node.
func (c *Cluster) MissingImages(ctx context.Context, docker *client.Client, refs []string) ([]string, error) {
	snap, err := snapshotImages(ctx, docker, c.Name)
	if err != nil {
		return nil, err
	}
	return snap.missing(ctx, docker, refs)
}

// imageSnapshot is what each node of a kind cluster held at one moment.
type imageSnapshot struct {
	images []map[string]string // per node: normalized tag -> image ID
	errs   []error
}

// snapshotImages lists the images every node of cluster name holds.
func snapshotImages(ctx context.Context, docker *client.Client, name string) (*imageSnapshot, error) {
	nodes, err := docker.ContainerList(ctx, client.ContainerListOptions{
		Filters: client.Filters{}.Add("label", kindClusterLabel+"="+name),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the nodes of cluster %q: %w", name, err)
	}
	if len(nodes.Items) == 0 {
		return nil, fmt.Errorf("cluster %q has no running nodes: run `devenv up` to create it again", name)
	}
	s := &imageSnapshot{images: make([]map[string]string, len(nodes.Items)), errs: make([]error, len(nodes.Items))}
	var wg sync.WaitGroup
	for i, n := range nodes.Items {
		wg.Go(func() { s.images[i], s.errs[i] = nodeImages(ctx, docker, n.ID) })
	}
	wg.Wait()
	return s, nil
}

// missing returns the refs that some node of the snapshot did not hold with
// the image ID Docker has for them, in the order given.
func (s *imageSnapshot) missing(ctx context.Context, docker *client.Client, refs []string) ([]string, error) {
	want := make(map[string]string, len(refs)) // ref -> Docker image ID
	for _, ref := range refs {
		img, err := docker.ImageInspect(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("checking image %s: it is not in Docker (build it first): %w", ref, err)
		}
		want[ref] = img.ID
	}
	var missing []string
	for _, ref := range refs {
		for i, have := range s.images {
			// A node that could not be asked: LoadImage checks it itself.
			if s.errs[i] != nil || have[normalizeRef(ref)] != want[ref] {
				missing = append(missing, ref)
				break
			}
		}
	}
	return missing, nil
}

// nodeImages maps each tag a node's containerd holds (in its normalized
// form, e.g. docker.io/library/busybox:1) to the image's ID.
func nodeImages(ctx context.Context, docker *client.Client, node string) (map[string]string, error) {
	out, code, err := dockerx.Exec(ctx, docker, node, []string{"crictl", "images", "-o", "json"}, nil, nil)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("listing the images of node %s: crictl exited %d: %s", node, code, strings.TrimSpace(out))
	}
	return parseCrictlImages([]byte(out))
}

func parseCrictlImages(b []byte) (map[string]string, error) {
	var list struct {
		Images []struct {
			ID       string   `json:"id"`
			RepoTags []string `json:"repoTags"`
		} `json:"images"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("reading crictl's image list: %w", err)
	}
	m := map[string]string{}
	for _, img := range list.Images {
		for _, t := range img.RepoTags {
			m[normalizeRef(t)] = img.ID
		}
	}
	return m, nil
}

// normalizeRef spells an image reference as containerd lists it: with a
// registry host (docker.io by default, library/ for official images) and a
// tag (latest by default).
func normalizeRef(ref string) string {
	name, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	if tag == "" && !strings.Contains(name, "@") {
		tag = "latest"
	}
	first, _, found := strings.Cut(name, "/")
	switch {
	case !found:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	if tag == "" {
		return name
	}
	return name + ":" + tag
}

// Unlisted returns the refs that the status of some node of the cluster
// does not list among the node's images, in the order given; an error when
// the nodes cannot be read. The kubelet reports what each node holds (by
// name, the largest 50 images), so this costs one API request instead of a
// `crictl` in every node. A listed ref is on the node unless it was removed
// since the kubelet's last report; an unlisted one may have arrived since,
// or be beyond the 50: MissingImages asks the nodes themselves. Only refs
// whose tag names their content (as devenv's service images do) can be
// trusted this way: for any other ref, Unlisted reports it unlisted.
func (c *Cluster) Unlisted(ctx context.Context, refs []string) ([]string, error) {
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the nodes of cluster %q: %w", c.Name, err)
	}
	if len(nodes.Items) == 0 {
		return slices.Clone(refs), nil
	}
	var out []string
	for _, ref := range refs {
		want := normalizeRef(ref)
		listed := contentTagged(ref)
		for i := range nodes.Items {
			if !listed {
				break
			}
			listed = false
			for _, img := range nodes.Items[i].Status.Images {
				if slices.Contains(img.Names, want) || slices.Contains(img.Names, ref) {
					listed = true
					break
				}
			}
		}
		if !listed {
			out = append(out, ref)
		}
	}
	return out, nil
}

// contentTagged says whether ref's tag is a hex digest prefix of at least
// 12 characters, as the tags of devenv's service images are.
func contentTagged(ref string) bool {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return false
	}
	tag := ref[i+1:]
	if len(tag) < 12 {
		return false
	}
	for _, r := range tag {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}
