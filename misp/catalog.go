package misp

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// catalogJSON is the default catalog, generated from MISP's default feed
// list by TestCatalog with -update (see catalog_test.go).
//
//go:embed catalog.json
var catalogJSON []byte

// DefaultCatalog returns the feeds Rampart uses when the configuration names
// none: the feeds of MISP's default feed list (app/files/feed-metadata/
// defaults.json) whose content is IP addresses or ranges, with MISP's names,
// providers, URLs, settings and enabled flags, each with a Category. Two
// entries differ from MISP's list on purpose: "firehol_level1" uses FireHOL's
// current repository URL, and IPsum level 3 is enabled. The result is a fresh
// copy, with Origin "catalog"; callers may change it.
func DefaultCatalog() []Feed {
	var feeds []Feed
	if err := json.Unmarshal(catalogJSON, &feeds); err != nil {
		// The file is embedded at build time and checked by the tests.
		panic(fmt.Sprintf("misp: embedded catalog.json: %v", err))
	}
	for i := range feeds {
		feeds[i].Origin = "catalog"
	}
	return feeds
}
