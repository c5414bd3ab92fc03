// Command bench measures etcdapi against etcd's own JSON gateway on the same
// member, in one run, alternating the two: go run ./bench
//
// It builds etcdapi, starts it on a fresh ephemeral member, seeds users, then
// for each scenario runs the API and its reference in turns for several
// rounds, and prints medians of req/s, p50 and p99, and the API/gateway ratio.
// The machine is shared and noisy: read the ratios, not the absolute numbers.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	users     = flag.Int("users", 100000, "users to seed before searching and listing")
	conns     = flag.Int("c", 32, "concurrent connections")
	duration  = flag.Duration("d", 3*time.Second, "length of one measured run")
	rounds    = flag.Int("rounds", 3, "alternating rounds per scenario (medians are reported)")
	quick     = flag.Bool("quick", false, "a quick look while iterating: -users 20000 -d 1s -rounds 1")
	profDir   = flag.String("profile", "", "write CPU profiles of the server (first round of the API and of the bare handler in each scenario) and a heap profile into this directory")
	part      = flag.String("part", "all", "what to measure: all, compare (the scenarios against the bare handlers and the gateway), scale (the figures with -users users), restart (on -data's data dir) or faults (isolated and paused leaders in etcdapi demo, -runs times)")
	faultRuns = flag.Int("runs", 5, "faults: runs of each fault (medians are reported)")
	keep      = flag.String("keep", "", "scale: keep the data dir of the users as this directory, for -part restart")
	dataDir   = flag.String("data", "", "restart: the data dir to restart on, one that -keep kept")

	serveMode = flag.Bool("serve", false, "internal: be the server process (API and bare handlers)")
	bareAddr  = flag.String("bare", "", "internal: the bare handlers' address in -serve mode")
	logFile   = flag.String("log", "", "internal: where the server writes its log in -serve mode")
	etcdMode  = flag.Bool("etcd", false, "internal: be etcd alone on ETCD_DATA_DIR, the restart's reference")
)

func main() {
	flag.Parse()
	if *serveMode {
		serve(*bareAddr, *logFile)
		return
	}
	if *etcdMode {
		etcdAlone()
		return
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		check(fmt.Errorf("the scenarios are loaded by wrk: apt-get install wrk (%v)", err))
	}
	if *quick {
		*users, *duration, *rounds = 20000, time.Second, 1
	}
	if *profDir != "" {
		check(os.MkdirAll(*profDir, 0o755))
	}
	dir, err := os.MkdirTemp("", "etcdapi-bench-")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "etcdapi")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Stderr = os.Stderr
	check(build.Run())
	st, _ := os.Stat(bin)
	fmt.Printf("# etcdapi benchmark, %s, %d connections, %s runs, %d rounds\n\n", time.Now().Format("2006-01-02"), *conns, *duration, *rounds)
	fmt.Printf("stripped binary: %.1f MB\n", float64(st.Size())/1e6)
	fmt.Printf("ready to serve from a fresh data dir: median %s of 10\n", readyTime(bin, dir))

	switch *part {
	case "restart":
		if *dataDir == "" {
			check(errors.New("-part restart needs -data: a data dir that -keep kept"))
		}
		printRestart(restart(bin, *dataDir), 0, 0)
		return
	case "faults":
		faults(bin, *faultRuns)
		return
	case "compare":
		compareAll(dir)
	case "scale":
		scale(bin, dir)
	default:
		compareAll(dir)
		scale(bin, dir)
		faults(bin, *faultRuns)
	}
}

