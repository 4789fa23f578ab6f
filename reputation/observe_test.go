package reputation

import (
	"net/netip"
	"testing"
	"time"
)

func TestObserveSeesEachFreshCurrentAnswerOnce(t *testing.T) {
	clock := &fakeClock{t: t0}
	var seen []string
	s := newTestService(t, serviceData(t), clock, ServiceOptions{
		Observe: func(a *Answer) { seen = append(seen, a.IP+" "+a.Verdict) },
	})
	listed := netip.MustParseAddr("192.0.2.10")

	s.AppendJSON(nil, listed) // miss: observed
	s.AppendJSON(nil, listed) // hit: not observed again
	s.Judge(listed)           // same cache entry
	if len(seen) != 1 {
		t.Fatalf("a cached answer was observed %d times, want once: %v", len(seen), seen)
	}
	if want := "192.0.2.10 " + s.Check(listed).Verdict; seen[0] != want {
		t.Errorf("observed %q, want %q", seen[0], want)
	}
	if len(seen) != 2 {
		t.Errorf("Check should be observed: %v", seen)
	}
	if _, err := s.CheckAt(listed, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Errorf("answers about the past must not be observed: %v", seen)
	}
}
