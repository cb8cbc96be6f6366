package images

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/project"
)

// Info describes one stand-in and its image, if present.
type Info struct {
	Name     string    `json:"name"`
	Ref      string    `json:"ref"`
	Replaces string    `json:"replaces,omitempty"` // the real repository, empty if none
	Present  bool      `json:"present"`
	ID       string    `json:"id,omitempty"`
	Size     int64     `json:"size,omitempty"` // bytes
	Created  time.Time `json:"created,omitzero"`
	UpToDate bool      `json:"upToDate"` // present and built from the current recipe
}

// List describes every stand-in in All().
func List(ctx context.Context, cli *client.Client) ([]Info, error) {
	return list(ctx, cli, All())
}

func list(ctx context.Context, cli *client.Client, cat []standin.StandIn) ([]Info, error) {
	hashes, err := recipeHashes(cat)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(cat))
	for _, s := range cat {
		info := Info{Name: s.Name, Ref: s.Ref, Replaces: s.For}
		img, err := cli.ImageInspect(ctx, s.Ref)
		switch {
		case cerrdefs.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("inspecting %s: %w", s.Ref, err)
		default:
			info.Present = true
			info.ID = img.ID
			info.Size = img.Size
			if t, err := time.Parse(time.RFC3339Nano, img.Created); err == nil {
				info.Created = t
			}
			info.UpToDate = img.Config != nil && project.ImageLabel(img.Config.Labels, standin.LabelRecipe) == hashes[s.Name]
		}
		out = append(out, info)
	}
	return out, nil
}
