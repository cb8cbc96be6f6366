package images

import (
	"context"
	"slices"
)

// Needed returns the names of the stand-ins that must exist for refs: for
// each reference that is neither present nor pullable, the stand-in that
// replaces it; a reference that names a stand-in itself (devenv.local/...)
// needs that stand-in. References with neither are left out: using them
// fails later with the image's name. On a machine that can pull every
// reference, Needed returns nothing.
func (r *Resolver) Needed(ctx context.Context, refs []string) ([]string, error) {
	var names []string
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, ref := range refs {
		if name := r.ownStandIn(ref); name != "" {
			add(name)
			continue
		}
		present, err := r.present(ctx, ref)
		if err != nil {
			return nil, err
		}
		if present {
			continue
		}
		if err := r.pull(ctx, ref); err == nil {
			continue
		} else if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		add(r.standInName(ref))
	}
	return names, nil
}

// ownStandIn returns the name of the catalogue stand-in whose Ref is ref.
func (r *Resolver) ownStandIn(ref string) string {
	for _, s := range r.catalogue() {
		if s.Ref == ref {
			return s.Name
		}
	}
	return ""
}
