package misp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"testing"

	"github.com/rampart-ip/rampart/internal/shared"
)

var update = flag.Bool("update", false, "regenerate catalog.json from MISP's default feed list")

// catalogCategories selects the feeds of MISP's default list whose content is
// IP addresses or ranges, by MISP name, with the category each lists. Feeds
// left out list domains, URLs or hashes (the SSL "IPBL" lists certificate
// SHA1s in its selected column, PhishScore's column 3 is URLs), or are in
// the misp format, whose events carry every kind of indicator.
var catalogCategories = map[string]string{
	"ELLIO: IP Feed (Community version)":      "scanner",
	"blockrules of rules.emergingthreats.net": "compromised",
	"Tor exit nodes":                          "tor",
	"Tor ALL nodes":                           "tor",
	"ip-block-list - snort.org":               "reputation",
	"pop3gropers":                             "bruteforce",
	"Feodo IP Blocklist":                      "c2",
	"firehol_level1":                          "reputation",
	"IPs from High-Confidence DGA-Based C&Cs Actively Resolving - requires a valid license": "c2",
	"ci-badguys.txt":                "reputation",
	"alienvault reputation generic": "reputation",
	"blocklist.de/lists/all.txt":    "bruteforce",
	"VNC RFB":                       "scanner",
	"sshpwauth.txt":                 "bruteforce",
	"sipregistration":               "scanner",
	"sipquery":                      "scanner",
	"sipinvitation":                 "scanner",
	"DNS recursion desired":         "scanner",
	"DNS recursion desired IN ANY":  "scanner",
	"DNS CH TXT version.bind":       "scanner",
	"IP protocol 41":                "scanner",
	"SMTP data":                     "spam",
	"SMTP greet":                    "spam",
	"TELNET login":                  "bruteforce",
	"blocklist.greensnow.co":        "bruteforce",
	"CyberCure - IP Feed":           "reputation",
	"ipspamlist":                    "spam",
	"mirai.security.gives":          "botnet",
	"malsilo.ipv4":                  "malware",
	"Panels Tracker":                "c2",
	"IPsum (aggregation of all feeds) - level 1 - lot of false positives":   "reputation",
	"IPsum (aggregation of all feeds) - level 2 - medium false positives":   "reputation",
	"IPsum (aggregation of all feeds) - level 3 - low false positives":      "reputation",
	"IPsum (aggregation of all feeds) - level 4 - very low false positives": "reputation",
	"IPsum (aggregation of all feeds) - level 5 - ultra false positives":    "reputation",
	"IPsum (aggregation of all feeds) - level 6 - no false positives":       "reputation",
	"IPsum (aggregation of all feeds) - level 7 - no false positives":       "reputation",
	"IPsum (aggregation of all feeds) - level 8 - no false positives":       "reputation",
	"SSH Bruteforce IPs":                 "bruteforce",
	"Telnet Bruteforce IPs":              "bruteforce",
	"threatfox indicators of compromise": "malware",
	"James Brine Bruteforce IPs":         "bruteforce",
	"Threatview.io - C2 Hunt Feed":       "c2",
	"Threatview.io - IP Blocklist":       "reputation",
}

// Deliberate differences from MISP's list.
const (
	fireholLevel1URL = "https://raw.githubusercontent.com/firehol/blocklist-ipsets/master/firehol_level1.netset"
	ipsumLevel3      = "IPsum (aggregation of all feeds) - level 3 - low false positives"
	ipsumLevel3URL   = "https://raw.githubusercontent.com/stamparm/ipsum/master/levels/3.txt"
)

// generateCatalog builds the catalog from MISP's default feed list.
func generateCatalog(t *testing.T) []Feed {
	t.Helper()
	fh, err := os.Open(shared.Data(t, "misp", "feed-metadata-defaults.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	all, err := LoadFeedMetadata(fh)
	if err != nil {
		t.Fatal(err)
	}
	var out []Feed
	for _, f := range all {
		cat, ok := catalogCategories[f.Name]
		if !ok {
			continue
		}
		f.Category = cat
		f.Origin = ""
		switch f.Name {
		case "firehol_level1":
			f.URL, f.Enabled = fireholLevel1URL, true
		case ipsumLevel3:
			f.Enabled = true
		}
		out = append(out, f)
	}
	return out
}

func TestCatalog(t *testing.T) {
	want := generateCatalog(t)
	if len(want) != len(catalogCategories) {
		t.Fatalf("MISP's list has %d of the %d selected feeds: a name changed", len(want), len(catalogCategories))
	}
	if *update {
		b, err := json.MarshalIndent(want, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("catalog.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := DefaultCatalog()

	t.Run("the embedded file is what MISP's list generates", func(t *testing.T) {
		for i := range want {
			want[i].Origin = "catalog"
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("catalog.json is stale: run go test ./misp -run TestCatalog -update")
		}
	})
	t.Run("the embedded file stays small", func(t *testing.T) {
		if len(catalogJSON) > 50<<10 {
			t.Errorf("catalog.json is %d bytes", len(catalogJSON))
		}
	})
	t.Run("every feed is valid, named uniquely and has a category", func(t *testing.T) {
		seen := map[string]bool{}
		for _, f := range got {
			for _, err := range f.Validate() {
				t.Errorf("%s: %v", f.Name, err)
			}
			if seen[f.Name] {
				t.Errorf("duplicate name %q", f.Name)
			}
			seen[f.Name] = true
			if f.Category == "" || f.Provider == "" || f.Origin != "catalog" {
				t.Errorf("%s: category %q provider %q origin %q", f.Name, f.Category, f.Provider, f.Origin)
			}
			if f.SourceFormat == FormatMISP {
				t.Errorf("%s: misp-format feeds are not IP lists", f.Name)
			}
		}
	})
	t.Run("FireHOL level 1 and IPsum level 3 are enabled with their real URLs", func(t *testing.T) {
		for _, u := range []string{fireholLevel1URL, ipsumLevel3URL} {
			i := slices.IndexFunc(got, func(f Feed) bool { return f.URL == u })
			if i < 0 || !got[i].Enabled {
				t.Errorf("%s: missing or disabled", u)
			}
		}
	})
	t.Run("each call returns a fresh copy", func(t *testing.T) {
		a := DefaultCatalog()
		a[0].Name = "changed"
		if DefaultCatalog()[0].Name == "changed" {
			t.Error("DefaultCatalog shares its slice")
		}
	})
}
