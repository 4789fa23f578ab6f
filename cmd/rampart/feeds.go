package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

func runFeeds(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("feeds", stderr)
	all := fs.Bool("all", false, "include disabled feeds")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	a, err := newApp(ctx, *configPath, io.Discard)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.engine.LoadState(ctx); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFORMAT\tENABLED\tORIGIN\tENTRIES\tLAST SUCCESS\tURL")
	shown := 0
	for _, f := range a.engine.Feeds() {
		if !f.Enabled && !*all {
			continue
		}
		last := "never"
		if !f.LastSuccess.IsZero() {
			last = f.LastSuccess.UTC().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%s\t%s\n", f.Name, f.Format, f.Enabled, f.Origin, f.Entries, last, f.URL)
		shown++
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d feeds\n", shown)
	return nil
}
