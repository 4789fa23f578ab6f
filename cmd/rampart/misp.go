package main

import (
	"context"
	"errors"
	"io"
)

// syncMISP pulls MISP's feeds and attributes once, for `rampart sync`.
func (a *app) syncMISP(ctx context.Context, w io.Writer) error {
	if a.cfg.MISP.URL == "" {
		return nil
	}
	return errors.New("misp sync is not available in this build")
}
