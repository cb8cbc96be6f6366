package dirs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	for _, c := range []struct {
		name string
		r    rule
		env  map[string]string
		want string // "" = an error naming the variable
	}{
		{"cache: DEVENV_CACHE first", cacheRule, map[string]string{"DEVENV_CACHE": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/c"},
		{"cache: XDG next", cacheRule, map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/devenv"},
		{"cache: relative XDG ignored", cacheRule, map[string]string{"XDG_CACHE_HOME": "x", "HOME": "/h"}, "/h/.cache/devenv"},
		{"cache: HOME last", cacheRule, map[string]string{"HOME": "/h"}, "/h/.cache/devenv"},
		{"cache: nothing set", cacheRule, nil, ""},
		{"cache: relative HOME ignored", cacheRule, map[string]string{"HOME": "h"}, ""},
		{"state: DEVENV_STATE first", stateRule, map[string]string{"DEVENV_STATE": "/s", "DEVENV_CACHE": "/c", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/s"},
		{"state: XDG next", stateRule, map[string]string{"XDG_STATE_HOME": "/x", "XDG_CACHE_HOME": "/c", "HOME": "/h"}, "/x/devenv"},
		{"state: HOME last", stateRule, map[string]string{"DEVENV_CACHE": "/c", "HOME": "/h"}, "/h/.local/state/devenv"},
		{"state: nothing set", stateRule, map[string]string{"DEVENV_CACHE": "/c"}, ""},
	} {
		got, err := c.r.path(func(k string) string { return c.env[k] })
		switch {
		case c.want == "" && (err == nil || !strings.Contains(err.Error(), "set "+c.r.env)):
			t.Errorf("%s: got %q, %v; want an error that says to set %s", c.name, got, err, c.r.env)
		case c.want != "" && (err != nil || got != c.want):
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestEnsureCreatesPrivateFolder(t *testing.T) {
	base := t.TempDir()
	getenv := func(k string) string { return map[string]string{"HOME": base}[k] }
	dir, err := ensure(cacheRule, getenv, os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(base, ".cache", "devenv"); dir != want {
		t.Errorf("dir %s, want %s", dir, want)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, %v; want 0700", fi.Mode(), err)
	}
	// Again: the folder is there and is accepted as it is.
	if again, err := ensure(cacheRule, getenv, os.Geteuid()); err != nil || again != dir {
		t.Errorf("second call: %q, %v", again, err)
	}
}

func TestEnsureRefuses(t *testing.T) {
	base := t.TempDir()
	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil { // not through Mkdir: the umask would clear bits
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(base, "own")
	for _, c := range []struct {
		name, dir string
		uid       int
		want      string
	}{
		{"world-writable", shared, os.Geteuid(), "other users may write to " + shared},
		{"not a folder", file, os.Geteuid(), "not a directory"},
		{"another user's", own, os.Geteuid() + 1, "not to you"},
	} {
		getenv := func(k string) string { return map[string]string{"DEVENV_STATE": c.dir}[k] }
		_, err := ensure(stateRule, getenv, c.uid)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "set DEVENV_STATE") {
			t.Errorf("%s: %v; want an error with %q that says to set DEVENV_STATE", c.name, err, c.want)
		}
	}
}

func TestCacheAndStateHonourTheirVariables(t *testing.T) {
	cache, state := filepath.Join(t.TempDir(), "c"), filepath.Join(t.TempDir(), "s")
	t.Setenv(CacheEnv, cache)
	t.Setenv(StateEnv, state)
	if got, err := Cache(); err != nil || got != cache {
		t.Errorf("Cache() = %q, %v; want %s", got, err, cache)
	}
	if got, err := State(); err != nil || got != state {
		t.Errorf("State() = %q, %v; want %s", got, err, state)
	}
}
