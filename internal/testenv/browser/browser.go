// Package browser drives Debian's Chromium for the dashboard's tests. Apart
// from testenv so that test binaries without a browser do not build chromedp.
package browser

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"etcdapi/internal/testenv"
)

// Open opens url in Debian's Chromium, headless, with a window of width x
// height; the browser stops with the test. Without chromium it fails under
// CI=true and skips elsewhere.
func Open(t testing.TB, url string, width, height int) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Require(t, "chromium", "apt-get install chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(width, height),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first Run starts the browser: no timeout on it (a timeout would stop the browser).
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// WaitFor polls a JavaScript condition in the page until it holds, failing the
// test (with the page's text) after within; it returns how long it took.
func WaitFor(t testing.TB, ctx context.Context, what, js string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
		t.Logf("page:\n%s", page)
		t.Fatalf("%s: not seen within %s: %v", what, within, err)
	}
	took := time.Since(began)
	t.Logf("%s: seen after %s", what, took.Round(time.Millisecond))
	return took
}
