package tunnel

import "testing"

// TestWildcardMatch compares wildcardMatch with a plain recursive matcher
// on every pattern and every string over "ab*?" up to four bytes.
func TestWildcardMatch(t *testing.T) {
	var ref func(p, s string) bool
	ref = func(p, s string) bool {
		switch {
		case p == "":
			return s == ""
		case p[0] == '*':
			return ref(p[1:], s) || (s != "" && ref(p, s[1:]))
		case s == "":
			return false
		case p[0] == '?' || p[0] == s[0]: // after '*': a star in s is a byte
			return ref(p[1:], s[1:])
		}
		return false
	}
	words := func(alphabet string, n int) []string {
		all, last := []string{""}, []string{""}
		for range n {
			var next []string
			for _, w := range last {
				for _, c := range alphabet {
					next = append(next, w+string(c))
				}
			}
			all, last = append(all, next...), next
		}
		return all
	}
	for _, p := range words("ab*?", 4) {
		for _, s := range words("ab*?", 4) {
			if got, want := wildcardMatch(p, s), ref(p, s); got != want {
				t.Errorf("wildcardMatch(%q, %q) = %v, want %v", p, s, got, want)
			}
		}
	}
}