// compareAll measures the scenarios against their bare handlers and etcd's gateway.
func compareAll(dir string) {
	p := startServer(dir, "data")
	defer p.stop()
	srv = p
	time.Sleep(2 * time.Second)
	fmt.Printf("idle RSS: %.0f MB\n\n", float64(p.rss())/1e6)

	ps := people(2000)
	writeIDs(dir, seed(p, ps), ps)
	fmt.Println("| scenario | etcdapi req/s | p50 | p99 | bare net/http req/s | p50 | p99 | **API/bare** | reference | ref req/s | p50 | p99 | **API/ref** |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	getUser := `return wrk.format("GET", "/usuarios/" .. id())`
	compare("GET /usuarios/{id}", shot{p.api, getUser, 200}, shot{p.bare, getUser, 200},
		"gateway POST /v3/kv/range", shot{p.client, `return wrk.format("POST", "/v3/kv/range", json, '{"key":"' .. key64() .. '"}')`, 200})
	// The bare handler takes the email from a header instead of parsing the
	// body; its twin at /decodificar/usuarios decodes the body for it.
	create := func(path string) string {
		return `local u = uniq()
  local email = "conceicao.araujo." .. u .. "@uol.com.br"
  return wrk.format("POST", "` + path + `", {["Content-Type"] = "application/json", Email = email},
    '{"nome":"Conceição Araújo ' .. u .. '","email":"' .. email .. '","idade":34,"cidade":"São Luís"}')`
	}
	// A new key each time, as a creation: the prefix "/benc/" in base64, then
	// 20 digits that decode to 15 unique bytes.
	gatewayPut := fmt.Sprintf(`return wrk.format("POST", "/v3/kv/put", json, '{"key":"L2JlbmMv000' .. uniq() .. '","value":"%s"}')`, b64(`{"nome":"Carga","idade":30}`))
	apiCreate := shot{p.api, create("/usuarios"), 201}
	compare("POST /usuarios", apiCreate, shot{p.bare, create("/usuarios"), 201}, "gateway POST /v3/kv/put", shot{p.client, gatewayPut, 200})
	versus("POST /usuarios", apiCreate, "bare handler that decodes the body", shot{p.bare, create("/decodificar/usuarios"), 201})
	putConfig := `return wrk.format("PUT", "/config/k" .. math.random(0, 99), json, '{"valor":{"limite":100}}')`
	compare("PUT /config/{k}", shot{p.api, putConfig, 200}, shot{p.bare, putConfig, 200}, "gateway POST /v3/kv/put",
		// One of 100 keys: "/config/app/" in base64, then 4 characters that decode to 3 bytes.
		shot{p.client, fmt.Sprintf(`return wrk.format("POST", "/v3/kv/put", json, '{"key":"L2NvbmZpZy9hcHAv' .. string.format("ay%%02d", math.random(0, 99)) .. '","value":"%s"}')`, b64(`{"limite":100}`)), 200})
	// Transactions against the API's own single PUT, alternated: one write,
	// then a condition and two writes, as BenchmarkConfigWrites sends.
	putAPI := shot{p.api, putConfig, 200}
	txn1 := shot{p.api, `return wrk.format("POST", "/transacao", json, '{"entao":[{"definir":"k' .. math.random(0, 99) .. '","valor":{"limite":100}}]}')`, 200}
	txn3 := shot{p.api, `local k = math.random(0, 99)
  return wrk.format("POST", "/transacao", json, '{"se":[{"chave":"ausente-' .. k .. '","existe":false}],"entao":[{"definir":"k' .. k .. '","valor":{"limite":100}},{"definir":"par-' .. k .. '","valor":true}]}')`, 200}
	versus("POST /transacao, 1 write", txn1, "PUT /config/{k} through the API", putAPI)
	versus("POST /transacao, 1 condition + 2 writes", txn3, "PUT /config/{k} through the API", putAPI)
	// A lock's release needs the token its acquisition answered: Go's load generator.
	r := median(*rounds, func() result {
		return load(*duration, *conns, func(c *http.Client, i int) error {
			resp, err := c.Post(fmt.Sprintf("%s/lock/r%d-%d", p.api, i, rand.IntN(1<<30)), "application/json", strings.NewReader(`{"holder":"bench","ttl":30}`))
			if err != nil {
				return err
			}
			var l struct{ Token int64 }
			json.NewDecoder(resp.Body).Decode(&l)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("lock: %d", resp.StatusCode)
			}
			return do(c, "DELETE", fmt.Sprintf("%s/lock/%s?token=%d", p.api, strings.TrimPrefix(resp.Request.URL.Path, "/lock/"), l.Token), "", 200)
		})
	})
	fmt.Printf("| POST+DELETE /lock/{r} (pairs/s, Go load generator) | %.0f | %s | %s | | | | | | | | | |\n", r.rps, r.p50, r.p99)
}

