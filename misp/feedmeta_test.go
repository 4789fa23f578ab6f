package misp

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/internal/shared"
)

func TestLoadFeedMetadataOnMISPDefaults(t *testing.T) {
	fh, err := os.Open(shared.Data(t, "misp", "feed-metadata-defaults.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	feeds, err := LoadFeedMetadata(fh)
	if err != nil {
		t.Fatal(err)
	}
	if len(feeds) != 84 {
		t.Fatalf("%d feeds, want MISP's 84", len(feeds))
	}
	byName := map[string]Feed{}
	formats := map[string]int{}
	for _, f := range feeds {
		byName[f.Name] = f
		formats[f.SourceFormat]++
		if f.Origin != "feeds_file" {
			t.Errorf("%s: origin %q", f.Name, f.Origin)
		}
		for _, err := range f.Validate() {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"every source format is read", formats[FormatFreetext] > 0 && formats[FormatCSV] > 0 && formats[FormatMISP] > 0},
		{"csv settings in a JSON string are decoded", byName["Feodo IP Blocklist"].Settings.CSV == CSVSettings{Value: "2", Delimiter: ","}},
		{"a pipe delimiter is kept", byName["sshpwauth.txt"].Settings.CSV == CSVSettings{Value: "3", Delimiter: "|"}},
		{"doubly encoded settings are decoded", byName["cybercrime-tracker.net - all"].SourceFormat == FormatFreetext &&
			byName["cybercrime-tracker.net - all"].Settings.CSV.Value == ""},
		{"an excluderegex is kept", byName["Malware Bazaar"].Settings.Common.ExcludeRegex == `/^#.*/i`},
		{"enabled flags are kept", byName["Feodo IP Blocklist"].Enabled && !byName["OpenPhish url list"].Enabled},
		{"the feed's tag becomes a tag", len(byName["blocklist.de/lists/all.txt"].Tags) == 1 &&
			strings.HasPrefix(byName["blocklist.de/lists/all.txt"].Tags[0], "osint:source-type=")},
		{"provider, url and input_source are read", byName["blocklist.de/lists/all.txt"].Provider == "blocklist.de" &&
			byName["blocklist.de/lists/all.txt"].URL == "https://lists.blocklist.de/lists/all.txt" &&
			byName["blocklist.de/lists/all.txt"].InputSource == "network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error("not so")
			}
		})
	}
}

func TestLoadFeedMetadataRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"a document that is not JSON is refused", "feeds:"},
		{"an object instead of a list is refused", `{"Feed": {}}`},
		{"broken settings are refused", `[{"Feed": {"name": "x", "settings": "{not json"}}]`},
		{"an invalid enabled flag is refused", `[{"Feed": {"name": "x", "enabled": "sometimes"}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if feeds, err := LoadFeedMetadata(strings.NewReader(tt.in)); err == nil {
				t.Fatalf("got %+v, want an error", feeds)
			}
		})
	}
	t.Run("string flags and object settings are accepted", func(t *testing.T) {
		feeds, err := LoadFeedMetadata(strings.NewReader(`[{"Feed": {"name": "x", "enabled": "1", "url": "u", "source_format": "csv", "settings": {"csv": {"value": "1"}}}}]`))
		if err != nil || len(feeds) != 1 || !feeds[0].Enabled || feeds[0].Settings.CSV.Value != "1" {
			t.Fatalf("got %+v, %v", feeds, err)
		}
	})
}

func TestFeedValidate(t *testing.T) {
	good := Feed{Name: "x", URL: "https://example.com/list.txt", SourceFormat: FormatCSV,
		Settings: Settings{CSV: CSVSettings{Value: "1,3", Delimiter: `\t`}}}
	weight := func(v float64) *float64 { return &v }
	tests := []struct {
		name   string
		change func(*Feed)
		fields []string
	}{
		{"a complete definition is valid", func(*Feed) {}, nil},
		{"a local path is valid", func(f *Feed) { f.URL = "/var/lib/rampart/list.txt" }, nil},
		{"a missing name and url are both reported", func(f *Feed) { f.Name, f.URL = " ", "" }, []string{"name", "url"}},
		{"an unknown scheme is reported", func(f *Feed) { f.URL = "gopher://example.com/" }, []string{"url"}},
		{"an unknown format is reported", func(f *Feed) { f.SourceFormat = "stix" }, []string{"source_format"}},
		{"a bad csv column is reported", func(f *Feed) { f.Settings.CSV.Value = "0" }, []string{"settings.csv.value"}},
		{"a long delimiter is reported", func(f *Feed) { f.Settings.CSV.Delimiter = "||" }, []string{"settings.csv.delimiter"}},
		{"a bad excluderegex is reported", func(f *Feed) { f.Settings.Common.ExcludeRegex = "/[/" }, []string{"settings.common.excluderegex"}},
		{"a bad headers line is reported", func(f *Feed) { f.Headers = "no colon here" }, []string{"headers"}},
		{"an unknown input_source is reported", func(f *Feed) { f.InputSource = "carrier pigeon" }, []string{"input_source"}},
		{"a weight above 1 is reported", func(f *Feed) { f.Weight = weight(1.5) }, []string{"weight"}},
		{"a NaN weight is reported", func(f *Feed) { f.Weight = weight(math.NaN()) }, []string{"weight"}},
		{"a negative lifetime is reported", func(f *Feed) { f.Lifetime = Duration(-time.Hour) }, []string{"lifetime"}},
		{"a refresh under a minute is reported", func(f *Feed) { f.Refresh = Duration(time.Second) }, []string{"refresh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good
			tt.change(&f)
			errs := f.Validate()
			if len(errs) != len(tt.fields) {
				t.Fatalf("errors = %v, want on %v", errs, tt.fields)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.fields[i]+": ") || !errors.Is(err, ErrFeed) {
					t.Errorf("error %q does not name %s or wrap ErrFeed", err, tt.fields[i])
				}
			}
		})
	}
}
