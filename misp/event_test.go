package misp

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/internal/shared"
)

func openEvent(t *testing.T, path string) *Event {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	ev, err := ParseEvent(fh)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestParseEventReadsAttributesAndObjects(t *testing.T) {
	ev := openEvent(t, filepath.Join("testdata", "event-objects.json"))
	if ev.UUID != "5c2f1a3e-0d7c-4b1e-9a43-8f1d2a6b7c01" || ev.ThreatLevel != 1 ||
		!ev.Timestamp.Equal(time.Unix(1700000000, 0)) || !slices.Equal(ev.Tags, []string{"tlp:clear", "type:OSINT"}) {
		t.Errorf("event = %+v", ev)
	}
	var uuids []string
	for _, a := range ev.Attributes {
		uuids = append(uuids, a.UUID)
	}
	if want := []string{"a1", "a2", "a3", "a4", "a5", "a6", "o1", "o2", "o3", "o4"}; !slices.Equal(uuids, want) {
		t.Fatalf("attributes = %v, want %v", uuids, want)
	}
	byID := map[string]Attribute{}
	for _, a := range ev.Attributes {
		byID[a.UUID] = a
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"a boolean to_ids is read", byID["a1"].ToIDs && !byID["a1"].Deleted && slices.Equal(byID["a1"].Tags, []string{"c2"})},
		{"a string to_ids and a numeric timestamp are read", !byID["a2"].ToIDs && byID["a2"].Timestamp.Equal(time.Unix(1700000002, 0))},
		{"a numeric to_ids is read", byID["a3"].ToIDs},
		{"a deleted attribute is marked", byID["a4"].Deleted},
		{"an attribute of a deleted object is marked deleted", byID["o3"].Deleted && !byID["o1"].Deleted},
		{"type, value and category are kept", byID["o4"].Type == "domain|ip" && byID["o4"].Value == "x.example|198.51.101.9" && byID["o4"].Category == "Network activity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("attributes: %+v", ev.Attributes)
			}
		})
	}
}

func TestEventsResultIsTheUnionOfLiveAddressAttributes(t *testing.T) {
	ev := openEvent(t, filepath.Join("testdata", "event-objects.json"))
	r := eventsResult([]*Event{ev, ev})
	want := prefixes(t, "192.0.2.1/32", "198.51.100.0/24", "198.51.101.9/32", "203.0.113.5/32", "2001:db8::5/128")
	if !slices.Equal(r.Prefixes, want) {
		t.Errorf("prefixes = %v, want %v", r.Prefixes, want)
	}
	if r.Malformed != 2 {
		t.Errorf("malformed = %d, want 2 (the ip-dst holding not-an-ip, read twice)", r.Malformed)
	}
	if wantOthers := []Indicator{{"domain", "c2.example.com"}, {"domain", "evil.example"}}; !slices.Equal(r.Others, wantOthers) {
		t.Errorf("others = %v, want %v", r.Others, wantOthers)
	}
}

func TestParseEventOnRealFeeds(t *testing.T) {
	dirs := []string{"tweetfeed", "circl-osint-events"}
	for _, dir := range dirs {
		t.Run("every event of "+dir+" parses with its address attributes", func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join(shared.Data(t, "feeds", "misp-feed", dir), "*-*.json"))
			if err != nil || len(files) == 0 {
				t.Fatalf("%v, %d files", err, len(files))
			}
			for _, f := range files {
				ev := openEvent(t, f)
				if ev.UUID+".json" != filepath.Base(f) || ev.Info == "" || ev.ThreatLevel == 0 || ev.Timestamp.IsZero() {
					t.Errorf("%s: event = %q %q %d %v", f, ev.UUID, ev.Info, ev.ThreatLevel, ev.Timestamp)
				}
				ips := 0
				for _, a := range ev.Attributes {
					if a.Type == "ip-dst" || a.Type == "ip-src" {
						ips++
					}
				}
				r := eventsResult([]*Event{ev})
				if len(r.Prefixes)+r.Malformed > ips || (ips > 0 && len(r.Prefixes) == 0) {
					t.Errorf("%s: %d prefixes, %d malformed from %d address attributes", f, len(r.Prefixes), r.Malformed, ips)
				}
			}
		})
	}
}

func TestParseEventRejectsNonEvents(t *testing.T) {
	tests := []struct{ name, in string }{
		{"an empty document is refused", ""},
		{"a document without Event is refused", `{"response": []}`},
		{"an array is refused", `[{"Event": {}}]`},
		{"an object that is no event is refused", `{"name": "x"}`},
		{"trailing data is refused", `{"Event": {"uuid": "x"}} {"Event": {}}`},
		{"a non-numeric threat level is refused", `{"Event": {"threat_level_id": "high"}}`},
		{"a bad flag is refused", `{"Event": {"Attribute": [{"to_ids": "maybe"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ev, err := ParseEvent(strings.NewReader(tt.in)); err == nil {
				t.Fatalf("got %+v, want an error", ev)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	t.Run("the real TweetFeed manifest parses", func(t *testing.T) {
		fh, err := os.Open(shared.Data(t, "feeds", "misp-feed", "tweetfeed", "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		m, err := ParseManifest(fh)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := m["2e035642-c558-5019-89f2-bc7bdf8b34ce"]
		if len(m) != 365 || !ok || e.Info != "TweetFeed IOCs 2025-08-23" || e.Org != "TweetFeed" ||
			e.ThreatLevel != 4 || e.Date != "2025-08-23" || !e.Timestamp.Equal(time.Unix(1755989538, 0)) || len(e.Tags) != 3 {
			t.Errorf("%d entries, %+v", len(m), e)
		}
	})
	t.Run("a key that is not a UUID is refused, since it names a file", func(t *testing.T) {
		_, err := ParseManifest(strings.NewReader(`{"../../etc/passwd": {"info": "x"}}`))
		if !errors.Is(err, ErrEvent) {
			t.Fatalf("err = %v, want ErrEvent", err)
		}
	})
}
