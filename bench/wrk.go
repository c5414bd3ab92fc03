package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A shot is one side of a throughput scenario, loaded by wrk: the base URL
// and the body of a Lua request() that returns the next request. wrk, in C,
// leaves the server more of the two cores than a load generator in Go would,
// so the server's own cost per request shows in the ratios.
type shot struct {
	url, lua string
}

// prelude is every script's beginning. In request(): id() is a random seeded
// user's id and key64() a random user's key in base64, for the gateway (from
// the file wrk gets as its argument: id and key on each line), uniq() 17
// digits that no other request of the benchmark gets, json the Content-Type header.
// done() prints the figures for run to read.
const prelude = `
local ids, k, threads = {}, 0, 0
json = {["Content-Type"] = "application/json"}
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args)
  math.randomseed(os.time() * 100 + tid)
  for l in io.lines(args[1]) do ids[#ids + 1] = l end
end
function id() return (ids[math.random(#ids)]:match("^[^ ]*")) end
function key64() return (ids[math.random(#ids)]:match(" (.*)$")) end
function uniq() k = k + 1; return string.format("%06d%02d%09d", RUN, tid, k) end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", s.requests, s.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`

var (
	idsFile string // the seeded users' ids, a line each, for the scripts' id()
	runs    int    // wrk runs so far, part of uniq()
)

// run loads s with wrk for d over conns connections.
func (s shot) run(d time.Duration, conns int) result {
	runs++
	script := filepath.Join(filepath.Dir(idsFile), "shot.lua")
	lua := fmt.Sprintf("RUN = %d\n%s\nfunction request()\n%s\nend\n", runs*1000+rand.IntN(1000), prelude, s.lua)
	check(os.WriteFile(script, []byte(lua), 0o644))
	out, err := exec.Command("wrk", fmt.Sprintf("-t%d", min(2, conns)), fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%s", d), "--timeout", "10s", "-s", script, s.url, "--", idsFile).CombinedOutput()
	if err != nil {
		check(fmt.Errorf("wrk: %v\n%s", err, out))
	}
	_, line, ok := strings.Cut(string(out), "RESULT ")
	if !ok {
		check(fmt.Errorf("wrk printed no result:\n%s", out))
	}
	var n, us, p50, p99, errs int64
	fmt.Sscan(line, &n, &us, &p50, &p99, &errs)
	if errs > 0 {
		check(fmt.Errorf("%s: %d of %d requests failed or answered an unexpected status", s.url, errs, n))
	}
	return result{rps: float64(n) / (float64(us) / 1e6), p50: time.Duration(p50) * time.Microsecond, p99: time.Duration(p99) * time.Microsecond}
}
