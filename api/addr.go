package api

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrInvalidAddr is wrapped by every error ParseAddr returns.
var ErrInvalidAddr = errors.New("invalid address")

// maxAddrLen bounds the text of one address. The longest textual IPv6
// address without a zone ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
// has 45 characters; anything longer is rejected before it is parsed or
// echoed in an error message.
const maxAddrLen = 45

// ParseAddr parses one client address strictly: a dotted-quad IPv4 address
// or an IPv6 address, nothing else. Surrounding whitespace, IPv6 zones
// ("fe80::1%eth0"), CIDR ranges, ports and IPv4 octets with leading zeros
// are errors, each with a message that says what is wrong. An IPv4-mapped
// IPv6 address ("::ffff:192.0.2.1") is unmapped to its IPv4 address so
// that both spellings get the same answer. Every error wraps
// ErrInvalidAddr.
func ParseAddr(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		// The common case first, with no further checks: netip accepts
		// exactly the forms wanted here, except zones.
		return a.Unmap(), nil
	}
	return netip.Addr{}, addrError(s)
}

// addrError explains why s is not an acceptable address. It runs only on
// the error path, so it may be thorough.
func addrError(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: the address is empty", ErrInvalidAddr)
	case len(s) > maxAddrLen:
		return fmt.Errorf("%w: %d characters is too long for an IP address (at most %d)", ErrInvalidAddr, len(s), maxAddrLen)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%w: %q has surrounding whitespace", ErrInvalidAddr, s)
	case strings.Contains(s, "%"):
		return fmt.Errorf("%w: %q has an IPv6 zone; zones are not accepted", ErrInvalidAddr, s)
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return fmt.Errorf("%w: %q is a range; ask about one address", ErrInvalidAddr, s)
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return fmt.Errorf("%w: %q has a port; give the address alone", ErrInvalidAddr, s)
	}
	_, err := netip.ParseAddr(s)
	reason := "not an IPv4 or IPv6 address"
	if err != nil {
		// netip's messages read `ParseAddr("..."): reason`; keep the reason.
		if _, r, ok := strings.Cut(err.Error(), "): "); ok && r != "" {
			reason = r
		}
	}
	return fmt.Errorf("%w: %q: %s", ErrInvalidAddr, s, reason)
}
