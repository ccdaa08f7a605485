// Command pveschemagen regenerates pvesim/internal/pveschema/schema.json
// from Proxmox VE's API viewer data (pve-apidata.json). Run it through
// `go generate ./pvesim/...`; -in (or $PVE_APIDATA) overrides where the
// data is read from, by default ../shared/data/pve-apidata.json beside the
// repository.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/accountdb/accountdb/pvesim/internal/pveschema"
)

func main() {
	in := flag.String("in", "", "path of pve-apidata.json (default $PVE_APIDATA or ../shared/data/pve-apidata.json beside the repository)")
	out := flag.String("out", "schema.json", "file to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pveschemagen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" {
		p, err := pveschema.SourcePath()
		if err != nil {
			return err
		}
		in = p
	}
	src, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("%w (set -in or PVE_APIDATA to the path of pve-apidata.json)", err)
	}
	b, err := pveschema.Extract(src)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
