// Stage: command line. A small getopt-style parser for ovs-pki compatible
// options: options may come before or after the command and its arguments,
// long options take "--opt=value" or "--opt value" and may be abbreviated
// to a unique prefix (as ovs-pki accepts "--di" for "--dir"), short options
// take "-d value", and "--" ends the options.

package main

import (
	"fmt"
	"strings"
)

// optSpec declares one option.
type optSpec struct {
	long   string
	short  byte // 0 if none
	hasArg bool
}

// parsedOpts is the result of parseOpts: option values by long name (flags
// have the value "yes") and the positional arguments in order.
type parsedOpts struct {
	vals map[string]string
	args []string
}

func (p parsedOpts) has(long string) bool { _, ok := p.vals[long]; return ok }

func (p parsedOpts) get(long, def string) string {
	if v, ok := p.vals[long]; ok {
		return v
	}
	return def
}

// parseOpts parses args against specs.
func parseOpts(args []string, specs []optSpec) (parsedOpts, error) {
	p := parsedOpts{vals: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			p.args = append(p.args, args[i+1:]...)
			return p, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			s, err := findLong(specs, name)
			if err != nil {
				return p, err
			}
			switch {
			case s.hasArg && hasVal:
			case s.hasArg:
				if i+1 >= len(args) {
					return p, fmt.Errorf("missing argument to --%s", s.long)
				}
				i++
				val = args[i]
			case hasVal:
				return p, fmt.Errorf("option --%s takes no argument", s.long)
			default:
				val = "yes"
			}
			p.vals[s.long] = val
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// Short options, possibly bundled ("-bf") or with an attached
			// value ("-d/tmp/pki").
			for j := 1; j < len(a); j++ {
				s, ok := findShort(specs, a[j])
				if !ok {
					return p, fmt.Errorf("unrecognized option -%c", a[j])
				}
				if !s.hasArg {
					p.vals[s.long] = "yes"
					continue
				}
				if j+1 < len(a) {
					p.vals[s.long] = a[j+1:]
				} else if i+1 < len(args) {
					i++
					p.vals[s.long] = args[i]
				} else {
					return p, fmt.Errorf("missing argument to -%c", a[j])
				}
				break
			}
		default:
			p.args = append(p.args, a)
		}
	}
	return p, nil
}

func findLong(specs []optSpec, name string) (optSpec, error) {
	var matches []optSpec
	for _, s := range specs {
		if s.long == name {
			return s, nil
		}
		if name != "" && strings.HasPrefix(s.long, name) {
			matches = append(matches, s)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return optSpec{}, fmt.Errorf("unrecognized option --%s", name)
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = "--" + m.long
	}
	return optSpec{}, fmt.Errorf("option --%s is ambiguous (%s)", name, strings.Join(names, ", "))
}

func findShort(specs []optSpec, c byte) (optSpec, bool) {
	for _, s := range specs {
		if s.short != 0 && s.short == c {
			return s, true
		}
	}
	return optSpec{}, false
}
