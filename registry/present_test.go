package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// countingTransport counts the requests by method and path kind.
type countingTransport struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := req.Method + " other"
	switch p := req.URL.Path; {
	case p == "/v2/":
		kind = req.Method + " ping"
	case strings.Contains(p, "/manifests/"):
		kind = req.Method + " manifest"
	}
	c.mu.Lock()
	c.seen[kind]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func TestPresent(t *testing.T) {
	host := testRegistry(t)
	ctx := context.Background()
	var opened atomic.Int32
	for _, tag := range []string{"a/one:1", "b/two:2"} {
		if _, err := Push(ctx, testImage(t, &opened, layerTar(t, "f", tag)), host+"/"+tag, PushOptions{Insecure: true}); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	ir, _ := name.ParseReference(host+"/c/index:1", name.Insecure)
	if err := remote.WriteIndex(ir, idx); err != nil {
		t.Fatal(err)
	}

	refs := []string{host + "/a/one:1", host + "/a/one:absent", host + "/b/two:2", host + "/c/index:1", host + "/new/repo:1"}
	for i := 0; i < 20; i++ { // more than Present asks at once
		refs = append(refs, fmt.Sprintf("%s/b/two:%d", host, 100+i))
	}
	tr := &countingTransport{seen: map[string]int{}}
	got, err := Present(ctx, refs, PushOptions{Insecure: true, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, len(refs))
	want[0], want[2] = true, true
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Present = %v\nwant      %v", got, want)
	}
	if tr.seen["HEAD manifest"] != len(refs) || tr.seen["GET ping"] > 2 || tr.seen["GET manifest"] != 0 {
		t.Errorf("requests %v: want a ping (two schemes at most) and one HEAD per ref", tr.seen)
	}
	if got, err := Present(ctx, nil, PushOptions{Insecure: true}); err != nil || len(got) != 0 {
		t.Errorf("Present of no refs = %v, %v", got, err)
	}

	// Plain HTTP without Insecure: refused, with what to do.
	_, err = Present(ctx, refs[:1], PushOptions{})
	if err == nil || !strings.Contains(err.Error(), "insecure: true") || !strings.Contains(err.Error(), host) {
		t.Errorf("Present over plain HTTP without Insecure: %v", err)
	}
	// A registry that is not there: named, with what to do.
	_, err = Present(ctx, []string{"127.0.0.1:1/x/y:1"}, PushOptions{Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "is the registry running at 127.0.0.1:1?") {
		t.Errorf("Present with no registry: %v", err)
	}
	if _, err := Present(ctx, []string{"Not A Ref"}, PushOptions{}); err == nil || !strings.Contains(err.Error(), "Not A Ref") {
		t.Errorf("Present of a malformed ref: %v", err)
	}
}