// writeIDs writes the ids, their keys in base64 and their names as a query,
// for the scripts' id(), key64() and name().
func writeIDs(dir string, ids []string, ps []person) {
	var lines strings.Builder
	for i, id := range ids {
		fmt.Fprintf(&lines, "%s %s %s\n", id, b64("/users/"+id), url.QueryEscape(ps[i].name))
	}
	idsFile = filepath.Join(dir, "ids.txt")
	check(os.WriteFile(idsFile, []byte(lines.String()), 0o644))
}

// scale measures search, listing, memory and restart on a fresh member seeded
// with -users users: the scenarios of compareAll create tens of thousands of
// users (and email keys) of their own.
func scale(bin, dir string) {
	p := startServer(dir, "data100k")
	defer p.stop()
	srv = p
	ps := people(*users)
	ids := seed(p, ps)
	// The user a restart must find, created last.
	check(do(http.DefaultClient, "POST", p.api+"/usuarios", `{"nome":"Reinício Único"}`, 201))
	time.Sleep(3 * time.Second)
	loaded := p.rss()
	fmt.Printf("\nWith %d users:\n\n", len(ids))
	fmt.Printf("RSS 3 s after %d users were loaded through the API: %.0f MB\n\n", len(ids), float64(loaded)/1e6)
	if *profDir != "" {
		saveProfile(p, "heap", "heap")
	}
	fmt.Println("| scenario | etcdapi req/s | p50 | p99 |")
	fmt.Println("|---|---|---|---|")
	writeIDs(dir, ids, ps)
	// A seeded user's whole name, accents and all: one match, or a few when
	// it is inside a longer name (Ana inside Mariana).
	narrow := shot{p.api, `return wrk.format("GET", "/usuarios/buscar?nome=" .. name())`, 200}
	// A search's floor: read-your-writes makes it one linearizable read, as
	// the bare handler's GET of one of the same users is; alternated with it.
	oneRead := shot{p.bare, `return wrk.format("GET", "/usuarios/" .. id())`, 200}
	var searches, reads []result
	for i := range *rounds {
		if i == 0 && *profDir != "" {
			profile("search")
		}
		searches = append(searches, narrow.run(*duration, *conns))
		reads = append(reads, oneRead.run(*duration, *conns))
	}
	search, floor := middle(searches), middle(reads)
	fmt.Printf("| GET /usuarios/buscar?nome={a whole name} (≈1 match in %d) | %.0f | %s | %s |\n", len(ids), search.rps, search.p50, search.p99)
	fmt.Printf("| its floor: the bare handler reading one of those users | %.0f | %s | %s |\n", floor.rps, floor.p50, floor.p99)
	broad := shot{p.api, `return wrk.format("GET", "/usuarios/buscar?nome=silva&limite=50")`, 200}
	r := median(*rounds, func() result { return broad.run(*duration, *conns) })
	fmt.Printf("| GET /usuarios/buscar?nome=silva&limite=50 (%d matches) | %.0f | %s | %s |\n", silvas(ps), r.rps, r.p50, r.p99)
	r = median(*rounds, func() result { return broad.run(*duration, 1) })
	fmt.Printf("| the same, 1 connection | %.0f | %s | %s |\n", r.rps, r.p50, r.p99)
	r = median(*rounds, func() result {
		return load(*duration, 4, func(c *http.Client, i int) error { return getURL(c, p.api+"/usuarios", 200) })
	})
	fmt.Printf("| GET /usuarios (all %d, 4 connections) | %.1f | %s | %s |\n", len(ids), r.rps, r.p50, r.p99)
	firstByte, growth := listOnce(p)
	fmt.Printf("\nGET /usuarios with %d users: first byte after %s, RSS growth while streaming %.1f MB\n", len(ids), firstByte, float64(growth)/1e6)
	fmt.Printf("RSS growth during 20 full listings and 200 searches: %.1f MB (target ≤ 32 MB)\n", float64(listAndSearch(p, ps))/1e6)
	fmt.Printf("Search: %.0f req/s, %.0f %% of its floor (target ≥ 20,000 req/s, p99 ≤ 10 ms)\n", search.rps, 100*search.rps/floor.rps)

	p.stop()
	data := filepath.Join(dir, "data100k")
	printRestart(restart(bin, data), len(ids)+1, loaded)
	if *keep != "" {
		check(os.Rename(data, *keep))
	}
}

