package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("evento-gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "directory of the package to generate code for")
	check := fs.Bool("check", false, "write nothing; fail if the generated files are not up to date")
	verbose := fs.Bool("v", false, "list the files written")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: evento-gen [-dir DIR] [-check] [-v]\n\nGenerates <file>_evento.go for the //evento:aggregate structs of the package in DIR.\nSet up once per module with go get -tool github.com/evento-go/evento/cmd/evento-gen,\nthen run it from each such package with //go:generate go tool evento-gen.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	changed, err := generateDir(*dir, !*check)
	if err != nil {
		var list errorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(stderr, e.cli())
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	if *check && len(changed) > 0 {
		for _, f := range changed {
			fmt.Fprintf(stderr, "evento-gen: %s is not up to date: run go generate\n", f)
		}
		return 1
	}
	if *verbose {
		for _, f := range changed {
			fmt.Fprintf(stdout, "evento-gen: wrote %s\n", f)
		}
	}
	return 0
}

// generateDir generates the code of the package in dir. With write set it
// writes the files that changed and removes generated files that no longer
// have an aggregate; it returns the names of those files either way.
func generateDir(dir string, write bool) ([]string, error) {
	m, err := load(dir)
	if err != nil {
		return nil, err
	}
	out, err := m.generate()
	if err != nil {
		return nil, err
	}
	var changed []string
	for name, b := range out {
		old, err := os.ReadFile(name)
		if err == nil && bytes.Equal(old, b) {
			continue
		}
		changed = append(changed, name)
		if write {
			if err := os.WriteFile(name, b, 0o644); err != nil {
				return nil, fmt.Errorf("evento-gen: %w", err)
			}
		}
	}
	for name := range m.generated {
		if _, ok := out[name]; ok || filepath.Dir(name) != m.dir {
			continue
		}
		changed = append(changed, name)
		if write {
			if err := os.Remove(name); err != nil {
				return nil, fmt.Errorf("evento-gen: %w", err)
			}
		}
	}
	sort.Strings(changed)
	return changed, nil
}
