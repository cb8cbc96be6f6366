package registry

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// presentQueries bounds the manifests Present asks one registry about at
// once.
const presentQueries = 8

// Present reports, for each of refs (HOST[:PORT]/REPOSITORY:TAG or
// @DIGEST), whether its registry holds it as an image (an index does not
// count, as with ConfigDigest). It asks each registry once for access to
// all of its repositories, then only for the manifests' heads, at most 8
// at a time: a few milliseconds a ref on this machine, against a full
// lookup each with ConfigDigest. Errors name the ref and the registry and
// say what to do.
func Present(ctx context.Context, refs []string, opts PushOptions) ([]bool, error) {
	parsed := make([]name.Reference, len(refs))
	byRegistry := map[string][]int{}
	var order []string
	for i, ref := range refs {
		r, err := parseRef(ref, opts.Insecure)
		if err != nil {
			return nil, err
		}
		parsed[i] = r
		reg := r.Context().RegistryStr()
		if _, ok := byRegistry[reg]; !ok {
			order = append(order, reg)
		}
		byRegistry[reg] = append(byRegistry[reg], i)
	}
	found := make([]bool, len(refs))
	for _, reg := range order {
		if err := present(ctx, parsed, byRegistry[reg], found, opts); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// present fills found[i] for the refs at idx, all of one registry.
func present(ctx context.Context, refs []name.Reference, idx []int, found []bool, opts PushOptions) error {
	reg := refs[idx[0]].Context().Registry
	var scopes []string
	seen := map[string]bool{}
	for _, i := range idx {
		s := refs[i].Context().Scope(transport.PullScope)
		if !seen[s] {
			seen[s] = true
			scopes = append(scopes, s)
		}
	}
	base := &counter{base: opts.Transport, insecure: opts.Insecure, log: logger(opts.Log)}
	if base.base == nil {
		base.base = remote.DefaultTransport
	}
	auth, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		return fmt.Errorf("looking up %s: reading Docker's credentials for %s: %w", refs[idx[0]], reg.RegistryStr(), err)
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, base, scopes)
	if err != nil {
		return explain(ctx, "looking up "+refs[idx[0]].String(), reg.RegistryStr(), err)
	}
	client := &http.Client{Transport: tr}
	errs := make([]error, len(idx))
	sem := make(chan struct{}, presentQueries)
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			found[i], errs[k] = head(ctx, client, refs[i])
		})
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			return explain(ctx, "looking up "+refs[idx[k]].String(), reg.RegistryStr(), err)
		}
	}
	return nil
}

// head asks for the head of r's manifest: true for an image, false for an
// index or when the registry has no such manifest.
func head(ctx context.Context, client *http.Client, r name.Reference) (bool, error) {
	repo := r.Context()
	url := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), r.Identifier())
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return false, err
	}
	for _, mt := range []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2, types.OCIImageIndex, types.DockerManifestList} {
		req.Header.Add("Accept", string(mt))
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return false, transport.CheckError(resp, http.StatusOK)
	}
	mt := types.MediaType(resp.Header.Get("Content-Type"))
	return !mt.IsIndex(), nil
}
