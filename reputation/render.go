package reputation

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendAnswerJSON appends the JSON of a to dst and returns it. The bytes
// are exactly those of encoding/json.Marshal(a), so transports may mix the
// two, but it allocates only to grow dst and takes a fraction of the
// time. Nil slices render as null, like encoding/json; answers made by the
// Service never have nil ones. A NaN or infinite score (which
// encoding/json refuses) renders as 0 so the output is always valid JSON.
func AppendAnswerJSON(dst []byte, a *Answer) []byte {
	dst = append(dst, `{"ip":`...)
	dst = appendJSONString(dst, a.IP)
	dst = append(dst, `,"is_IoC":`...)
	dst = strconv.AppendBool(dst, a.IsIoC)
	dst = append(dst, `,"is_Active":`...)
	dst = strconv.AppendBool(dst, a.IsActive)
	dst = append(dst, `,"historical":`...)
	dst = strconv.AppendBool(dst, a.Historical)
	dst = append(dst, `,"score":`...)
	dst = appendJSONFloat(dst, a.Score)
	dst = append(dst, `,"verdict":`...)
	dst = appendJSONString(dst, a.Verdict)
	dst = append(dst, `,"action":`...)
	dst = appendJSONString(dst, a.Action)
	dst = append(dst, `,"description":`...)
	dst = appendJSONString(dst, a.Description)
	dst = append(dst, `,"blacklists":`...)
	dst = appendJSONStrings(dst, a.Blacklists)
	dst = append(dst, `,"type":`...)
	dst = appendJSONStrings(dst, a.Type)
	dst = append(dst, `,"metadata":`...)
	dst = appendMetadataJSON(dst, &a.Metadata)
	if a.FirstSeen != nil {
		dst = append(dst, `,"first_seen":`...)
		dst = appendJSONTime(dst, *a.FirstSeen)
	}
	if a.LastSeen != nil {
		dst = append(dst, `,"last_seen":`...)
		dst = appendJSONTime(dst, *a.LastSeen)
	}
	dst = append(dst, `,"reasons":`...)
	if a.Reasons == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range a.Reasons {
			r := &a.Reasons[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"factor":`...)
			dst = appendJSONString(dst, r.Factor)
			dst = append(dst, `,"detail":`...)
			dst = appendJSONString(dst, r.Detail)
			dst = append(dst, `,"weight":`...)
			dst = appendJSONFloat(dst, r.Weight)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if len(a.Warnings) > 0 {
		dst = append(dst, `,"warnings":[`...)
		for i := range a.Warnings {
			w := &a.Warnings[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"list":`...)
			dst = appendJSONString(dst, w.List)
			dst = append(dst, `,"match":`...)
			dst = appendJSONString(dst, w.Match)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendMetadataJSON renders m with its omitempty fields left out.
func appendMetadataJSON(dst []byte, m *Metadata) []byte {
	dst = append(dst, '{')
	n := 0
	str := func(key, v string) {
		if v == "" {
			return
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, key...)
		dst = appendJSONString(dst, v)
	}
	flag := func(key string, v bool) {
		if !v {
			return
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, key...)
		dst = append(dst, "true"...)
	}
	str(`"asn":`, m.ASN)
	str(`"country":`, m.Country)
	str(`"org":`, m.Org)
	str(`"city":`, m.City)
	flag(`"anonymous":`, m.Anonymous)
	flag(`"vpn":`, m.VPN)
	flag(`"tor":`, m.Tor)
	flag(`"hosting":`, m.Hosting)
	flag(`"public_proxy":`, m.PublicProxy)
	return append(dst, '}')
}

func appendJSONStrings(dst []byte, list []string) []byte {
	if list == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

// appendJSONTime renders t as time.Time.MarshalJSON does for years 0-9999.
func appendJSONTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendJSONFloat renders f as encoding/json does: ES6 number formatting,
// exponent form below 1e-6 and from 1e21.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// jsonSafe reports whether an ASCII byte needs no escape in encoding/json's
// HTML-safe output.
func jsonSafe(b byte) bool {
	return b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
}

// appendJSONString renders s as encoding/json does with HTML escaping:
// invalid UTF-8 becomes \ufffd, U+2028 and U+2029 are escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe(b) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
