package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// guideStep is a bash block of docs/oficina.md and, when a block follows it
// with nothing but blank lines between, the output the guide shows for it.
type guideStep struct {
	line     int
	commands string
	expected []string
}

func guideSteps(t *testing.T) []guideStep {
	t.Helper()
	raw, err := os.ReadFile("docs/oficina.md")
	if err != nil {
		t.Fatal(err)
	}
	type block struct {
		lang       string
		open, shut int // line numbers of the fences, from 0
		body       []string
	}
	var blocks []block
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		if fence := strings.TrimSpace(lines[i]); strings.HasPrefix(fence, "```") {
			b := block{lang: strings.TrimPrefix(fence, "```"), open: i}
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				b.body = append(b.body, lines[i])
			}
			b.shut = i
			blocks = append(blocks, b)
		}
	}
	var steps []guideStep
	for i, b := range blocks {
		if b.lang != "bash" {
			continue
		}
		step := guideStep{line: b.open + 1, commands: strings.Join(b.body, "\n")}
		if i+1 < len(blocks) && blocks[i+1].lang != "bash" && strings.TrimSpace(strings.Join(lines[b.shut+1:blocks[i+1].open], "")) == "" {
			step.expected = blocks[i+1].body
		}
		steps = append(steps, step)
	}
	return steps
}

// guideLine turns a line the guide shows into a pattern: "..." stands for any
// text, and a member's name (n1, n2, n3: whoever won an election) for any.
func guideLine(expected string) *regexp.Regexp {
	parts := strings.Split(expected, "...")
	for i, p := range parts {
		parts[i] = regexp.MustCompile(`n[1-9]\b`).ReplaceAllString(regexp.QuoteMeta(p), `n[1-9]`)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `.*`) + `$`)
}

// The workshop guide, pasted as written into a shell on a fresh demo, prints
// what the guide shows: every line it shows, in order (curl -i prints more
// headers, and some commands' outputs are left out of the guide). Only the
// demo's start (the test starts it, on a free port) and the endless loop of
// writes are not run.
func TestWorkshopGuideAsWritten(t *testing.T) {
	p, _ := startDemo(t)
	sh := exec.Command("bash")
	stdin, _ := sh.StdinPipe()
	stdout, _ := sh.StdoutPipe()
	sh.Stderr = io.Discard // curl's progress meters
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); sh.Process.Kill(); sh.Wait() }()
	out := make(chan string, 1000)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			out <- lines.Text()
		}
		close(out)
	}()

	// A command that fails (curl that cannot connect, a bad flag) says so,
	// whether or not the guide shows the block's output.
	fmt.Fprintln(stdin, `trap 'echo "@@failed@@ $BASH_COMMAND (exit $?)"' ERR`)
	ran := 0
	for i, step := range guideSteps(t) {
		if strings.Contains(step.commands, "go run . demo") || strings.Contains(step.commands, "while true") {
			continue
		}
		commands := strings.ReplaceAll(step.commands, "http://127.0.0.1:5000", p.API)
		marker := fmt.Sprintf("@@step-%d@@", i)
		fmt.Fprintf(stdin, "%s\necho\necho %s\n", commands, marker)
		var got []string
		for done := false; !done; {
			select {
			case l, ok := <-out:
				if !ok {
					t.Fatalf("the shell ended during the block at docs/oficina.md:%d", step.line)
				}
				if l == marker {
					done = true
				} else if failed, ok := strings.CutPrefix(l, "@@failed@@ "); ok {
					t.Fatalf("docs/oficina.md:%d: %s", step.line, failed)
				} else if l = strings.TrimRight(l, "\r"); l != "" {
					got = append(got, l)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the block at docs/oficina.md:%d did not end within 30 s; printed so far:\n%s", step.line, strings.Join(got, "\n"))
			}
		}
		ran++
		// Every line the guide shows, in order, among those printed.
		next := 0
		for _, want := range step.expected {
			want = strings.TrimSpace(want)
			if want == "" {
				continue
			}
			pattern := guideLine(want)
			for next < len(got) && !pattern.MatchString(got[next]) {
				next++
			}
			if next == len(got) {
				t.Fatalf("docs/oficina.md:%d: the guide shows\n  %s\nbut pasted as written the block printed:\n  %s", step.line, want, strings.Join(got, "\n  "))
			}
			next++
		}
	}
	if ran < 10 {
		t.Fatalf("only %d blocks of the guide ran", ran)
	}
}
