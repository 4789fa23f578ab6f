package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLeaseHolderLen bounds a lease holder's name.
const MaxLeaseHolderLen = 256

// CheckLease validates the arguments of TryLease and ReleaseLease; both
// backends call it before touching anything.
func CheckLease(name, holder string, ttl time.Duration) error {
	switch {
	case name == "":
		return errors.New("empty lease name")
	case holder == "":
		return errors.New("empty lease holder")
	case len(holder) > MaxLeaseHolderLen:
		return fmt.Errorf("lease holder longer than %d bytes", MaxLeaseHolderLen)
	case ttl <= 0:
		return fmt.Errorf("lease ttl %v is not positive", ttl)
	}
	return nil
}

// ParseLease splits a stored lease value ("<expiry unix ms> <holder>"). A
// value that does not parse is treated as an expired lease, so that a
// damaged record cannot block the lease for ever.
func ParseLease(v string) (expires time.Time, holder string) {
	ms, h, ok := strings.Cut(v, " ")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return time.Time{}, ""
	}
	return time.UnixMilli(n), h
}

// FormatLease is the stored form of a lease that ParseLease reads.
func FormatLease(expires time.Time, holder string) string {
	return strconv.FormatInt(expires.UnixMilli(), 10) + " " + holder
}
