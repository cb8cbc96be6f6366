package config

import (
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// cluster decodes the cluster: section. With context:, the settings of a
// kind cluster devenv would create (name, image) are refused, naming both
// places; one written in a file before the one that sets context: is
// overridden by it instead, so that an override file (-f shared.yaml) can
// move a project whose devenv.yaml names its kind cluster to an existing one.
func (d *decoder) cluster(c *Cluster, n *yaml.Node, s *schemaNode) {
	var nameNode, imageNode, contextNode, kubeconfigNode *yaml.Node
	d.object(n, "cluster", s, func(key string, _, v *yaml.Node) {
		field := "cluster." + key
		switch key {
		case "name":
			c.Name, nameNode = d.str(v, field), v
			d.dnsLabel(v, field, c.Name, "cluster name")
		case "image":
			c.Image, imageNode = d.str(v, field), v
		case "context":
			c.Context, contextNode = d.str(v, field), v
			if c.Context == "" {
				d.errorf(v, field, "empty; name a context of your kubeconfig (kubectl config get-contexts), or remove context: to use a kind cluster devenv creates")
			}
		case "kubeconfig":
			c.Kubeconfig, kubeconfigNode = d.homePath(v, field), v
		}
	})
	if c.Context == "" {
		return
	}
	if nameNode != nil {
		if d.before(nameNode, contextNode) {
			c.Name = ""
		} else {
			np := d.pos(nameNode)
			d.errorf(contextNode, "cluster.context", "cluster.name is set too (%s:%d); name is a kind cluster devenv creates, context an existing cluster it does not: keep one", np.File, np.Line)
		}
	}
	if imageNode != nil {
		if d.before(imageNode, contextNode) {
			c.Image = ""
		} else {
			cp := d.pos(contextNode)
			d.errorf(imageNode, "cluster.image", "devenv does not create the cluster of cluster.context (%s:%d), so the node image has no effect; remove it", cp.File, cp.Line)
		}
	}
	c.Name, c.Image = "", ""
	if c.Kubeconfig != "" {
		if st, err := os.Stat(c.Kubeconfig); err != nil || !st.Mode().IsRegular() {
			d.errorf(kubeconfigNode, "cluster.kubeconfig", "%s is not a file; cluster.context %q is looked up in it", c.Kubeconfig, c.Context)
		}
	}
}

// before reports whether n was written in a file given to Load before the
// file of other.
func (d *decoder) before(n, other *yaml.Node) bool {
	return d.fileIndex(n) < d.fileIndex(other)
}

func (d *decoder) fileIndex(n *yaml.Node) int {
	f := d.file[n]
	for i, name := range d.files {
		if name == f {
			return i
		}
	}
	return len(d.files)
}

// homePath is filePath with a leading ~ or ~/ meaning the home folder.
func (d *decoder) homePath(n *yaml.Node, field string) string {
	p := d.str(n, field)
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			d.errorf(n, field, "cannot expand ~: %v; write the path in full", err)
			return ""
		}
		return filepath.Join(home, p[1:])
	case strings.HasPrefix(p, "~"):
		d.errorf(n, field, "%q: only ~ and ~/... (your own home folder) are expanded; write the path in full", p)
		return ""
	}
	return d.filePath(n, field)
}
