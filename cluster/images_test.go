package cluster

import "testing"

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                        "docker.io/library/busybox:latest",
		"busybox:1.36":                   "docker.io/library/busybox:1.36",
		"user/app:v1":                    "docker.io/user/app:v1",
		"devenv.local/cosmos-account:ab": "devenv.local/cosmos-account:ab",
		"localhost/x":                    "localhost/x:latest",
		"localhost:5000/x:1":             "localhost:5000/x:1",
		"docker.io/library/busybox:1":    "docker.io/library/busybox:1",
	} {
		if got := normalizeRef(in); got != want {
			t.Errorf("normalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCrictlImages(t *testing.T) {
	out := `{"images":[{"id":"sha256:aaa","repoTags":["devenv.local/cosmos-account:4b24"],"repoDigests":[]},
	{"id":"sha256:bbb","repoTags":["docker.io/library/busybox:1.36","docker.io/library/busybox:latest"]},
	{"id":"sha256:ccc","repoTags":[]}]}`
	m, err := parseCrictlImages([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if m["devenv.local/cosmos-account:4b24"] != "sha256:aaa" || m[normalizeRef("busybox")] != "sha256:bbb" || len(m) != 3 {
		t.Errorf("parsed %v", m)
	}
	if _, err := parseCrictlImages([]byte("not json")); err == nil {
		t.Error("no error for output that is not JSON")
	}
}