// printRestart prints restart's figures; users and loaded (etcdapi's RSS
// after the load) are 0 when unknown.
func printRestart(r restarted, users int, loaded int64) {
	of := "the data dir"
	if users > 0 {
		of = fmt.Sprintf("the data dir of %d users", users)
	}
	fmt.Printf("\nRestart on %s (median of 3): /readyz 200 after %s, etcd alone on that data dir with etcdapi's raft and log settings ready after %s (%.0f %%); first correct search after %s (target ≤ 1 s)\n",
		of, r.ready, r.alone, 100*float64(r.ready)/float64(r.alone), r.searched)
	fmt.Printf("\nRSS on that data dir (median of 3, 3 s after ready): etcd alone %.0f MB; etcdapi after a restart %.0f MB, **%+.0f MB** over etcd alone (target ≤ +64 MB)", mb(r.aloneRSS), mb(r.rss), mb(r.rss-r.aloneRSS))
	if loaded > 0 {
		fmt.Printf("; after the load %.0f MB, **%+.0f MB**", mb(loaded), mb(loaded-r.aloneRSS))
	}
	fmt.Println()
}

var srv *proc // the -serve child, for profiles

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// silvas counts the people whose name holds "silva".
func silvas(ps []person) int {
	n := 0
	for _, p := range ps {
		if strings.Contains(strings.ToLower(p.name), "silva") {
			n++
		}
	}
	return n
}

// children are the servers started: a benchmark that stops on an error must
// not leave them running.
var children sync.Map // *exec.Cmd → true

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		children.Range(func(cmd, _ any) bool {
			cmd.(*exec.Cmd).Process.Kill()
			return true
		})
		os.Exit(1)
	}
}

type proc struct {
	cmd               *exec.Cmd
	api, bare, client string
}

func freePort() int {
	for {
		p := 20000 + rand.IntN(12000)
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
}

// start runs cmd as a server on fresh ports and waits for its /readyz.
func start(cmd *exec.Cmd, env ...string) *proc {
	api, client := freePort(), freePort()
	cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", api),
		fmt.Sprintf("ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:%d", client), fmt.Sprintf("ETCD_LISTEN_PEER_URLS=http://127.0.0.1:%d", freePort()))
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	children.Store(cmd, true)
	p := &proc{cmd: cmd, api: fmt.Sprintf("http://127.0.0.1:%d", api), client: fmt.Sprintf("http://127.0.0.1:%d", client)}
	for deadline := time.Now().Add(time.Minute); getURL(http.DefaultClient, p.api+"/readyz", 200) != nil; {
		if time.Now().After(deadline) {
			check(fmt.Errorf("%s not ready within a minute", cmd.Path))
		}
		time.Sleep(2 * time.Millisecond)
	}
	return p
}

// startAPI runs etcdapi itself on a fresh ephemeral member.
func startAPI(bin, dir string) *proc {
	cmd := exec.Command(bin)
	cmd.Dir = dir
	return start(cmd, "ETCD_EPHEMERAL=true", "LOG_LEVEL=warn")
}

// startServer runs this program in -serve mode: the API and the bare handlers
// on one member whose data directory, dir/data, stays for a restart.
func startServer(dir, data string) *proc {
	self, err := os.Executable()
	check(err)
	bare := freePort()
	cmd := exec.Command(self, "-serve", fmt.Sprintf("-bare=127.0.0.1:%d", bare), "-log="+filepath.Join(dir, "server.log"))
	p := start(cmd, "ETCD_DATA_DIR="+filepath.Join(dir, data))
	p.bare = fmt.Sprintf("http://127.0.0.1:%d", bare)
	for getURL(http.DefaultClient, p.bare+"/debug/pprof/", 200) != nil {
		time.Sleep(2 * time.Millisecond)
	}
	return p
}

func (p *proc) stop() {
	children.Delete(p.cmd)
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(os.Interrupt)
		p.cmd.Wait()
	}
}

