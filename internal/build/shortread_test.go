package build

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestShortReadIsChangedWhileRead: a file that holds fewer bytes than its
// stat said a moment before (an editor truncating it to write it again)
// gives ErrChangedWhileRead, which the caller retries; other errors stay.
func TestShortReadIsChangedWhileRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "version.txt")
	if err := os.WriteFile(p, []byte("v12"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = io.CopyN(io.Discard, f, 10) // the size a stat before the truncation gave
	if err := shortRead(err); !errors.Is(err, ErrChangedWhileRead) {
		t.Errorf("short read: %v, want ErrChangedWhileRead", err)
	}
	other := errors.New("permission denied")
	if err := shortRead(other); err != other {
		t.Errorf("other error: %v, want it unchanged", err)
	}
}
