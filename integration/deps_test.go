package integration_test

// The import rules of DESIGN.md, and one package doc per package, as tests.

import (
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/vpcvpn/vpcvpn"

// allowedDeps lists, for each product package, the vpcvpn packages it may
// import. Helper packages named <pkg>test may import only <pkg> and
// vpctest; integration may import anything and nothing imports it.
var allowedDeps = map[string][]string{
	"cmd/vpcvpn":     {"cmd/vpcvpn/cli"},
	"cmd/vpcvpn/cli": {"engine", "netstack", "tunnel", "tunnel/ssm", "tunnel/eic", "dnsproxy", "routing", "platform"},
	"engine":         {"netstack", "tunnel", "tunnel/ssm", "tunnel/eic", "dnsproxy", "routing", "platform"},
	"routing":        {"platform"},
	"netstack":       {},
	"tunnel":         {},
	"tunnel/ssm":     {redactPkg},
	"tunnel/eic":     {redactPkg},
	"dnsproxy":       {},
	"platform":       {},
	vpctestPkg:       {},
	redactPkg:        {},
}

// redactPkg keeps credentials in URLs out of error text: a leaf that the
// transports meeting presigned URLs share.
const redactPkg = "internal/redact"

// vpctestPkg holds the test helpers all packages share: a leaf, imported only
// by tests and <pkg>test helpers, never by product code.
const vpctestPkg = "internal/vpctest"

// confined lists third-party module prefixes and the only packages that may
// import them directly.
var confined = map[string][]string{
	"gvisor.dev/gvisor":              {"netstack"},
	"github.com/aws/aws-sdk-go-v2":   {"tunnel/ssm", "tunnel/eic", "cmd/vpcvpn/cli"},
	"github.com/aws/smithy-go":       {"tunnel/ssm", "tunnel/eic", "cmd/vpcvpn/cli"},
	"github.com/miekg/dns":           {"dnsproxy"},
	"github.com/vishvananda/netlink": {"platform"},
	"github.com/pelletier/go-toml":   {"cmd/vpcvpn/cli"},
}

func TestImportRules(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range packageDirs(t, root) {
		rel := filepath.ToSlash(must(filepath.Rel(root, dir)))
		for _, goos := range []string{"linux", "darwin", "windows"} {
			for _, imp := range imports(t, dir, goos) {
				checkImport(t, rel, imp, goos)
			}
		}
	}
}

func checkImport(t *testing.T, pkg, imp, goos string) {
	t.Helper()
	if strings.HasPrefix(pkg, "integration") {
		return
	}
	if rest, ok := strings.CutPrefix(imp, module+"/"); ok {
		if !importAllowed(pkg, rest) {
			t.Errorf("%s imports %s (%s): not allowed by DESIGN.md", pkg, rest, goos)
		}
		return
	}
	for prefix, who := range confined {
		if strings.HasPrefix(imp, prefix) && !slices.Contains(who, pkg) && !isHelperOf(pkg, who) {
			t.Errorf("%s imports %s (%s): only %v may", pkg, imp, goos, who)
		}
	}
}

func importAllowed(pkg, dep string) bool {
	if strings.HasPrefix(dep, "integration") {
		return false
	}
	base := filepath.Base(pkg)
	if parent, ok := strings.CutSuffix(pkg, "/"+base); ok && base == filepath.Base(parent)+"test" {
		return dep == parent || dep == vpctestPkg
	}
	return slices.Contains(allowedDeps[pkg], dep)
}

// isHelperOf reports whether pkg is a <p>test helper of one of pkgs.
func isHelperOf(pkg string, pkgs []string) bool {
	for _, p := range pkgs {
		if pkg == p+"/"+filepath.Base(p)+"test" {
			return true
		}
	}
	return false
}

func TestEveryPackageIsKnown(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range packageDirs(t, root) {
		rel := filepath.ToSlash(must(filepath.Rel(root, dir)))
		if strings.HasPrefix(rel, "integration") {
			continue
		}
		base := filepath.Base(rel)
		if _, ok := allowedDeps[rel]; !ok && !strings.HasSuffix(base, "test") {
			t.Errorf("package %s is not in DESIGN.md's import rules: add it to allowedDeps", rel)
		}
	}
}

func TestOnePackageDoc(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range packageDirs(t, root) {
		fset := token.NewFileSet()
		var withDoc []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if f.Doc != nil && !strings.HasPrefix(f.Doc.Text(), "Code generated") {
				withDoc = append(withDoc, name)
			}
		}
		rel := must(filepath.Rel(root, dir))
		if len(withDoc) != 1 {
			t.Errorf("package %s has %d package doc comments (%v): want exactly one", rel, len(withDoc), withDoc)
		}
	}
}

func imports(t *testing.T, dir, goos string) []string {
	ctx := build.Default
	ctx.GOOS = goos
	ctx.CgoEnabled = false
	p, err := ctx.ImportDir(dir, 0)
	if err != nil {
		if _, ok := err.(*build.NoGoError); ok {
			return nil
		}
		t.Fatalf("%s (%s): %v", dir, goos, err)
	}
	return p.Imports
}

// packageDirs lists the directories of the module that hold non-test Go files.
func packageDirs(t *testing.T, root string) []string {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			if dir := filepath.Dir(path); len(dirs) == 0 || dirs[len(dirs)-1] != dir {
				dirs = append(dirs, dir)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Compact(dirs)
}

func repoRoot(t *testing.T) string {
	wd := must(os.Getwd())
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	t.Fatal("no go.mod above " + wd)
	return ""
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