// rss is the process's resident memory, from /proc.
func (p *proc) rss() int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// saveProfile fetches a pprof profile of the server into -profile's directory.
func saveProfile(p *proc, name, query string) {
	resp, err := http.Get(p.bare + "/debug/pprof/" + query)
	check(err)
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(*profDir, name+".pprof"))
	check(err)
	defer f.Close()
	io.Copy(f, resp.Body)
}

func readyTime(bin, dir string) time.Duration {
	var ts []time.Duration
	for range 10 {
		began := time.Now()
		p := startAPI(bin, dir)
		ts = append(ts, time.Since(began))
		p.stop()
	}
	slices.Sort(ts)
	return ts[len(ts)/2].Round(time.Millisecond)
}

// seed creates the people as users through the API, from -c connections, and
// returns their ids in the people's order.
func seed(p *proc, ps []person) []string {
	ids := make([]string, len(ps))
	n := len(ps)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			c := &http.Client{}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				resp, err := c.Post(p.api+"/usuarios", "application/json", strings.NewReader(ps[i].json()))
				check(err)
				var u struct{ ID string }
				json.NewDecoder(resp.Body).Decode(&u)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					check(fmt.Errorf("seeding %s: %d", ps[i].json(), resp.StatusCode))
				}
				ids[i] = u.ID
			}
		})
	}
	wg.Wait()
	return ids
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

// load runs do from conns goroutines, each with its own keep-alive connection, for d.
func load(d time.Duration, conns int, do func(c *http.Client, i int) error) result {
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			var mine []time.Duration
			for i := w; time.Now().Before(deadline); i += conns {
				began := time.Now()
				if err := do(c, i); err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) == 0 {
		return result{errors: errs.Load()}
	}
	return result{rps: float64(len(lat)) / d.Seconds(), p50: lat[len(lat)/2].Round(10 * time.Microsecond), p99: lat[len(lat)*99/100].Round(10 * time.Microsecond), errors: errs.Load()}
}

func median(n int, run func() result) result {
	rs := make([]result, n)
	for i := range rs {
		rs[i] = run()
	}
	return middle(rs)
}

// compare alternates the API, its bare handler and its reference for the
// rounds, then prints medians and the ratios.
func compare(name string, api, bare shot, refName string, ref shot) {
	var a, b, g []result
	for i := range *rounds {
		if i == 0 && *profDir != "" {
			profile(name)
		}
		a = append(a, api.run(*duration, *conns))
		if i == 0 && *profDir != "" {
			profile("bare " + name)
		}
		b = append(b, bare.run(*duration, *conns))
		g = append(g, ref.run(*duration, *conns))
	}
	ma, mb, mg := middle(a), middle(b), middle(g)
	fmt.Printf("| %s | %.0f | %s | %s | %.0f | %s | %s | **%.0f %%** | %s | %.0f | %s | %s | **%.2f** |\n",
		name, ma.rps, ma.p50, ma.p99, mb.rps, mb.p50, mb.p99, 100*ma.rps/mb.rps, refName, mg.rps, mg.p50, mg.p99, ma.rps/mg.rps)
}

// versus alternates a scenario with a reference on the API itself for the
// rounds and prints a row of the compare table with the reference's columns.
func versus(name string, a shot, refName string, ref shot) {
	var as, rs []result
	for range *rounds {
		as = append(as, a.run(*duration, *conns))
		rs = append(rs, ref.run(*duration, *conns))
	}
	ma, mr := middle(as), middle(rs)
	fmt.Printf("| %s | %.0f | %s | %s | | | | | %s | %.0f | %s | %s | **%.2f** |\n", name, ma.rps, ma.p50, ma.p99, refName, mr.rps, mr.p50, mr.p99, ma.rps/mr.rps)
}

// profile takes a CPU profile of the server during the next run, into -profile's directory.
func profile(name string) {
	secs := max(1, int(duration.Seconds())-1)
	go saveProfile(srv, "cpu-"+strings.NewReplacer("/", "_", " ", "", "{", "", "}", "", "+", "-", "?", "_", "=", "_", "&", "_").Replace(name), fmt.Sprintf("profile?seconds=%d", secs))
}

// middle is the median result by throughput.
func middle(rs []result) result {
	slices.SortFunc(rs, func(x, y result) int { return int(x.rps - y.rps) })
	return rs[len(rs)/2]
}

