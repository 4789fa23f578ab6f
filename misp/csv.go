package misp

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unsafe"
)

// ErrCSVSettings is returned for csv settings MISP would not accept either.
var ErrCSVSettings = errors.New("invalid csv settings")

// maxCSVColumn bounds the column numbers of settings.csv.value.
const maxCSVColumn = 1024

// ParseCSV parses a list in MISP's csv format. settings.Value lists the
// 1-based columns to read ("2", "1,3"; empty means every column);
// settings.Delimiter is one character, empty meaning "," and the two
// characters `\t` meaning a tab. A '"' encloses a field (with "" for a quote
// inside it), rows whose first cell starts with "#" are skipped, and each
// selected cell is typed as in ParseFreetext, so a header row falls out.
// Rows are lines: as in MISP, a quoted field does not span lines.
//
// Invalid settings fail with ErrCSVSettings; a malformed row is counted and
// skipped; a read error fails the parse and no Result is returned.
func ParseCSV(r io.Reader, settings CSVSettings) (*Result, error) {
	delim, cols, err := settings.parse()
	if err != nil {
		return nil, fmt.Errorf("parse csv: %w", err)
	}
	var c collector
	var cells []string
	var scratch []byte
	err = scanLines(r, &c, func(line string) {
		c.lines++
		var ok bool
		cells, scratch, ok = splitCSV(line, delim, cells[:0], scratch[:0])
		if !ok {
			c.bad++
			return
		}
		if len(cells) > 0 && strings.HasPrefix(strings.TrimSpace(cells[0]), "#") {
			return
		}
		if len(cols) == 0 {
			for _, cell := range cells {
				c.freetext(cell)
			}
			return
		}
		for _, col := range cols {
			if col < len(cells) {
				c.freetext(cells[col])
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("parse csv: %w", err)
	}
	return c.result(), nil
}

// parse returns the delimiter and the 0-based columns of the settings.
func (s CSVSettings) parse() (byte, []int, error) {
	var delim byte
	switch s.Delimiter {
	case "":
		delim = ','
	case `\t`, "\t":
		delim = '\t'
	default:
		if len(s.Delimiter) != 1 || s.Delimiter == `"` || s.Delimiter == "\n" || s.Delimiter == "\r" {
			return 0, nil, fmt.Errorf("%w: delimiter %q must be one character (or \\t)", ErrCSVSettings, s.Delimiter)
		}
		delim = s.Delimiter[0]
	}
	var cols []int
	if strings.TrimSpace(s.Value) == "" {
		return delim, nil, nil
	}
	for part := range strings.SplitSeq(s.Value, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > maxCSVColumn {
			return 0, nil, fmt.Errorf("%w: value %q: columns are 1-based numbers up to %d separated by commas", ErrCSVSettings, s.Value, maxCSVColumn)
		}
		cols = append(cols, n-1)
	}
	return delim, cols, nil
}

// splitCSV splits one line into cells. Cells alias line, or scratch when a
// quoted cell had to be unescaped; both are reused between lines. It reports
// false for an unterminated quote.
func splitCSV(line string, delim byte, cells []string, scratch []byte) ([]string, []byte, bool) {
	// Unescaped cells are appended to scratch; reserve enough so that the
	// strings taken from it are never moved by a later append.
	if cap(scratch) < len(line) {
		scratch = make([]byte, 0, len(line))
	}
	for i := 0; ; {
		if i < len(line) && line[i] == '"' {
			start := len(scratch)
			j := i + 1
			closed := false
			for j < len(line) {
				if line[j] == '"' {
					if j+1 < len(line) && line[j+1] == '"' {
						scratch = append(scratch, '"')
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				scratch = append(scratch, line[j])
				j++
			}
			if !closed {
				return cells, scratch, false
			}
			cell := scratch[start:]
			if len(cell) == 0 {
				cells = append(cells, "")
			} else {
				cells = append(cells, unsafe.String(&cell[0], len(cell)))
			}
			// Anything between the closing quote and the delimiter is kept
			// out, as str_getcsv does with stray characters.
			for j < len(line) && line[j] != delim {
				j++
			}
			if j >= len(line) {
				return cells, scratch, true
			}
			i = j + 1
			continue
		}
		end := strings.IndexByte(line[i:], delim)
		if end < 0 {
			cells = append(cells, line[i:])
			return cells, scratch, true
		}
		cells = append(cells, line[i:i+end])
		i += end + 1
	}
}
