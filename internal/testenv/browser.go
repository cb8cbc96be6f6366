package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is the browser the browser tests drive: Debian's chromium
// package (no browser is downloaded at run time).
const ChromiumPath = "/usr/bin/chromium"

// Browser is a headless Chromium with one tab, for a test. It records the
// URL of every request the tab makes.
type Browser struct {
	Ctx  context.Context
	mu   sync.Mutex
	urls []string
}

// NewBrowser starts Chromium for tb, with a user data folder of its own,
// and stops it when tb ends. It skips tb when ChromiumPath is missing, or
// fails it when DEVENV_REQUIRE_IMAGES is set (as it is in CI, where `make
// setup` installs it).
func NewBrowser(tb testing.TB) *Browser {
	tb.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("DEVENV_REQUIRE_IMAGES") != "" {
			tb.Fatalf("the browser test needs Debian's chromium at %s (make setup installs it): %v", ChromiumPath, err)
		}
		tb.Skipf("the browser test needs Debian's chromium at %s (apt-get install chromium): %v", ChromiumPath, err)
	}
	actx, stopAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1600, 1400),
	)
	ctx, stop := chromedp.NewContext(actx)
	tb.Cleanup(func() { stop(); stopAlloc() })
	b := &Browser{Ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	}); err != nil {
		tb.Fatalf("starting %s: %v", ChromiumPath, err)
	}
	return b
}

// Open loads url in the tab.
func (b *Browser) Open(tb testing.TB, u string) {
	tb.Helper()
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(u)); err != nil {
		tb.Fatalf("opening %s: %v", u, err)
	}
}

// Eval evaluates a JavaScript expression in the tab.
func Eval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// WaitFor waits up to timeout until the page has an element matching the
// CSS selector sel, and fails tb with what the page shows otherwise.
func (b *Browser) WaitFor(tb testing.TB, sel string, timeout time.Duration) {
	tb.Helper()
	b.WaitTrue(tb, fmt.Sprintf("!!document.querySelector(%q)", sel), timeout)
}

// WaitTrue waits up to timeout until the JavaScript expression expr is
// true in the page, and fails tb with what the page shows otherwise.
func (b *Browser) WaitTrue(tb testing.TB, expr string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := Eval[bool](b, expr)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := Eval[string](b, "document.body ? document.body.innerText : ''")
			tb.Fatalf("still false after %s: %s (%v); the page shows:\n%s", timeout, expr, err, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Screenshot saves the whole page as name.png in ArtifactDir and returns
// its path.
func (b *Browser) Screenshot(tb testing.TB, name string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	if err != nil {
		tb.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(ArtifactDir(tb), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot: %s", p)
	return p
}

// Requests returns the URLs of the requests the tab made so far.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.urls...)
}

// OffLoopback returns the requests of the tab that went elsewhere than
// 127.0.0.1 (data: URLs stay in the page).
func (b *Browser) OffLoopback() []string {
	var out []string
	for _, r := range b.Requests() {
		u, err := url.Parse(r)
		if err == nil && (u.Scheme == "data" || (strings.HasPrefix(u.Scheme, "http") && u.Hostname() == "127.0.0.1")) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// ArtifactDir is where a test keeps what it leaves for people to look at
// (screenshots): $DEVENV_TEST_ARTIFACTS/<test name> when that is set, else
// a temporary folder that goes with the test.
func ArtifactDir(tb testing.TB) string {
	tb.Helper()
	root := os.Getenv("DEVENV_TEST_ARTIFACTS")
	if root == "" {
		return tb.TempDir()
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}
