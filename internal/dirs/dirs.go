package dirs

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Environment variables that choose the folders.
const (
	CacheEnv = "DEVENV_CACHE"
	StateEnv = "DEVENV_STATE"
)

// Cache returns devenv's cache folder, creating it when missing.
func Cache() (string, error) {
	return ensure(cacheRule, os.Getenv, os.Geteuid())
}

// State returns devenv's state folder, creating it when missing.
func State() (string, error) {
	return ensure(stateRule, os.Getenv, os.Geteuid())
}

// rule says where one folder is: its own variable, else the XDG variable
// plus "devenv", else the folder under $HOME.
type rule struct {
	what   string // "cache", "state"
	env    string // DEVENV_CACHE
	xdg    string // XDG_CACHE_HOME
	inHome string // .cache/devenv
}

var (
	cacheRule = rule{what: "cache", env: CacheEnv, xdg: "XDG_CACHE_HOME", inHome: filepath.Join(".cache", "devenv")}
	stateRule = rule{what: "state", env: StateEnv, xdg: "XDG_STATE_HOME", inHome: filepath.Join(".local", "state", "devenv")}
)

// path applies the rule. A relative XDG or HOME value is ignored, as the
// XDG base directory specification asks.
func (r rule) path(getenv func(string) string) (string, error) {
	if dir := getenv(r.env); dir != "" {
		return filepath.Abs(dir)
	}
	if x := getenv(r.xdg); filepath.IsAbs(x) {
		return filepath.Join(x, "devenv"), nil
	}
	if home := getenv("HOME"); filepath.IsAbs(home) {
		return filepath.Join(home, r.inHome), nil
	}
	return "", fmt.Errorf("finding devenv's %s folder: neither %s, %s nor HOME is set; set %s to a folder of your own", r.what, r.env, r.xdg, r.env)
}

// ensure finds the folder, creates it 0700 when missing, and checks that it
// is the user's own.
func ensure(r rule, getenv func(string) string, uid int) (string, error) {
	dir, err := r.path(getenv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating devenv's %s folder: %w (set %s to choose another)", r.what, err, r.env)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("checking devenv's %s folder: %w", r.what, err)
	}
	if err := checkOwn(dir, fi, uid); err != nil {
		return "", fmt.Errorf("refusing devenv's %s folder: %w; set %s to a folder of your own", r.what, err, r.env)
	}
	return dir, nil
}

// checkOwn refuses a folder that is not a directory, that another user owns,
// or that the group or others may write to.
func checkOwn(dir string, fi os.FileInfo, uid int) error {
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
		return fmt.Errorf("%s belongs to user %d, not to you (%d)", dir, st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("other users may write to %s (mode %04o; chmod go-w %s)", dir, perm, dir)
	}
	return nil
}
