// Package evhttptest drives evhttp's admin UI in a real headless browser
// for tests, with chromedp and a local Chromium.
//
// Browser finds the browser at $EVENTO_CHROMIUM, else chromium,
// chromium-browser, google-chrome or headless-shell on PATH. Without one the
// test is skipped with a message that says how to install it, unless
// EVENTO_REQUIRE_BROWSER=1 (set in CI), which makes it a failure instead.
package evhttptest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvRequire names the environment variable that turns a missing browser
// into a test failure.
const EnvRequire = "EVENTO_REQUIRE_BROWSER"

// EnvPath names the environment variable that points at the browser binary.
const EnvPath = "EVENTO_CHROMIUM"

// Path returns the browser binary to use, or "" when none is found (or
// $EVENTO_CHROMIUM names a file that does not exist).
func Path() string {
	if p := os.Getenv(EnvPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a headless browser for the test and returns the chromedp
// context of its first tab, bounded by timeout; the browser is stopped when
// the test ends. It skips (or, with EVENTO_REQUIRE_BROWSER=1, fails) when
// no browser is installed.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		msg := "no Chromium found (install Debian's chromium: apt-get install -y chromium, or set " + EnvPath + ")"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg + "; " + EnvRequire + "=1 requires the browser tests")
		}
		t.Skip(msg + "; skipping the browser test (" + EnvRequire + "=1 makes this a failure)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first call starts the browser and must not carry the timeout
	// (it would bound the browser's life); the returned context does.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start browser %s: %v", path, err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)
	return tctx
}

// Strings evaluates a JavaScript expression that returns an array of
// strings, for instance the texts or ids of the elements a selector finds.
func Strings(ctx context.Context, expr string) ([]string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
}

// IDs returns the id attribute of every element matching the CSS selector,
// in document order.
func IDs(ctx context.Context, selector string) ([]string, error) {
	return Strings(ctx, fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.id)`, selector))
}

// Texts returns the trimmed text of every element matching the CSS
// selector, in document order.
func Texts(ctx context.Context, selector string) ([]string, error) {
	return Strings(ctx, fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.trim())`, selector))
}

// Load navigates to url and waits until the page has loaded.
func Load(ctx context.Context, url string) error {
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("navigate to %s: %w", url, err)
	}
	return waitLoaded(ctx, "")
}

// ClickAndWait clicks the first element matching the CSS selector (a link
// or a submit button) and waits until the browser has loaded the page it
// leads to, at a URL other than the current one.
func ClickAndWait(ctx context.Context, selector string) error {
	old, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return err
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible)); err != nil {
		return fmt.Errorf("click %s: %w", selector, err)
	}
	return waitLoaded(ctx, old)
}

// waitLoaded waits until the document is complete at a URL other than old.
// Evaluations fail while the browser swaps documents; they are retried
// until ctx ends.
func waitLoaded(ctx context.Context, old string) error {
	for {
		loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.href : ""`))
		if err == nil && loc != "" && loc != old {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the page after %s: %w (last error %v)", old, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
