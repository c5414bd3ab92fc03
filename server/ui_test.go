package server

import (
	"context"
	"fmt"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"etcdapi/internal/testenv/browser"
)

// TestDashboardInARealBrowser drives Debian's Chromium through the dashboard.
// Screenshots go to the test's artifact directory (go test -artifacts); docs/dashboard.png
// comes from the demo's browser test (TestDemoDashboardInARealBrowser).
func TestDashboardInARealBrowser(t *testing.T) {
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	ctx := browser.Open(t, srv.URL+"/ui/", 1280, 720)
	waitFor := func(what, js string, within time.Duration) {
		t.Helper()
		browser.WaitFor(t, ctx, what, js, within)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(t.ArtifactDir(), name), png, 0o644)
	}

	waitFor("live status", `document.querySelector("#status").textContent === "ao vivo"`, 10*time.Second)

	// A user created through the form shows in the table.
	name := fmt.Sprintf("Navegador %d", time.Now().UnixNano())
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#user-nome"), name),
		chromedp.SendKeys(chromedp.CSS("#user-email"), "navegador@email.com"),
		chromedp.SendKeys(chromedp.CSS("#user-idade"), "33"),
		chromedp.Click(chromedp.CSS("#user-save")),
	); err != nil {
		t.Fatal(err)
	}
	waitFor("user in the table", fmt.Sprintf(`[...document.querySelectorAll("#users tbody td")].some(td => td.textContent === %q)`, name), 5*time.Second)

	// A configuration change made with a plain HTTP call appears within 1 s.
	call(t, api, "PUT", "/config/navegador", `{"valor": "mudou pelo curl"}`)
	waitFor("config change", `document.querySelector('#config tr[data-chave="navegador"] .valor')?.textContent === '"mudou pelo curl"'`, time.Second)

	// A service with TTL 5 counts down, then vanishes.
	id := register(t, `{"nome":"painel","endpoint":"http://localhost:9999","ttl":5}`)["id"].(string)
	row := fmt.Sprintf(`document.querySelector('#services tr[data-id=%q]')`, id)
	waitFor("service listed", row+` !== null`, 2*time.Second)
	acquire(t, "painel", `{"holder":"navegador","ttl":30}`)
	waitFor("lock listed", `document.querySelector('#locks tr[data-recurso="painel"]') !== null`, 2*time.Second)
	shot("dashboard.png")
	ttl := chromedp.Evaluate[string](row + `.querySelector(".ttl").textContent`)
	first, _ := chromedp.Run(ctx, ttl)
	time.Sleep(2 * time.Second)
	later, _ := chromedp.Run(ctx, ttl)
	if first == later {
		t.Fatalf("TTL does not count down: %q then %q", first, later)
	}
	waitFor("service gone after its TTL", row+` === null`, 7*time.Second)
	shot("dashboard-after-expiry.png")

	// A lock's line, an election's leader and a semaphore's holders show live.
	waiter := async(srv.Client(), "POST", srv.URL+"/lock/painel", `{"holder":"na-fila","aguardar":10}`)
	waitFor("lock's line", `document.querySelector('#locks tr[data-recurso="painel"] td:last-child')?.textContent === "1"`, 2*time.Second)
	call(t, api, "DELETE", "/lock/painel", "")
	got200(t, waiter)
	leader := decode[obj](t, call(t, api, "POST", "/eleicao/painel/candidatar", `{"candidato":"navegador","valor":"10.0.0.1","ttl":6}`))
	waitFor("election's leader", `[...document.querySelectorAll("#elections td")].some(td => td.textContent === "★ navegador")`, 2*time.Second)
	// Renewed, the leader outlives the countdown the page had: the page learns it
	// (a renovar writes no key, so no event comes).
	leaderTTL := `parseInt([...document.querySelectorAll("#elections tr")].find(r => r.textContent.includes("★ navegador"))?.querySelector(".ttl")?.textContent)`
	waitFor("leader's countdown under way", leaderTTL+` <= 4`, 4*time.Second)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.oldExpiry = Date.now() + (`+leaderTTL+`) * 1000) > 0`)); err != nil {
		t.Fatal(err)
	}
	expect(t, call(t, api, "POST", "/eleicao/painel/renovar", `{"token":`+token(leader)+`}`), 200)
	waitFor("renewed leader's time left", `Date.now() > window.oldExpiry + 500 && `+leaderTTL+` >= 1`, 5*time.Second)
	slot := decode[obj](t, call(t, api, "POST", "/semaforo/painel", `{"holder":"navegador","limite":3}`))
	waitFor("semaphore's holders", `[...document.querySelectorAll("#semaphores td")].some(td => td.textContent === "1/3")`, 2*time.Second)
	shot("dashboard-coordination.png")
	call(t, api, "DELETE", "/eleicao/painel?token="+token(leader), "")
	call(t, api, "DELETE", "/semaforo/painel?token="+token(slot), "")
	call(t, api, "DELETE", "/lock/painel", "")
}

// With API_TOKEN set, the page asks for the token once, however many of its
// requests were refused at once, and every part of it uses it: the elections
// and semaphores (coord.js) too, which it lists at load and no event reloads.
func TestDashboardAsksForTheTokenOnceAndUsesItEverywhere(t *testing.T) {
	cfg := testConfig()
	cfg.Token = "segredo-do-painel"
	srv := httptest.NewServer(New(st, cfg, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	leader := decode[obj](t, call(t, api, "POST", "/eleicao/com-token/candidatar", `{"candidato":"painel-com-token","ttl":60}`))
	holder := decode[obj](t, call(t, api, "POST", "/semaforo/com-token", `{"holder":"painel-com-token","limite":2,"ttl":60}`))
	t.Cleanup(func() { // other tests count the keys left behind
		call(t, api, "DELETE", fmt.Sprintf("/eleicao/com-token?token=%d", num(leader, "token")), "")
		call(t, api, "DELETE", fmt.Sprintf("/semaforo/com-token?token=%d", num(holder, "token")), "")
	})

	ctx := browser.Open(t, "about:blank", 1280, 720)
	var prompts atomic.Int32
	opening := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range opening {
			if err != nil {
				return
			}
			prompts.Add(1)
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
				_, err := cdp.Call(ctx, target, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true, PromptText: cfg.Token})
				return err
			}))
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/")); err != nil {
		t.Fatal(err)
	}
	browser.WaitFor(t, ctx, "live status", `document.querySelector("#status").textContent === "ao vivo"`, 10*time.Second)
	browser.WaitFor(t, ctx, "the election, listed with the token", `[...document.querySelectorAll("#elections td")].some(td => td.textContent === "★ painel-com-token")`, 3*time.Second)
	browser.WaitFor(t, ctx, "the semaphore, listed with the token", `[...document.querySelectorAll("#semaphores td")].some(td => td.textContent === "com-token")`, 3*time.Second)
	if n := prompts.Load(); n != 1 {
		t.Fatalf("the page asked for the token %d times, want once", n)
	}
}
