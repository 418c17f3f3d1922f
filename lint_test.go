package evento_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// libraryFiles returns the non-test Go files of library packages: everything
// except commands, examples, testdata and generated files.
func libraryFiles(t *testing.T) map[string]*ast.File {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]*ast.File{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "cmd", "examples", "testdata", ".git", ".ci":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "_evento.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		out[path] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no library files found")
	}
	return out
}

// TestNoPrintInLibraries keeps fmt.Print*, print and println out of library
// code: libraries log through an injectable *slog.Logger.
func TestNoPrintInLibraries(t *testing.T) {
	for path, f := range libraryFiles(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok && x.Name == "fmt" && strings.HasPrefix(fn.Sel.Name, "Print") {
					t.Errorf("%s: fmt.%s in library code; use log/slog", path, fn.Sel.Name)
				}
				if x, ok := fn.X.(*ast.Ident); ok && x.Name == "log" && !strings.HasPrefix(fn.Sel.Name, "New") {
					t.Errorf("%s: log.%s in library code; use an injectable *slog.Logger", path, fn.Sel.Name)
				}
			case *ast.Ident:
				if fn.Name == "println" || fn.Name == "print" {
					t.Errorf("%s: %s in library code", path, fn.Name)
				}
			}
			return true
		})
	}
}

// TestNoStringMatchedDatabaseErrors keeps backends from recognising database
// errors by their message text: they use SQLSTATE codes (pgconn.PgError.Code)
// and SQLite extended result codes.
func TestNoStringMatchedDatabaseErrors(t *testing.T) {
	for path, f := range libraryFiles(t) {
		if !strings.HasPrefix(path, "executor"+string(filepath.Separator)) {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok || pkg.Name != "strings" || (sel.Sel.Name != "Contains" && sel.Sel.Name != "HasPrefix" && sel.Sel.Name != "EqualFold") {
				return true
			}
			for _, arg := range call.Args {
				// strings.Contains(err.Error(), ...) is the pattern to forbid.
				if c, ok := arg.(*ast.CallExpr); ok {
					if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "Error" && len(c.Args) == 0 {
						t.Errorf("%s: %s.%s on an error message; match SQLSTATE or result codes instead", path, pkg.Name, sel.Sel.Name)
					}
				}
				if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					low := strings.ToLower(s)
					if strings.Contains(low, "unique constraint") || strings.Contains(low, "duplicate key") || strings.Contains(low, "database is locked") {
						t.Errorf("%s: matches database error text %q", path, s)
					}
				}
			}
			return true
		})
	}
}
