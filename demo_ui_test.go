package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"etcdapi/internal/testenv/browser"
)

// TestDemoDashboardInARealBrowser drives `etcdapi demo` from Debian's Chromium as a
// presenter would: the tour's steps, then the leader stopped from the page while
// writes go on, the member started again catching up, and quorum lost and regained.
// Screenshots go to the test's artifact directory (go test -artifacts), and to
// docs/dashboard.png and docs/roteiro.png with UPDATE_SCREENSHOT=1.
func TestDemoDashboardInARealBrowser(t *testing.T) {
	p, _ := startDemo(t)
	api := p.API
	// History from before the page opens: the event feed shows it on load.
	if code, _ := request[obj](t, "PUT", api+"/config/antes-da-pagina", `{"valor":"já estava"}`); code != 200 {
		t.Fatalf("write: %d", code)
	}

	ctx := browser.Open(t, api+"/ui/", 1280, 900)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000)); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what, js string, within time.Duration) time.Duration {
		t.Helper()
		return browser.WaitFor(t, ctx, what, js, within)
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	// The page redraws its tables as events arrive: a button found may be
	// replaced before the click lands on it ("Could not find node"). Find it again.
	click := func(sel string) {
		t.Helper()
		var err error
		for range 3 {
			if err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err == nil {
				return
			}
		}
		t.Fatalf("click %s: %v", sel, err)
	}
	shot := func(name, sel string) {
		t.Helper()
		var png []byte
		var err error
		if sel == "" {
			png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		} else {
			png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel), chromedp.NodeVisible))
		}
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(t.ArtifactDir(), name), png, 0o644)
		if os.Getenv("UPDATE_SCREENSHOT") == "1" && (name == "dashboard.png" || name == "roteiro.png") {
			os.WriteFile(filepath.Join("docs", name), png, 0o644)
		}
	}
	done := func(step string) string {
		return fmt.Sprintf(`document.querySelector('#tour li[data-step=%q]')?.classList.contains("done")`, step)
	}
	const leaderRow = `(document.querySelector('#cluster tr[data-lider="true"]')?.dataset.nome ?? "")`

	waitFor("live status", `document.querySelector("#status").textContent === "ao vivo"`, 10*time.Second)
	waitFor("demo buttons", `document.querySelectorAll("#cluster button.parar").length === 3`, 5*time.Second)
	waitFor("a leader", leaderRow+` !== ""`, 5*time.Second)
	waitFor("history in the feed on load", `[...document.querySelectorAll("#events code")].some(c => c.textContent === "/config/app/antes-da-pagina")`, 3*time.Second)

	if eval(`String(`+done("config")+`)`) != "false" {
		t.Fatal("the feed's history ticked a tour step: only what happens after the page opened should")
	}
	// The tour ticks as the curl commands of its steps happen.
	call := func(method, path, body string) {
		t.Helper()
		if code, got := request[obj](t, method, api+path, body); code >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, code, got)
		}
	}
	call("PUT", "/config/limite", `{"valor":100}`)
	waitFor("tour: configuration", done("config"), 2*time.Second)
	call("POST", "/servicos/registrar", `{"nome":"pagamentos","endpoint":"http://10.0.0.5:8080","ttl":5}`)
	call("POST", "/lock/relatorio", `{"holder":"worker-a","ttl":5}`)
	call("POST", "/lock/relatorio", `{"holder":"worker-b","aguardar":10}`) // waits for worker-a's lease to expire
	waitFor("tour: lock with a larger token", done("lock"), 2*time.Second)
	waitFor("tour: service expired", done("ttl"), 8*time.Second)
	// Fencing: worker-a's lease runs out, worker-b takes the lock, and
	// worker-a's write with its old token is refused while worker-b's lands.
	tokenOf := func(body string) int64 {
		t.Helper()
		code, got := request[obj](t, "POST", api+"/lock/fatura", body)
		if code != 200 {
			t.Fatalf("lock fatura %s: %d %v", body, code, got)
		}
		return int64(got["token"].(float64))
	}
	a := tokenOf(`{"holder":"worker-a","ttl":5}`)
	b := tokenOf(`{"holder":"worker-b","aguardar":10}`)
	guarded := func(token int64, value string) (int, obj) {
		code, got, _ := send(t, "PUT", api+"/config/fatura", value, "Etcdapi-Guarda", fmt.Sprintf("lock=fatura; token=%d", token))
		return code, got
	}
	if code, got := guarded(a, `{"valor":"de worker-a"}`); code != 409 || got["token_atual"] != float64(b) {
		t.Fatalf("worker-a's write with its old token %d: %d %v, want 409 with token_atual %d", a, code, got, b)
	}
	if code, got := request[obj](t, "GET", api+"/config/fatura", ""); code != 404 {
		t.Fatalf("after worker-a's refused write: %d %v, want nothing written", code, got)
	}
	if code, got := guarded(b, `{"valor":"de worker-b"}`); code != 200 {
		t.Fatalf("worker-b's write with token %d: %d %v", b, code, got)
	}
	waitFor("tour: fencing", done("fencing"), 2*time.Second)
	if code, got := request[obj](t, "POST", api+"/eleicao/agendador/candidatar", `{"candidato":"worker-a","ttl":10}`); code != 200 {
		t.Fatalf("campaign: %d %v", code, got)
	}
	waitFor("tour: leader elected", done("election"), 2*time.Second)

	// Writes go on, once every 100 ms, while the leader is stopped from the page.
	var (
		mu     sync.Mutex
		codes  = map[int]int{}
		stop   = make(chan struct{})
		writer sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	writer.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			req, _ := http.NewRequest("PUT", api+"/config/contador", strings.NewReader(fmt.Sprintf(`{"valor":%d}`, n)))
			req.Header.Set("Content-Type", "application/json")
			code := 0
			if resp, err := client.Do(req); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}
	})
	old := eval(leaderRow)
	mu.Lock()
	clear(codes) // from the stop on
	mu.Unlock()
	click(fmt.Sprintf(`#cluster tr[data-nome=%q] button.parar`, old))
	newLeader := waitFor("new leader on the page", fmt.Sprintf(`(%s) !== "" && (%s) !== %q && document.querySelector('#cluster tr[data-nome=%q]').dataset.estado !== "ativo"`, leaderRow, leaderRow, old, old), 5*time.Second)
	waitFor("tour: failover with writes going on", done("failover"), 5*time.Second)
	shot("dashboard.png", "")
	answered := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range codes {
			n += c
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); answered() < 10; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) { // ten writes answered since the stop, whatever their status
			t.Fatalf("%d writes answered in 10 s after the leader was stopped", answered())
		}
	}
	close(stop)
	writer.Wait()
	t.Logf("writes while the leader was stopped: %v (status: count); new leader shown %s after the click", codes, newLeader.Round(time.Millisecond))
	// Through the supervisor, writes go on: at most the one in flight to the
	// leader as it died comes back unanswered (a 503, never sent twice).
	bad := 0
	for code, n := range codes {
		if code != 200 {
			bad += n
		}
	}
	if codes[200] < 5 || bad > 1 || codes[0] > 0 {
		t.Fatalf("writes while the leader was stopped: %v (status: count), want them answered 200 but for one at most", codes)
	}

	// Started again from the page, it catches up: its revision reaches the others'.
	call("PUT", "/config/perdida", `{"valor":"escrita enquanto estava parado"}`)
	click(fmt.Sprintf(`#cluster tr[data-nome=%q] button.iniciar`, old))
	waitFor("restarted member caught up", fmt.Sprintf(`(() => { const r = document.querySelector('#cluster tr[data-nome=%q]'); return r?.dataset.estado === "ativo" && r.querySelector(".rev").textContent !== "—" && !document.querySelector("#cluster .rev.behind") })()`, old), 10*time.Second)

	// Isolated from the page: a new leader, then back as a follower that catches up.
	cut := eval(leaderRow)
	click(fmt.Sprintf(`#cluster tr[data-nome=%q] button.isolar`, cut))
	waitFor("isolated leader replaced on the page", fmt.Sprintf(`document.querySelector('#cluster tr[data-nome=%q]')?.dataset.estado === "isolado" && (%s) !== "" && (%s) !== %q`, cut, leaderRow, leaderRow, cut), 5*time.Second)
	call("PUT", "/config/durante-o-isolamento", `{"valor":1}`)
	click(fmt.Sprintf(`#cluster tr[data-nome=%q] button.reconectar`, cut))
	waitFor("reconnected member following and caught up", fmt.Sprintf(`(() => { const r = document.querySelector('#cluster tr[data-nome=%q]'); return r?.dataset.estado === "ativo" && r.dataset.lider === "false" && r.querySelector(".rev").textContent !== "—" && !document.querySelector("#cluster .rev.behind") })()`, cut), 10*time.Second)
	waitFor("tour: the leader isolated, then back as a follower", done("partition"), 5*time.Second)

	// Quorum lost (two of three stopped), then regained (one back).
	names := strings.Fields(eval(`[...document.querySelectorAll("#cluster tbody tr")].map(r => r.dataset.nome).join(" ")`))
	click(fmt.Sprintf(`#cluster tr[data-nome=%q] button.parar`, names[0]))
	waitFor("two members running", `document.querySelectorAll("#cluster button.parar").length === 2`, 3*time.Second)
	click(fmt.Sprintf(`#cluster tr[data-nome=%q] button.parar`, names[1]))
	waitFor("no quorum on the page", `document.querySelector("#cluster-leader").classList.contains("bad")`, 5*time.Second)
	if code, _ := request[obj](t, "PUT", api+"/config/sem-quorum", `{"valor":1}`); code != 503 {
		t.Fatalf("write without quorum: %d, want 503", code)
	}
	// The page loaded now says what it cannot read, rather than show it empty.
	if _, err := chromedp.Run(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitFor("configuration unreadable without quorum, and said so", `document.querySelector("#config tbody tr.unreadable")?.textContent.includes("Não é possível ler agora")`, 10*time.Second)
	click(fmt.Sprintf(`#cluster tr[data-nome=%q] button.iniciar`, names[0]))
	waitFor("tour: quorum lost and regained", done("quorum"), 10*time.Second)
	waitFor("configuration read again once quorum is back", `!document.querySelector("#config tbody tr.unreadable") && !!document.querySelector('#config tbody tr[data-chave="limite"]')`, 10*time.Second)
	call("PUT", "/config/quorum-de-volta", `{"valor":2}`)

	// A phone's width: nothing wider than the screen, no table wider than its card.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	call("POST", "/usuarios", `{"nome":"Maria Aparecida de Souza Albuquerque","email":"maria.aparecida.souza.albuquerque@exemplo-muito-longo.com.br","idade":44}`)
	waitFor("user listed", `document.querySelectorAll("#users tbody tr").length > 0`, 3*time.Second)
	time.Sleep(300 * time.Millisecond) // layout after the viewport change
	if over := eval(`[document.documentElement.scrollWidth > innerWidth ? "page " + document.documentElement.scrollWidth : "", ...[...document.querySelectorAll("section")].filter(s => s.scrollWidth > s.clientWidth + 1).map(s => s.id + " " + s.scrollWidth + ">" + s.clientWidth)].filter(Boolean).join(", ")`); over != "" {
		shot("phone.png", "")
		t.Fatalf("wider than 390 px: %s", over)
	}
	shot("phone.png", "")
	shot("roteiro.png", "#tour-section")
}
