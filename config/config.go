package config

import "github.com/rampart-ip/rampart/misp"

// Config is the whole of Rampart's configuration: one YAML file, strictly
// decoded, with defaults from Default and environment overrides (RAMPART_*).
// Each sub-struct is what one component's constructor takes.
type Config struct {
	HTTP    HTTP    `yaml:"http"`
	GRPC    GRPC    `yaml:"grpc"`
	DataDir string  `yaml:"data_dir"`
	Storage Storage `yaml:"storage"`
	MISP    MISP    `yaml:"misp"`
	Sync    Sync    `yaml:"sync"`
	History History `yaml:"history"`
	// Feeds are the static feed definitions. Nil (no feeds key) means the
	// default catalog; an empty list means no static feeds.
	Feeds []misp.Feed `yaml:"feeds"`
	// FeedsFile is a MISP feed-metadata JSON file whose feeds are added to Feeds.
	FeedsFile string  `yaml:"feeds_file"`
	Enrich    Enrich  `yaml:"enrich"`
	Scoring   Scoring `yaml:"scoring"`
	Cache     Cache   `yaml:"cache"`
	Auth      Auth    `yaml:"auth"`
	Alerts    Alerts  `yaml:"alerts"`
	Log       Log     `yaml:"log"`
}
