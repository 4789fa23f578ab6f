package misp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unsafe"
)

// ParseFreetext parses a list in MISP's freetext format: every line is split
// into tokens on whitespace, ",", ";", "<" and ">", tokens are trimmed of
// quotes, dots, commas and parentheses and refanged ("1.2.3[.]4",
// "hxxp://"), and each token is typed. Addresses, CIDR ranges, "ip:port",
// "[ipv6]:port", "ip|port" and "domain|ip" go to Result.Prefixes; domains,
// hostnames, URLs, e-mail addresses, hashes and CVE ids go to Result.Others;
// anything else (IPsum's counts, prose) is dropped. Unlike MISP, a line whose
// first non-blank character is "#" is a comment, and so is the rest of a line
// from a token starting with "#" (see the package documentation).
//
// A malformed entry or an overlong line is counted and skipped; only a read
// error fails the parse, and then no Result is returned. The reader is read
// to its end: bound it (the Fetcher does).
func ParseFreetext(r io.Reader) (*Result, error) {
	var c collector
	err := scanLines(r, &c, func(line string) {
		c.lines++
		c.freetext(line)
	})
	if err != nil {
		return nil, fmt.Errorf("parse freetext: %w", err)
	}
	return c.result(), nil
}

// scanLines calls fn for every line of r that is not blank and not a "#"
// comment, with surrounding whitespace removed. The string aliases the read
// buffer: it is valid only during the call. Overlong lines are counted in c.
func scanLines(r io.Reader, c *collector, fn func(line string)) error {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	first := true
	for {
		raw, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			c.bad++
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return err
			}
			if err == io.EOF {
				return nil
			}
			continue
		}
		if first {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
			first = false
		}
		line := bytes.TrimSpace(raw)
		if len(line) > 0 && line[0] != '#' {
			fn(unsafe.String(&line[0], len(line)))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// isSep reports whether b separates freetext tokens, as in MISP.
func isSep(b byte) bool {
	switch b {
	case ' ', '\t', '\r', '\n', '\v', '\f', ',', ';', '<', '>':
		return true
	}
	return false
}

// freetext types every token of one line.
func (c *collector) freetext(line string) {
	for {
		i := 0
		for i < len(line) && isSep(line[i]) {
			i++
		}
		line = line[i:]
		if line == "" || line[0] == '#' {
			return // end of line or an inline comment
		}
		j := 0
		for j < len(line) && !isSep(line[j]) {
			j++
		}
		tok := line[:j]
		line = line[j:]
		// "1.2.3.4#comment": the rest of the line is a comment, but a URL
		// keeps its fragment.
		if h := strings.IndexByte(tok, '#'); h > 0 && !strings.Contains(tok, "://") {
			tok, line = tok[:h], ""
		}
		c.token(tok)
	}
}

// token types one freetext token.
func (c *collector) token(tok string) {
	tok = trimToken(tok)
	if tok == "" || len(tok) > maxTokenBytes {
		return
	}
	if needsRefang(tok) {
		tok = refang(tok)
	}
	p, k := parseAddrToken(tok)
	switch k {
	case addrOK:
		c.prefixes = append(c.prefixes, p)
	case addrBad:
		c.bad++
	case notAddr:
		if typ, value := classifyOther(tok); typ != "" {
			c.addOther(typ, value)
		}
	}
}

// trimToken trims the quotes, dots, commas and parentheses MISP trims.
func trimToken(s string) string {
	isTrim := func(c byte) bool {
		return c == '\'' || c == '"' || c == '.' || c == ',' || c == '(' || c == ')'
	}
	for len(s) > 0 && isTrim(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isTrim(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func needsRefang(s string) bool {
	return strings.ContainsAny(s, "[({") || hasPrefixFold(s, "hxxp") || hasPrefixFold(s, "fxp")
}

// refang undoes defanging; it allocates, but only for defanged tokens.
func refang(s string) string {
	// The defanging conventions MISP's freetext import undoes.
	refangs := [...][2]string{
		{"[.]", "."}, {"[dot]", "."}, {"(dot)", "."}, {"(.)", "."}, {"{.}", "."},
		{"[:]", ":"}, {"[://]", "://"}, {"[/]", "/"}, {"[at]", "@"}, {"(at)", "@"},
	}
	for _, r := range refangs {
		if len(s) >= len(r[0]) && containsFold(s, r[0]) {
			s = replaceFold(s, r[0], r[1])
		}
	}
	switch {
	case hasPrefixFold(s, "hxxp"):
		s = "http" + s[4:]
	case hasPrefixFold(s, "fxp"):
		s = "ftp" + s[3:]
	}
	return s
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func replaceFold(s, old, new string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if i+len(old) <= len(s) && strings.EqualFold(s[i:i+len(old)], old) {
			b.WriteString(new)
			i += len(old)
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// classifyOther types a token that is not an address, with MISP's attribute
// type names; it returns "" for a token that is no indicator.
func classifyOther(tok string) (typ, value string) {
	if t := hashType(tok); t != "" {
		return t, strings.ToLower(tok)
	}
	if i := strings.Index(tok, "://"); i > 0 {
		if isScheme(tok[:i]) && len(tok) > i+3 {
			return "url", tok
		}
		return "", ""
	}
	if name, hash, ok := strings.Cut(tok, "|"); ok {
		if t := hashType(hash); t != "" && name != "" && !strings.ContainsAny(name, "/\\") {
			return "filename|" + t, tok
		}
		return "", ""
	}
	if i := strings.LastIndexByte(tok, '@'); i > 0 {
		if isDomain(tok[i+1:]) && !strings.ContainsAny(tok[:i], "/@:") {
			return "email-src", strings.ToLower(tok)
		}
		return "", ""
	}
	if len(tok) >= 13 && hasPrefixFold(tok, "cve-") && isCVE(tok) {
		return "vulnerability", strings.ToUpper(tok)
	}
	host, _, hasPath := strings.Cut(tok, "/")
	host = stripPort(host)
	if hasPath {
		if isDomain(host) || looksIPv4(host) {
			return "url", tok
		}
		return "", ""
	}
	if isDomain(host) {
		if strings.Count(host, ".") > 1 {
			return "hostname", strings.ToLower(host)
		}
		return "domain", strings.ToLower(host)
	}
	return "", ""
}

func hashType(s string) string {
	var t string
	switch len(s) {
	case 32:
		t = "md5"
	case 40:
		t = "sha1"
	case 64:
		t = "sha256"
	case 128:
		t = "sha512"
	default:
		return ""
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return ""
		}
	}
	return t
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isScheme(s string) bool {
	if len(s) < 2 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < 'a' || c > 'z') && !(i > 0 && (s[i] == '+' || s[i] == '-' || s[i] == '.' || '0' <= s[i] && s[i] <= '9')) {
			return false
		}
	}
	return true
}

// isCVE reports whether s is "CVE-YYYY-NNNN..." (case-insensitive).
func isCVE(s string) bool {
	rest := s[4:]
	year, num, ok := strings.Cut(rest, "-")
	if !ok || len(year) != 4 || len(num) < 4 || len(num) > 9 {
		return false
	}
	for _, part := range []string{year, num} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// stripPort removes a ":port" suffix.
func stripPort(s string) string {
	if i := strings.LastIndexByte(s, ':'); i > 0 && validPort(s[i+1:]) {
		return s[:i]
	}
	return s
}

// isFileExtension reports whether a last label makes a dotted token a file
// name rather than a domain in freetext ("invoice.exe", "gate.php").
func isFileExtension(tld string) bool {
	switch strings.ToLower(tld) {
	case "exe", "dll", "php", "html", "htm", "js", "txt", "bat", "ps1", "vbs", "jar",
		"doc", "docx", "xls", "xlsx", "pdf", "rar", "png", "jpg", "gif", "asp", "aspx",
		"jsp", "cgi", "bin", "dat", "tmp", "log", "lnk", "hta":
		return true
	}
	return false
}

// isDomain reports whether s is a domain name with at least two labels and
// an alphabetic (or punycode) top-level label.
func isDomain(s string) bool {
	if len(s) < 4 || len(s) > 253 {
		return false
	}
	labels := 0
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z') {
				return false
			}
			continue
		}
		label := s[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		labels++
		start = i + 1
	}
	if labels < 2 {
		return false
	}
	tld := s[strings.LastIndexByte(s, '.')+1:]
	if hasPrefixFold(tld, "xn--") {
		return true
	}
	if len(tld) < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if c := tld[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return len(tld) > 4 || !isFileExtension(tld)
}