func getURL(c *http.Client, url string, want int) error { return do(c, "GET", url, "", want) }

// do sends one request; headers are name, value pairs.
func do(c *http.Client, method, url, body string, want int, headers ...string) error {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d", method, url, resp.StatusCode)
	}
	return nil
}

// listOnce streams the whole listing once, timing its first byte and sampling the RSS.
func listOnce(p *proc) (firstByte time.Duration, growth int64) {
	growth = sampleRSS(p, func() {
		began := time.Now()
		resp, err := http.Get(p.api + "/usuarios")
		check(err)
		var one [1]byte
		resp.Body.Read(one[:])
		firstByte = time.Since(began)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
	return firstByte.Round(100 * time.Microsecond), growth
}

// sampleRSS samples p's RSS every 5 ms while fn runs and returns the peak growth.
func sampleRSS(p *proc, fn func()) int64 {
	before := p.rss()
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				if r := p.rss(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	fn()
	close(done)
	return max(0, peak.Load()-before)
}

// listAndSearch runs 20 full listings and 200 broad and narrow searches, 4 at a
// time, and returns the server's peak RSS growth meanwhile.
func listAndSearch(p *proc, ps []person) int64 {
	return sampleRSS(p, func() {
		var wg sync.WaitGroup
		jobs := make(chan string)
		for range 4 {
			wg.Go(func() {
				for u := range jobs {
					check(getURL(http.DefaultClient, u, 200))
				}
			})
		}
		for i := range 220 {
			switch {
			case i%11 == 0:
				jobs <- p.api + "/usuarios"
			case i%2 == 0:
				jobs <- p.api + "/usuarios/buscar?nome=silva"
			default:
				jobs <- p.api + "/usuarios/buscar?nome=" + url.QueryEscape(ps[i].name)
			}
		}
		close(jobs)
		wg.Wait()
	})
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// restarted are restart's figures, medians of three.
type restarted struct {
	ready, alone, searched time.Duration
	rss, aloneRSS          int64 // 3 s after ready
}

// restart starts etcdapi on the benchmark's data dir three times: the time to
// /readyz 200 and to the first search that finds the user created last, and
// the RSS 3 s later. Before each, etcd alone starts on the same data dir: the
// time it takes to be ready is the part of etcdapi's that is etcd's own, on
// this machine at this moment, and its RSS 3 s later what etcd itself holds.
func restart(bin, data string) restarted {
	self, err := os.Executable()
	check(err)
	var rs, es, ss []time.Duration
	var rss, aloneRSS []int64
	for range 3 {
		began := time.Now()
		e := start(exec.Command(self, "-etcd"), "ETCD_DATA_DIR="+data)
		es = append(es, time.Since(began))
		time.Sleep(3 * time.Second)
		aloneRSS = append(aloneRSS, e.rss())
		e.stop()

		began = time.Now()
		p := start(exec.Command(bin), "ETCD_DATA_DIR="+data, "LOG_LEVEL=warn")
		rs = append(rs, time.Since(began))
		for deadline := time.Now().Add(time.Minute); ; {
			if time.Now().After(deadline) {
				check(errors.New("no user \"Reinício Único\" found a minute after the restart: is -data a data dir that -keep kept?"))
			}
			resp, err := http.Get(p.api + "/usuarios/buscar?nome=reinicio%20unico")
			check(err)
			var found []struct{ Nome string }
			json.NewDecoder(resp.Body).Decode(&found)
			resp.Body.Close()
			if len(found) == 1 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		ss = append(ss, time.Since(began))
		time.Sleep(3 * time.Second)
		rss = append(rss, p.rss())
		p.stop()
	}
	if *profDir != "" {
		// The same restart in -serve mode, for its heap 3 s after ready.
		srv = startServer(filepath.Dir(data), filepath.Base(data))
		time.Sleep(3 * time.Second)
		saveProfile(srv, "heap-restart", "heap")
		srv.stop()
	}
	slices.Sort(rss)
	slices.Sort(aloneRSS)
	return restarted{ready: medianDuration(rs), alone: medianDuration(es), searched: medianDuration(ss), rss: rss[1], aloneRSS: aloneRSS[1]}
}
