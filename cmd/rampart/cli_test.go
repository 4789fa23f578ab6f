package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ip/rampart/api"
	"github.com/rampart-ip/rampart/internal/shared"
)

// cliConfig writes a configuration over data_dir with the given feeds
// (YAML flow mappings) and returns its path.
func cliConfig(t *testing.T, dataDir string, feeds ...string) string {
	t.Helper()
	cfg := fmt.Sprintf("data_dir: %s\nlog: {level: error}\nfeeds: [%s]\n", dataDir, strings.Join(feeds, ", "))
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCLI runs one command and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommandLineUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		// A missing config file makes a regression fail fast rather than serve.
		{"serve refuses a stray argument instead of ignoring it", []string{"serve", "--config", "/nonexistent/rampart.yaml", "extra"}, 2, `unexpected argument "extra"`},
		{"sync refuses a stray argument", []string{"sync", "now"}, 2, `unexpected argument "now"`},
		{"feeds refuses a stray argument", []string{"feeds", "all"}, 2, `unexpected argument "all"`},
		{"an unknown flag exits 2 with the flag's usage", []string{"sync", "--bogus"}, 2, "Usage of rampart sync"},
		{"-h shows a command's flags and succeeds", []string{"feeds", "-h"}, 0, "-all"},
		{"an unknown command lists the commands", []string{"bogus"}, 2, "commands:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
			if strings.Count(stderr, "flag provided but not defined") > 1 {
				t.Errorf("the bad flag is reported more than once:\n%s", stderr)
			}
		})
	}
}

func TestFeedsCommandShowsStoredState(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cfg := cliConfig(t, data, fmt.Sprintf("{name: et, url: %s, source_format: freetext}", shared.Data(t, "feeds", "firehol", "et_compromised.ipset")))
	if code, out, stderr := runCLI(t, "sync", "--quiet", "--config", cfg); code != 0 {
		t.Fatalf("sync exited %d: %s %s", code, out, stderr)
	}
	code, out, stderr := runCLI(t, "feeds", "--config", cfg)
	if code != 0 {
		t.Fatalf("feeds exited %d: %s", code, stderr)
	}
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "et" {
			row = f
		}
	}
	if len(row) < 6 {
		t.Fatalf("no row for the feed:\n%s", out)
	}
	if row[4] == "0" || row[5] == "never" {
		t.Errorf("feeds shows no stored state after a sync (entries %s, last success %s):\n%s", row[4], row[5], out)
	}
}

func TestFeedBackInTheConfigIsListedAgain(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	sample := shared.Data(t, "feeds", "firehol", "et_compromised.ipset")
	with := cliConfig(t, data, fmt.Sprintf("{name: et, url: %s, source_format: freetext}", sample))
	without := cliConfig(t, data)
	for i, cfg := range []string{with, without, with} {
		if code, out, stderr := runCLI(t, "sync", "--quiet", "--config", cfg); code != 0 {
			t.Fatalf("sync %d exited %d: %s %s", i+1, code, out, stderr)
		}
	}
	body, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			addr = line
			break
		}
	}
	code, out, stderr := runCLI(t, "check", "--config", with, addr)
	if code != 0 {
		t.Fatalf("check exited %d: %s", code, stderr)
	}
	var ans struct {
		Active bool `json:"is_Active"`
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		t.Fatalf("check output: %v\n%s", err, out)
	}
	if !ans.Active {
		t.Errorf("%s is not active after its feed came back to the config:\n%s", addr, out)
	}
}

func TestFeedSyncErrorsMapToTheAPIContract(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/feed.txt"
	ln.Close()
	cfg := cliConfig(t, data,
		fmt.Sprintf("{name: down, url: %q, source_format: freetext}", closed),
		fmt.Sprintf("{name: off, url: %s, source_format: freetext, enabled: false}", shared.Data(t, "feeds", "firehol", "et_compromised.ipset")))
	a, err := newApp(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	syncer := feedSyncer(a.engine)
	for _, tc := range []struct {
		name, feed string
		want       error
	}{
		{"an unknown feed is not found", "nope", api.ErrNotFound},
		{"a disabled feed is a conflict", "off", api.ErrConflict},
		{"an unreachable feed is an upstream failure", "down", api.ErrUpstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := syncer.SyncFeed(context.Background(), tc.feed)
			if !errors.Is(err, tc.want) {
				t.Errorf("SyncFeed(%q) = %v, want an error wrapping %v", tc.feed, err, tc.want)
			}
		})
	}
}
