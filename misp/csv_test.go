package misp

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rampart-ip/rampart/internal/shared"
)

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		settings  CSVSettings
		want      []string
		malformed int
	}{
		{
			name:     "the value column is 1-based and the header row falls out",
			in:       "first_seen,dst_ip,port\n2024-01-01 10:00:00,192.0.2.1,443\n2024-01-02 10:00:00,192.0.2.2,80\n",
			settings: CSVSettings{Value: "2", Delimiter: ","},
			want:     []string{"192.0.2.1/32", "192.0.2.2/32"},
		},
		{
			name:     "several value columns are all read",
			in:       "192.0.2.1,example.com,198.51.100.1\n",
			settings: CSVSettings{Value: "1,3"},
			want:     []string{"192.0.2.1/32", "198.51.100.1/32"},
		},
		{
			name:     "an empty value reads every column",
			in:       "192.0.2.1,198.51.100.1\n",
			settings: CSVSettings{},
			want:     []string{"192.0.2.1/32", "198.51.100.1/32"},
		},
		{
			name:     "the literal \\t means a tab",
			in:       "x\t192.0.2.1\nx\t192.0.2.2\n",
			settings: CSVSettings{Value: "2", Delimiter: `\t`},
			want:     []string{"192.0.2.1/32", "192.0.2.2/32"},
		},
		{
			name:     "dataplane's pipe-delimited rows give column 3",
			in:       "# comment\n  174 |  ORG  |  192.0.2.5  |  2024-01-01 00:00:00  |  sshpwauth\n",
			settings: CSVSettings{Value: "3", Delimiter: "|"},
			want:     []string{"192.0.2.5/32"},
		},
		{
			name:     "a space delimiter works as in alienvault's list",
			in:       "192.0.2.6 # Malicious Host\n",
			settings: CSVSettings{Value: "1", Delimiter: " "},
			want:     []string{"192.0.2.6/32"},
		},
		{
			name:     "quoted fields may hold the delimiter and escaped quotes",
			in:       "\"a, \"\"b\"\"\",\"192.0.2.7\"\n",
			settings: CSVSettings{Value: "2"},
			want:     []string{"192.0.2.7/32"},
		},
		{
			name:     "rows whose first cell starts with # are skipped, quoted or not",
			in:       "\"# 192.0.2.8\",192.0.2.9\n192.0.2.10,x\n",
			settings: CSVSettings{Value: "1,2"},
			want:     []string{"192.0.2.10/32"},
		},
		{
			name:      "short rows and an unterminated quote are skipped",
			in:        "only\n\"192.0.2.11,192.0.2.12\n192.0.2.13,192.0.2.14\n",
			settings:  CSVSettings{Value: "2"},
			want:      []string{"192.0.2.14/32"},
			malformed: 1,
		},
		{
			name:      "an invalid address in the value column is malformed",
			in:        "x,192.0.2.300\nx,192.0.2.15\n",
			settings:  CSVSettings{Value: "2"},
			want:      []string{"192.0.2.15/32"},
			malformed: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseCSV(strings.NewReader(tt.in), tt.settings)
			if err != nil {
				t.Fatal(err)
			}
			if want := prefixes(t, tt.want...); !slices.Equal(r.Prefixes, want) {
				t.Errorf("prefixes = %v, want %v", r.Prefixes, want)
			}
			if r.Malformed != tt.malformed {
				t.Errorf("malformed = %d, want %d", r.Malformed, tt.malformed)
			}
		})
	}
}

func TestParseCSVRejectsBadSettings(t *testing.T) {
	for _, s := range []CSVSettings{
		{Value: "0"}, {Value: "a"}, {Value: "1,,2"}, {Value: "-1"}, {Value: "99999"},
		{Delimiter: ",,"}, {Delimiter: `"`}, {Delimiter: "\n"},
	} {
		t.Run("settings "+s.Value+" "+s.Delimiter+" are refused", func(t *testing.T) {
			r, err := ParseCSV(strings.NewReader("192.0.2.1\n"), s)
			if !errors.Is(err, ErrCSVSettings) || r != nil {
				t.Fatalf("got %v, %v; want ErrCSVSettings", r, err)
			}
		})
	}
}

func TestParseCSVOnFeodoTracker(t *testing.T) {
	for _, name := range []string{"feodotracker_ipblocklist_2021-12-20.csv", "feodotracker_ipblocklist_2024-04-04.csv"} {
		t.Run("column 2 of "+name+" gives one address a row", func(t *testing.T) {
			data, err := os.ReadFile(shared.Data(t, "feeds", "raw", name))
			if err != nil {
				t.Fatal(err)
			}
			// Rows are the lines that start with a quote, minus the header.
			rows := map[string]bool{}
			for line := range strings.Lines(string(data)) {
				if strings.HasPrefix(line, `"`) && !strings.HasPrefix(line, `"first_seen`) {
					rows[strings.Split(line, `"`)[3]] = true
				}
			}
			r, err := ParseCSV(strings.NewReader(string(data)), CSVSettings{Value: "2", Delimiter: ","})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Prefixes) != len(rows) || len(rows) == 0 || r.Malformed != 0 {
				t.Fatalf("prefixes = %d, malformed = %d; want %d, 0", len(r.Prefixes), r.Malformed, len(rows))
			}
			for _, p := range r.Prefixes {
				if !rows[p.Addr().String()] {
					t.Errorf("%v is not in the file's dst_ip column", p)
				}
			}
		})
	}
}
