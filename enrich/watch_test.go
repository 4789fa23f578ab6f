package enrich

import (
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
)

func testNow() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceByRename writes a new file beside path and renames it over path,
// as geoipupdate does.
func replaceByRename(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The ASN test database maps 1.0.0.0/24 to AS15169; the ISP test database,
// used as the replacement, does not cover it, and both map 1.128.0.0/11 to
// AS1221.
var (
	googleTest  = netip.MustParseAddr("1.0.0.1")
	telstraTest = netip.MustParseAddr("1.128.0.1")
)

func openWatched(t *testing.T) (*Enricher, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "GeoLite2-ASN.mmdb")
	copyFile(t, testDB(t, "GeoLite2-ASN-Test"), path)
	e, err := OpenWith(config.GeoIP{ASN: path}, discard(), Options{Poll: time.Hour, Settle: 10 * time.Millisecond, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if asn, _ := e.ASN(googleTest); asn != 15169 {
		t.Fatalf("before the reload ASN(%s) = %d, want 15169", googleTest, asn)
	}
	return e, path
}

func reloadError(e *Enricher) error {
	for _, s := range e.Status() {
		if s.Setting == "asn" {
			return s.ReloadError
		}
	}
	return nil
}

func TestReload(t *testing.T) {
	ispData, err := os.ReadFile(testDB(t, "GeoIP2-ISP-Test"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a database renamed over the file is swapped in while queries run", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		e, path := openWatched(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					m := e.Metadata(telstraTest)
					if m.ASN != "AS1221" {
						t.Errorf("Metadata(%s) during reload = %+v, want AS1221 throughout", telstraTest, m)
						return
					}
					n, _ := e.ASN(googleTest)
					_ = e.Announced(n)
				}
			})
		}
		replaceByRename(t, path, ispData)
		eventually(t, "the replacement is in force", func() bool {
			_, ok := e.ASN(googleTest)
			return !ok
		})
		close(stop)
		wg.Wait()
		if n := e.Announced(15169); n != 0 {
			t.Errorf("Announced(15169) after the reload = %d, want 0: announced space must be recomputed", n)
		}
		if n := e.Announced(1221); n != 1<<21 {
			t.Errorf("Announced(1221) after the reload = %d, want %d", n, 1<<21)
		}
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("a broken replacement keeps the old database and is reported", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		e, path := openWatched(t)
		defer e.Close()
		replaceByRename(t, path, []byte("truncated download"))
		eventually(t, "the failed reload is reported", func() bool { return reloadError(e) != nil })
		if asn, _ := e.ASN(googleTest); asn != 15169 {
			t.Errorf("after a broken replacement ASN(%s) = %d, want the old answer 15169", googleTest, asn)
		}
		replaceByRename(t, path, ispData)
		eventually(t, "a good replacement is in force", func() bool {
			_, ok := e.ASN(googleTest)
			return !ok
		})
		if err := reloadError(e); err != nil {
			t.Errorf("reload error %v still reported after a good reload", err)
		}
	})

	t.Run("a file rewritten in place is reloaded", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		e, path := openWatched(t)
		defer e.Close()
		if err := os.WriteFile(path, ispData, 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the rewritten file is in force", func() bool {
			_, ok := e.ASN(googleTest)
			return !ok
		})
	})

	t.Run("a file that disappears leaves the old database in force", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		e, path := openWatched(t)
		defer e.Close()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the missing file is reported", func() bool { return reloadError(e) != nil })
		if asn, _ := e.ASN(googleTest); asn != 15169 {
			t.Errorf("ASN(%s) = %d, want the old answer 15169", googleTest, asn)
		}
	})

	t.Run("polling finds a replacement without a change notification", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		path := filepath.Join(t.TempDir(), "GeoLite2-ASN.mmdb")
		copyFile(t, testDB(t, "GeoLite2-ASN-Test"), path)
		e, err := OpenWith(config.GeoIP{ASN: path}, discard(), Options{Poll: 20 * time.Millisecond, Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		// Stop notifications so that only the poll can see the change.
		if err := e.watcher.notify.Remove(filepath.Dir(path)); err != nil {
			t.Fatal(err)
		}
		replaceByRename(t, path, ispData)
		eventually(t, "the poll reloads the file", func() bool {
			_, ok := e.ASN(googleTest)
			return !ok
		})
	})
}

func TestClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e, err := Open(allTestDatabases(t), discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if m := e.Metadata(netip.MustParseAddr("81.2.69.160")); m != (reputation.Metadata{}) {
		t.Errorf("Metadata after Close = %+v, want empty", m)
	}
}
