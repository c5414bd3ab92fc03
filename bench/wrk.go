package main

import (
	"fmt"
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
	want     int // the status every answer must have
}

// prelude is every script's beginning. In request(): id() is a random seeded
// user's id, key64() a random user's key in base64, for the gateway, and
// name() a random user's name as a query (from the file wrk gets as its
// argument: id, key and name on each line), uniq() 17
// digits that no other request of the benchmark gets, json the Content-Type header.
// done() prints the figures for run to read.
const prelude = `
local ids, k, threads, all = {}, 0, 0, {}
json = {["Content-Type"] = "application/json"}
unexpected = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads); all[threads] = thread end
function response(status) if status ~= WANT then unexpected = unexpected + 1 end end
function init(args)
  math.randomseed(os.time() * 100 + tid)
  for l in io.lines(args[1]) do ids[#ids + 1] = l end
end
function id() return (ids[math.random(#ids)]:match("^(%S+)")) end
function key64() return (ids[math.random(#ids)]:match("^%S+ (%S+)")) end
function name() return (ids[math.random(#ids)]:match("^%S+ %S+ (%S+)")) end
function uniq() k = k + 1; return string.format("%06d%02d%09d", RUN, tid, k) end
function done(s, latency, requests)
  local e, bad = s.errors, 0
  for _, t in ipairs(all) do bad = bad + t:get("unexpected") end
  io.write(string.format("RESULT %d %d %d %d %d\n", s.requests, s.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + bad))
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
	lua := fmt.Sprintf("RUN = %d\nWANT = %d\n%s\nfunction request()\n%s\nend\n", runs, s.want, prelude, s.lua)
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
	if _, err := fmt.Sscan(line, &n, &us, &p50, &p99, &errs); err != nil || n == 0 {
		check(fmt.Errorf("wrk: no requests measured (%v):\n%s", err, out))
	}
	if errs > 0 {
		check(fmt.Errorf("%s: %d of %d requests failed or answered other than %d", s.url, errs, n, s.want))
	}
	return result{rps: float64(n) / (float64(us) / 1e6), p50: time.Duration(p50) * time.Microsecond, p99: time.Duration(p99) * time.Microsecond}
}
